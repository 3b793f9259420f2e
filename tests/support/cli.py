"""Running the command line in-process, for the CLI tests."""

from __future__ import annotations

import pytest

from torch_grouped_conv.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`torch-grouped-conv ARGV...` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
