"""A model that rejects its input (issue 10): any error the user's model
raises while torch.export traces it, or while it runs eagerly, is one line
naming the model, the input shape and PyTorch's own message: `ModelInputError`
(an `InputError`) in the API, stderr + exit code 2 in the CLI, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import torch_grouped_conv as tgc
from tests.support.cli import SMALL_LAYERS, model_source, run_cli, write_model

MODELS = model_source(*SMALL_LAYERS[:2], more="""

class OnlyExported(torch.nn.Module):
    # Traces fine under torch.export, raises when run eagerly.
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, groups=4)

    def forward(self, x):
        if not torch.compiler.is_exporting():
            raise ValueError("this model only runs exported")
        return self.conv(x)


def only_exported():
    torch.manual_seed(0)
    return OnlyExported()
""")

# PyTorch's message for 5 channels into Conv2d(4, ...): the first line of what it raises.
WRONG_CHANNELS = "expected input[1, 5, 8, 8] to have 4 channels, but got 5 channels instead"


@pytest.fixture()
def models(tmp_path: Path) -> Path:
    return write_model(tmp_path, MODELS, "models.py")


def assert_one_line(err: str, *parts: str) -> None:
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err


def test_api_compile_raises_model_input_error() -> None:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(4, 8, 3, groups=2).eval()
    with pytest.raises(tgc.ModelInputError) as caught:
        tgc.compile(model, torch.randn(1, 5, 8, 8))
    error = caught.value
    assert isinstance(error, tgc.InputError)
    assert str(error).startswith("Conv2d rejects input shape [1, 5, 8, 8] (torch.export): RuntimeError: ")
    assert "expected input[1, 5, 8, 8] to have 4 channels, but got 5 channels instead" in str(error)
    assert "\n" not in str(error)
    assert (error.model, error.input_shapes, error.stage) == ("Conv2d", [[1, 5, 8, 8]], "torch.export")


def test_api_good_input_still_compiles() -> None:
    """The guard does not get in the way: the same model with 4 channels lowers."""
    torch.manual_seed(0)
    tgc.compile(torch.nn.Conv2d(4, 8, 3, groups=2).eval(), torch.randn(1, 4, 8, 8))
    report = tgc.last_report()
    assert report is not None and report.counts() == {"grouped": 1}


@pytest.mark.parametrize("command", ["verify", "verify-json", "compile-o", "compile-stdout"])
def test_cli_model_rejects_input(capsys: pytest.CaptureFixture[str], models: Path, tmp_path: Path,
                                 command: str) -> None:
    target = tmp_path / "out"
    argv = {
        "verify": ["verify"],
        "verify-json": ["verify", "--json", str(target)],
        "compile-o": ["compile", "-o", str(target)],
        "compile-stdout": ["compile"],
    }[command]
    code, _, err = run_cli(capsys, *argv, f"{models}:make", "--input-shape", "1,5,8,8")
    assert code == 2
    assert_one_line(err, f"{models}:make rejects input shape [1, 5, 8, 8] (torch.export): RuntimeError:", WRONG_CHANNELS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.py"]  # nothing written, no temporary file


def test_cli_model_rejects_input_when_run_eagerly(capsys: pytest.CaptureFixture[str], models: Path,
                                                  tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    code, _, err = run_cli(capsys, "verify", f"{models}:only_exported", "--input-shape", "1,4,6,6", "--json", str(result))
    assert code == 2
    assert_one_line(err, f"{models}:only_exported rejects input shape [1, 4, 6, 6] (eager run): "
                         "ValueError: this model only runs exported")
    assert not result.exists()


def test_cli_issue_command_mobilenet_v2(capsys: pytest.CaptureFixture[str]) -> None:
    """The command from the issue: mobilenet_v2 takes 3 channels, not 5."""
    code, _, err = run_cli(capsys, "verify", "torchvision:mobilenet_v2", "--input-shape", "1,5,32,32")
    assert code == 2
    assert_one_line(err, "torchvision:mobilenet_v2 rejects input shape [1, 5, 32, 32] (torch.export): RuntimeError:",
                    "expected input[1, 5, 32, 32] to have 3 channels, but got 5 channels instead")
