"""The command line: real runs of each command, and every bad-input path
(exit 2, one line on stderr, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import SMALL_LAYERS, model_source, run_cli, write_model

SMALL_MODEL = model_source(*SMALL_LAYERS, more="\n\ndef not_a_module():\n    return 42\n")

NO_CONV_MODEL = """
import torch

def make():
    return torch.nn.Linear(4, 4)
"""


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    return write_model(tmp_path, SMALL_MODEL, "small_model.py")


def test_demo_prints_report_and_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "demo")
    assert code == 0
    assert "6 convolution(s), strategy=auto: conv=3, depthwise=1, grouped=2" in out
    assert "  by strategy: im2col=1, matmul=3, taps=2" in out
    assert out.strip().endswith("PASS")
    for stage in ("export", "reference", "torch IR", "plugin", "linalg", "compile", "run", "compare"):
        assert stage in out


def test_verify_writes_json(capsys: pytest.CaptureFixture[str], model_file: Path, tmp_path: Path) -> None:
    result_path = tmp_path / "result.json"
    code, out, _ = run_cli(capsys, "verify", f"{model_file}:make", "--input-shape", "2,4,9,11",
                           "--backend", "iree", "--json", str(result_path))
    assert code == 0, out
    result = json.loads(result_path.read_text())
    assert result["result"] == "PASS"
    assert result["report"]["counts"] == {"depthwise": 1, "grouped": 1}
    assert result["comparison"]["max_rel_error"] <= result["comparison"]["tolerance"]
    assert set(result["stage_seconds"]) == {"export", "reference", "torch IR", "plugin", "linalg", "compile", "run",
                                            "compare"}


def test_compile_then_lower_round_trip(capsys: pytest.CaptureFixture[str], model_file: Path, tmp_path: Path) -> None:
    torch_ir = tmp_path / "model.torch.mlir"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8",
                           "--output-type", "torch", "--grouped-conv", "none", "-o", str(torch_ir))
    assert code == 0
    assert "plugin off" in err
    assert torch_ir.read_text().count("torch.aten.convolution") == 2

    lowered = tmp_path / "model.lowered.mlir"
    code, _, err = run_cli(capsys, "lower", str(torch_ir), "-o", str(lowered), "--grouped-conv", "grouped")
    assert code == 0
    assert "depthwise=1, grouped=1" in err
    text = lowered.read_text()
    assert "torch.aten.convolution" not in text
    assert text.count("linalg.conv_2d_ngchw_gfchw") == 1
    assert text.count("linalg.depthwise_conv_2d_nchw_chw") == 1


def test_compile_to_stdout_is_linalg(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    code, out, _ = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8", "--grouped-conv", "grouped")
    assert code == 0
    assert "linalg.conv_2d_ngchw_gfchw" in out
    assert "torch.aten" not in out and "!torch.vtensor" not in out


NO_CONV_IR = """
func.func @main(%arg0: !torch.vtensor<[2],f32>) -> !torch.vtensor<[2],f32> {
  return %arg0 : !torch.vtensor<[2],f32>
}
"""

RAW_IR = """
func.func @main(%x: !torch.vtensor<[1,2,4,4],f32>, %w: !torch.vtensor<[2,2,1,1],f32>) -> !torch.vtensor<[1,2,4,4],f32> {
  %none = torch.constant.none
  %int1 = torch.constant.int 1
  %int0 = torch.constant.int 0
  %s = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %p = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.conv2d %x, %w, %none, %s, %p, %s, %int1 : !torch.vtensor<[1,2,4,4],f32>, !torch.vtensor<[2,2,1,1],f32>, !torch.none, !torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.int -> !torch.vtensor<[1,2,4,4],f32>
  return %0 : !torch.vtensor<[1,2,4,4],f32>
}
"""


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bogus"], "invalid choice"),
        (["verify", "torchvision:resnet18"], "--input-shape"),
        (["verify", "torchvision:no_such_net", "--input-shape", "1,3,8,8"], "unknown torchvision model"),
        (["verify", "torchvision:resnet18", "--input-shape", "1,3,x"], "malformed"),
        (["verify", "torchvision:resnet18", "--input-shape", "1,0,8,8"], "malformed"),
        (["verify", "resnet18", "--input-shape", "1,3,8,8"], "not torchvision:NAME or path/to/file.py:factory"),
        (["verify", "missing_file.py:make", "--input-shape", "1,3,8,8"], "does not exist"),
        (["verify", "torchvision:resnet18", "--input-shape", "1,3,8,8", "--backend", "gpu"], "unknown --backend"),
        (["compile", "torchvision:resnet18", "--input-shape", "1,3,8,8", "--grouped-conv", "magic"], "unknown --grouped-conv"),
        (["compile", "torchvision:resnet18", "--input-shape", "1,3,8,8", "--output-type", "llvm"], "unknown --output-type"),
        (["lower", "missing.mlir"], "does not exist"),
        (["lower", "missing.mlir", "--grouped-conv", "none"], "does nothing for `lower`"),
        (["lower", "missing.mlir", "--grouped-conv", "magic"], "unknown --grouped-conv"),
        (["lower", "missing.mlir", "-o", "no_such_folder_tgc/out.mlir"], "output folder"),
        (["verify", "torchvision:resnet18", "--input-shape", "1,3,8,8", "--json", "no_such_folder_tgc/r.json"],
         "output folder"),
        (["verify", "torchvision:resnet18", "--input-shape", "1,3,8,8", "--grouped-conv", "magic"],
         "unknown --grouped-conv"),
        (["demo", "--backend", "gpu"], "unknown --backend"),
        (["compile", "torchvision:resnet18"], "--input-shape"),
        (["lower"], "input_file"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_factory_errors(capsys: pytest.CaptureFixture[str], model_file: Path) -> None:
    code, _, err = run_cli(capsys, "verify", f"{model_file}:nope", "--input-shape", "1,4,8,8")
    assert (code, "has no function 'nope'" in err) == (2, True)
    code, _, err = run_cli(capsys, "verify", f"{model_file}:not_a_module", "--input-shape", "1,4,8,8")
    assert (code, "not a torch.nn.Module" in err) == (2, True)


BROKEN_MODELS = {
    "import_fails.py": ("raise ImportError('no module named fancy_layers')\n", "make",
                        "could not import", "ImportError: no module named fancy_layers"),
    "factory_raises.py": ("def make():\n    raise ValueError('width must be even\\nsecond line')\n", "make",
                          "make() raised ValueError: width must be even", None),
    "model.txt": ("def make():\n    pass\n", "make", "is not a .py file", None),
}


@pytest.mark.parametrize("file_name", list(BROKEN_MODELS))
def test_broken_model_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, file_name: str) -> None:
    source, factory, message, detail = BROKEN_MODELS[file_name]
    path = tmp_path / file_name
    path.write_text(source)
    out_file = tmp_path / "out.mlir"
    code, _, err = run_cli(capsys, "compile", f"{path}:{factory}", "--input-shape", "1,4,8,8", "-o", str(out_file))
    assert code == 2 and message in err, err
    assert detail is None or detail in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out_file.exists()


def test_verify_model_without_convolution_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "linear.py"
    path.write_text(NO_CONV_MODEL)
    result = tmp_path / "result.json"
    code, _, err = run_cli(capsys, "verify", f"{path}:make", "--input-shape", "2,4", "--json", str(result))
    assert code == 2 and "no convolution" in err and len(err.strip().splitlines()) == 1
    assert not result.exists()


@pytest.mark.parametrize(
    "text, message",
    [("this is not mlir", "cannot parse"), (NO_CONV_IR, "no torch.aten.convolution")],
    ids=["unparsable", "no-convolution"],
)
def test_lower_bad_ir_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str) -> None:
    source, target = tmp_path / "in.mlir", tmp_path / "out.mlir"
    source.write_text(text)
    code, _, err = run_cli(capsys, "lower", str(source), "-o", str(target))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not target.exists()
    assert list(tmp_path.iterdir()) == [source]  # no temporary file left behind either


def test_compile_model_without_convolution_reports_nothing_to_lower(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "linear.py"
    path.write_text(NO_CONV_MODEL)
    out_file = tmp_path / "out.mlir"
    code, _, err = run_cli(capsys, "compile", f"{path}:make", "--input-shape", "2,4", "-o", str(out_file))
    assert code == 2
    assert "no torch.aten.convolution" in err
    assert not out_file.exists()


def test_missing_output_folder_fails_before_work(capsys: pytest.CaptureFixture[str], model_file: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8",
                           "-o", str(tmp_path / "missing" / "out.mlir"))
    assert code == 2 and "does not exist" in err


def test_console_entry_point_exit_code() -> None:
    done = subprocess.run([sys.executable, "-m", "torch_grouped_conv.cli", "verify", "torchvision:resnet18",
                           "--input-shape", "oops"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "malformed" in done.stderr


def test_lower_raw_torch_ir_runs_the_backend_pipeline_first(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Raw import output (aten.conv2d) is no longer refused: torch-mlir's
    torch-backend pipeline runs first, the summary says so, the conv is lowered."""
    source, target = tmp_path / "in.mlir", tmp_path / "out.mlir"
    source.write_text(RAW_IR)
    code, _, err = run_cli(capsys, "lower", str(source), "-o", str(target), "--grouped-conv", "grouped")
    assert code == 0, err
    assert "input is raw torch IR (it has torch.aten.conv2d)" in err
    assert "torchdynamo-export-to-torch-backend-pipeline" in err
    lowered = target.read_text()
    assert "torch.aten.conv2d" not in lowered and "torch.aten.convolution" not in lowered
    named = ("linalg.conv_2d_ngchw_gfchw", "linalg.depthwise_conv_2d_nchw_chw", "linalg.conv_2d_nchw_fchw")
    assert any(op in lowered for op in named)


def test_lower_unknown_input_form(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "in.mlir"
    source.write_text(RAW_IR)
    code, _, err = run_cli(capsys, "lower", str(source), "--input-form", "tosa")
    assert (code, "unknown --input-form 'tosa'" in err, len(err.strip().splitlines())) == (2, True, 1)


CONV_TBC_MODEL = """
import torch

class ConvTbc(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w, self.b = torch.nn.Parameter(torch.randn(3, 4, 5)), torch.nn.Parameter(torch.randn(5))

    def forward(self, x):
        return torch.conv_tbc(x, self.w, self.b, 1)

def make():
    return ConvTbc()
"""


def test_conv_tbc_stays_for_the_plugin_then_lowers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The import keeps aten.conv_tbc out of torch-mlir's (wrong) decomposition; `lower` takes it."""
    model = tmp_path / "tbc.py"
    model.write_text(CONV_TBC_MODEL)
    torch_ir = tmp_path / "tbc.torch.mlir"
    code, _, _ = run_cli(capsys, "compile", f"{model}:make", "--input-shape", "7,2,4",
                         "--output-type", "torch", "--grouped-conv", "none", "-o", str(torch_ir))
    assert code == 0
    assert torch_ir.read_text().count("torch.aten.conv_tbc") == 1
    lowered = tmp_path / "tbc.lowered.mlir"
    code, _, err = run_cli(capsys, "lower", str(torch_ir), "-o", str(lowered), "--grouped-conv", "grouped")
    assert code == 0 and "conv_tbc=1" in err
    text = lowered.read_text()
    assert "torch.aten.conv_tbc" not in text and text.count("linalg.conv_1d_ncw_fcw") == 1
