"""Make the repository root importable, so tests can share `tests.support.compiled`;
shared fixtures; the work units of parallel runs.

`make test` runs pytest-xdist workers with `--dist loadgroup`: each test is
put in an `xdist_group` (below) so that the tests sharing a compiled module
(tests.support.compiled caches per process) or a module-scoped fixture run
in the same worker, and compile it once.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# `auto` picks by the CPU family (rewrite/tuning.py). The suite pins the
# `default` tuning, so that it checks the same picks on every host (CI's CPU
# changes between sessions); tests of the other tunings set theirs with
# `tuned_for` (tests/unit/test_auto_rule.py, tests/e2e/test_tuning.py).
os.environ["TGC_TUNING"] = "default"


COMPILE_CACHE = "compile_cache"
COMPILE_CACHE_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """In a pytest-xdist worker, PyTorch computes on one thread: the workers
    already fill the cores (`make test`: JOBS = 2 on 2 cores), and two OpenMP
    pools spinning against each other cost CPU time the other worker needs (the
    three strategy grid files: 2 workers, user time 5:44 -> 4:44, wall 188 -> 157 s).

    The session's iree-compile results are shared by every test and worker
    (tests/support/compile_cache.py): the controller makes the folder, hands
    it to the workers and removes it at the end. Under `--dist loadgroup`, a
    pytest and pytest-xdist that cannot group (`xdist_applies_groups`) stop
    the run with one line."""
    worker_input = getattr(config, "workerinput", None)
    if worker_input is None and config.getoption("dist", None) == "loadgroup" and not xdist_applies_groups():
        raise pytest.UsageError(
            f"pytest-xdist {version('pytest-xdist')} cannot apply xdist_group marks under pytest "
            f"{pytest.__version__}: install the test extra's versions (pip install -e '.[test]')")
    if worker_input is None:
        folder = tempfile.mkdtemp(prefix="torch_grouped_conv_test_compiles_")
        config.stash[COMPILE_CACHE_KEY] = folder
        if config.getoption("numprocesses", None):
            return  # the workers run the tests
    else:
        import torch

        torch.set_num_threads(1)
        folder = worker_input[COMPILE_CACHE]
    from tests.support import compile_cache

    compile_cache.install(Path(folder))


def xdist_applies_groups() -> bool:
    """pytest-xdist up to 3.8 tags a grouped test by appending `@group` to
    the item's `_nodeid`, which pytest 9.2 no longer reads (it keeps the id in
    `_id`): `--dist loadgroup` then spreads every group over the workers,
    which import and load the same modules again (tests/unit/test_work_units.py)."""
    return Version(version("pytest-xdist")) > Version("3.8") or Version(pytest.__version__) < Version("9.2")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: each worker gets the controller's compile cache folder."""
    node.workerinput[COMPILE_CACHE] = node.config.stash[COMPILE_CACHE_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(COMPILE_CACHE_KEY, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def iree_command(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """`command(module, extra_flags=None)`: the iree-compile command line that
    runners.iree.compile_to_vmfb would run for `module` (iree-compile is not run)."""
    from tests.support import compile_cache
    from torch_grouped_conv.runners import iree

    def command(module, extra_flags: list[str] | None = None) -> list[str]:
        seen: list[list[str]] = []

        def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
            seen.append(cmd)
            Path(cmd[cmd.index("-o") + 1]).write_bytes(b"vmfb")
            return subprocess.CompletedProcess(cmd, 0, "", "")

        monkeypatch.setattr(iree.subprocess, "run", fake_run)
        monkeypatch.setattr(iree, "invoke_iree_compile", compile_cache.UNCACHED)
        assert iree.compile_to_vmfb(module, extra_flags) == (b"vmfb", "")
        (cmd,) = seen
        return cmd

    return command


# " at 0x7f02a8b42840" in a parameter's text (a function's, an object's):
# not the same in two workers, whose group names (and so test ids) must be.
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def work_unit(item: pytest.Item) -> str | None:
    """The xdist group of `item` (None: any worker).

    - a test using a class-, module- or package-scoped fixture of this tree:
      its file (the fixture is built once; a session-scoped one is built
      once per worker whatever the grouping);
    - a test parametrized only by a registered case `name` (and a backend):
      `case:NAME`, shared by the e2e and the IR tests of that case;
    - other parametrized tests: the file and the parameters but the backend
      and the strategy (the numbers on both backends come from one compile,
      and a subject's strategies share its import, `compiled.imported`);
    - the rest: none.
    """
    path = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)  # pytest.Function's fixture closure
    definitions = info.name2fixturedefs.values() if info else ()
    if any(d.baseid and d.scope in ("class", "module", "package") for defs in definitions for d in defs):
        return path
    callspec = getattr(item, "callspec", None)
    params = {k: v for k, v in (callspec.params if callspec else {}).items() if k != "backend"}
    if not params:
        return None
    params.pop("strategy", None)
    if set(params) == {"name"} and path.startswith(("tests/e2e/test_registered_cases", "tests/ir/test_conv2d_ir")):
        return f"case:{params['name']}"
    return f"{path}:" + ",".join(f"{k}={ADDRESS.sub('', str(v))}" for k, v in sorted(params.items()))


# Files whose tests run first: mypy on a fresh clone (no cache yet) takes
# ~23 s of one worker, the longest single test but the whole networks'; as the
# last file collected it ran alone at the end (the workers ended 588 and 606 s
# into a fresh-clone run). Workers take groups in collection order.
RUN_FIRST = ("tests/unit/test_types.py",)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in RUN_FIRST)  # stable: the rest keep their order
    for item in items:
        group = work_unit(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
