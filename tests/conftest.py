"""Make the repository root importable, so tests can share `tests.support.compiled`;
shared fixtures."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def iree_command(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """`command(module, extra_flags=None)`: the iree-compile command line that
    runners.iree.compile_to_vmfb would run for `module` (iree-compile is not run)."""
    from torch_grouped_conv.runners import iree

    def command(module, extra_flags: list[str] | None = None) -> list[str]:
        seen: list[list[str]] = []

        def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
            seen.append(cmd)
            Path(cmd[cmd.index("-o") + 1]).write_bytes(b"vmfb")
            return subprocess.CompletedProcess(cmd, 0, "", "")

        monkeypatch.setattr(iree.subprocess, "run", fake_run)
        assert iree.compile_to_vmfb(module, extra_flags) == (b"vmfb", "")
        (cmd,) = seen
        return cmd

    return command
