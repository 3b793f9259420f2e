"""`compile MODEL -o model.vmfb` / `lower IR -o model.vmfb`: an IREE module and
its sidecar, for this machine or another (`--target-*`); bad deploy options are
one line and exit 2, before the long work, with nothing written."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_grouped_conv as tgc
from tests.support.cli import run_cli

MODEL = """
import torch

def make():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, groups=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=8))
"""


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(MODEL)
    return path


def reference(x: torch.Tensor) -> np.ndarray:
    namespace: dict = {}
    exec(MODEL, namespace)  # the same factory, the same seed
    with torch.no_grad():
        return namespace["make"]().eval()(x).numpy()


def test_compile_to_vmfb_runs_and_records_its_flags(capsys: pytest.CaptureFixture[str], model_file: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "net.vmfb"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,10,10", "-o", str(out),
                           "--verbose", "--json", str(tmp_path / "report.json"))
    assert code == 0, err
    record = json.loads((tmp_path / "net.vmfb.json").read_text())
    assert f"iree-compile command: {record['iree_compile']['command']}" in err
    assert "wrote net.vmfb" in err and "flags and signature in net.vmfb.json" in err
    assert record["signature"]["inputs"][0]["shape"] == [1, 4, 10, 10]
    assert record["report"]["counts"] == {"depthwise": 1, "grouped": 1}
    assert json.loads((tmp_path / "report.json").read_text())["output_type"] == "vmfb"
    x = torch.randn(1, 4, 10, 10)
    np.testing.assert_allclose(tgc.load(out)(x)[0], reference(x), rtol=1e-4, atol=1e-5)


def test_compile_for_another_machine(capsys: pytest.CaptureFixture[str], model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "arm.bin"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,10,10", "-o", str(out),
                           "--output-type", "vmfb", "--target-triple", "aarch64-unknown-linux-gnu",
                           "--target-cpu", "neoverse-n1", "--json", str(tmp_path / "report.json"))
    assert code == 0, err
    assert out.stat().st_size > 1000
    assert "for aarch64-unknown-linux-gnu cpu=neoverse-n1" in err
    record = json.loads((tmp_path / "arm.bin.json").read_text())
    assert record["target"]["compiled_for"] == {"triple": "aarch64-unknown-linux-gnu", "cpu": "neoverse-n1",
                                                "features": None, "abi": None}
    assert json.loads((tmp_path / "report.json").read_text())["target"]["arch"] == "aarch64"


def test_lower_to_vmfb(capsys: pytest.CaptureFixture[str], model_file: Path, tmp_path: Path) -> None:
    torch_ir = tmp_path / "net.torch.mlir"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,10,10",
                           "--output-type", "torch", "--grouped-conv", "none", "-o", str(torch_ir))
    assert code == 0, err
    out = tmp_path / "lowered.vmfb"
    code, _, err = run_cli(capsys, "lower", str(torch_ir), "-o", str(out), "--threads", "1")
    assert code == 0, err
    record = json.loads((tmp_path / "lowered.vmfb.json").read_text())
    assert record["threads"] == 1 and "--iree-llvmcpu-number-of-threads=1" in record["iree_compile"]["flags"]
    x = torch.randn(1, 4, 10, 10)
    np.testing.assert_allclose(tgc.load(out)(x)[0], reference(x), rtol=1e-4, atol=1e-5)


def test_onnx_to_vmfb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    model, x = torch.nn.Conv2d(8, 16, 3, groups=4).eval(), torch.randn(1, 8, 12, 12)
    path = tmp_path / "conv.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    code, _, err = run_cli(capsys, "compile", str(path), "-o", str(tmp_path / "conv.vmfb"))
    assert code == 0, err
    [expected] = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(tgc.load(tmp_path / "conv.vmfb")(x)[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("argv", "complaint"), [
    # the MODEL does not exist: the deploy options are checked before it is even looked at
    (["-o", "{tmp}/x.vmfb", "--target-triple", "bogus-unknown-nothing"], "iree-compile cannot build for target"),
    (["-o", "{tmp}/x.vmfb", "--target-cpu", "no-such-cpu"], "iree-compile cannot build for target"),
    (["-o", "{tmp}/x.mlir", "--target-triple", "aarch64-unknown-linux-gnu"], "apply to an IREE module output"),
    (["--output-type", "vmfb"], "give -o model.vmfb"),
    (["-o", "{tmp}/x.vmfb", "--output-type", "torch"], "names an IREE module"),
    (["-o", "{tmp}/x.vmfb", "--threads", "0"], "positive integer"),
    (["-o", "{tmp}/no/such/folder/x.vmfb"], "does not exist"),
])
def test_bad_deploy_options_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    argv: list[str], complaint: str) -> None:
    code, out, err = run_cli(capsys, "compile", "missing_model.py:make", "--input-shape", "1,4,10,10",
                             *[a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert code == 2
    assert complaint in err and "missing_model" not in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert list(tmp_path.iterdir()) == []
