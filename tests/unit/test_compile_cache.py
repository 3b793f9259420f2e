"""The suite's shared iree-compile results (tests/support/compile_cache.py):
one run per (source, flags), failures included, visible to another process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import compile_cache
from tests.support.compiled import in_new_context, lowered
from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.iree import ToolRun

ROOT = Path(__file__).resolve().parents[2]


def counting(results: dict[bytes, ToolRun]) -> tuple[compile_cache.Invoke, list[tuple[bytes, list[str]]]]:
    calls: list[tuple[bytes, list[str]]] = []

    def invoke(source: bytes, flags: list[str]) -> ToolRun:
        calls.append((source, flags))
        return results[source]

    return invoke, calls


def test_one_run_per_source_and_flags(tmp_path: Path) -> None:
    ok, failed = ToolRun(0, b"vmfb-a", "a warning"), ToolRun(1, b"", "error: no")
    invoke, calls = counting({b"a": ok, b"b": failed})
    run = compile_cache.cached(tmp_path, invoke)
    assert run(b"a", ["-x"]) == ok and run(b"a", ["-x"]) == ok
    assert run(b"a", ["-y"]) == ok
    assert run(b"b", ["-x"]) == failed and run(b"b", ["-x"]) == failed
    assert calls == [(b"a", ["-x"]), (b"a", ["-y"]), (b"b", ["-x"])]
    assert not list(tmp_path.glob(".partial-*"))


def test_another_process_reads_the_entry(tmp_path: Path) -> None:
    """A pytest-xdist worker is another process: it finds what this one wrote."""
    invoke, _ = counting({b"src": ToolRun(0, b"out", "")})
    compile_cache.cached(tmp_path, invoke)(b"src", ["-f"])
    script = (
        "import sys; from pathlib import Path; from tests.support import compile_cache\n"
        "def never(source, flags): raise AssertionError('compiled again')\n"
        "print(compile_cache.cached(Path(sys.argv[1]), never)(b'src', ['-f']))"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ToolRun(returncode=0, vmfb=b'out', stderr='')"


def test_the_suite_compiles_on_one_thread_to_the_same_vmfb() -> None:
    """The suite runs iree-compile without its thread pool (`single_threaded`):
    that must not change what the tests then run."""
    source = lowered("conv2d_network_mixed", "auto", "linalg-on-tensors")[0]
    assert isinstance(source, bytes)
    done = iree.compile_for(in_new_context(source), keep_source=True)
    assert done.source is not None
    alone = compile_cache.single_threaded(done.source, list(done.flags))
    pooled = compile_cache.UNCACHED(done.source, list(done.flags))
    assert pooled.returncode == 0, pooled.stderr
    assert alone.vmfb == pooled.vmfb
