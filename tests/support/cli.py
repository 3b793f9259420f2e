"""Running the command line in-process, and the model files it is given, for the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from torch_grouped_conv.cli import main

# The CLI tests' small model: a grouped conv, a ReLU, a depthwise conv (torch.nn constructor calls).
SMALL_LAYERS = ("Conv2d(4, 8, 3, padding=1, groups=2)", "ReLU()", "Conv2d(8, 8, 3, groups=8)")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`torch-grouped-conv ARGV...` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def model_source(*layers: str, more: str = "") -> str:
    """The text of a model file for `FILE:make`: `make()` returns a seeded
    `torch.nn.Sequential` of `layers` (torch.nn constructor calls, e.g. "ReLU()");
    `more` (other factories, classes) follows it."""
    body = "".join(f"        torch.nn.{layer},\n" for layer in layers)
    return f"import torch\n\n\ndef make():\n    torch.manual_seed(0)\n    return torch.nn.Sequential(\n{body}    )\n{more}"


def write_model(folder: Path, source: str, name: str) -> Path:
    """`source` written to `folder / name`; its path."""
    path = folder / name
    path.write_text(source)
    return path
