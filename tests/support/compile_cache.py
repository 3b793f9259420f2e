"""One iree-compile per (source, flags) in a test session, shared by the
pytest-xdist workers through a folder (tests/conftest.py makes it and
removes it at the end of the session).

iree-compile's result depends on its input bytes and flags alone
(`runners.iree.invoke_iree_compile`), and different tests compile the same
module: `auto` and the strategy it picks emit the same IR, a case's module
is compiled for its e2e and its deployment tests, in either worker. Failures
are shared too: a test that expects one still gets the tool's messages,
through the same code path as a fresh run.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path

from torch_grouped_conv.runners import iree

Invoke = Callable[[bytes, list[str]], iree.ToolRun]

UNCACHED: Invoke = iree.invoke_iree_compile

# iree-compile's own thread pool costs CPU time the other worker needs (the
# suite keeps both cores busy): a whole network's compile took 17.3 s of CPU
# on one thread against 21.2 s on its pool (wall 17.2 vs 14.6 s), a small
# module's 0.64 against 0.72 s; the registered cases on IREE, 2 workers,
# alternated: 70.9 and 74.1 s against 76.0 and 80.1 s. The vmfb is the same
# byte for byte (tests/unit/test_compile_cache.py).
SINGLE_THREADED = ["--mlir-disable-threading"]


def single_threaded(source: bytes, flags: list[str]) -> iree.ToolRun:
    """`UNCACHED` on one thread (`SINGLE_THREADED`)."""
    return UNCACHED(source, [*flags, *SINGLE_THREADED])


def key(source: bytes, flags: list[str]) -> str:
    digest = hashlib.sha256("\0".join(flags).encode())
    digest.update(b"\0\0")
    digest.update(source)
    return digest.hexdigest()


def cached(directory: Path, invoke: Invoke = UNCACHED) -> Invoke:
    """`invoke` with its results kept in `directory`, one file per key,
    written whole (a file is renamed into place) so that a worker never reads
    another's half-written entry; two workers racing on one key both compile."""

    def run(source: bytes, flags: list[str]) -> iree.ToolRun:
        entry = directory / key(source, flags)
        if entry.is_file():
            found: iree.ToolRun = pickle.loads(entry.read_bytes())
            return found
        done = invoke(source, flags)
        fd, partial = tempfile.mkstemp(dir=directory, prefix=".partial-")
        with os.fdopen(fd, "wb") as out:
            pickle.dump(done, out)
        os.replace(partial, entry)
        return done

    return run


def install(directory: Path) -> None:
    """Every iree-compile of the runners goes through `directory`'s cache,
    on one thread."""
    iree.invoke_iree_compile = cached(directory, single_threaded)
