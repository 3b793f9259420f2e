"""The `iree` runner compiles with the `TUNED` flag set unless given flags."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from torch_mlir import ir

from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.iree_flags import TUNED, flag_set


def compile_command(monkeypatch: pytest.MonkeyPatch, extra_flags: list[str] | None) -> list[str]:
    seen: list[list[str]] = []

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        seen.append(command)
        Path(command[command.index("-o") + 1]).write_bytes(b"vmfb")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(iree.subprocess, "run", fake_run)
    with ir.Context(), ir.Location.unknown():
        assert iree.compile_to_vmfb(ir.Module.create(), extra_flags) == (b"vmfb", "")
    (command,) = seen
    return command


def test_default_is_tuned(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TUNED == "data-tiling"
    command = compile_command(monkeypatch, None)
    assert command[-len(flag_set(TUNED)):] == flag_set(TUNED)
    assert all(flag in command for flag in iree.IREE_TARGET_FLAGS)


def test_explicit_flags_replace_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not set(flag_set(TUNED)) & set(compile_command(monkeypatch, []))
    assert compile_command(monkeypatch, ["--iree-opt-level=O2"])[-1] == "--iree-opt-level=O2"
