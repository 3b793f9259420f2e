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
from tests.support.cli import model_source, run_cli, write_model
from torch_grouped_conv.runners.transients import module_transient_size

MODEL = model_source("Conv2d(4, 8, 3, groups=2)", "ReLU()", "Conv2d(8, 8, 3, groups=8)")


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    return write_model(tmp_path, MODEL, "net.py")


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


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_deploy_example() -> tuple[list[str], str, str]:
    """The README's deploy example: the compile command's argv, the iree.runtime
    snippet (a ```py block: test_readme runs the ```python ones in-process) and
    its expected output (the plain block after it)."""
    import re

    text = README.read_text()
    [command] = re.findall(r"^torch-grouped-conv (compile \S+ .*-o (\S+\.vmfb).*)$", text, flags=re.M)[:1]
    match = re.search(r"```py\n(.*?)```\n+```\n(.*?)```", text[text.index(command[0]):], flags=re.S)
    assert match is not None, "the README lost its iree.runtime snippet or its expected output"
    return command[0].split(), match.group(1), match.group(2)


@pytest.mark.slow
def test_readme_deploy_example_runs_as_written(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's compile -o X.vmfb, then its snippet in a fresh Python with
    iree.runtime and numpy only: the printed output as the README shows it, the
    result as PyTorch's for the same model (torchvision, seeded) and input."""
    import subprocess
    import sys

    from torch_grouped_conv.models import build_model

    argv, snippet, output = readme_deploy_example()
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    check = ("\nnp.save('y.npy', y); np.save('x.npy', x)\n"
             "assert not {'torch', 'torch_mlir', 'torch_grouped_conv'} & set(__import__('sys').modules)\n")
    done = subprocess.run([sys.executable, "-c", snippet + check], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout == output
    model = build_model(argv[1]).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(np.load("x.npy"))).numpy()
    assert np.abs(np.load("y.npy") - expected).max() <= 1e-4 * np.abs(expected).max()  # as docs/models.md


def test_external_transients_in_the_sidecar_and_on_load(capsys: pytest.CaptureFixture[str], model_file: Path,
                                                        tmp_path: Path) -> None:
    """--external-transients: @main takes its transient storage as a last argument, sized in the sidecar."""
    out = tmp_path / "net.vmfb"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,10,10", "-o", str(out),
                           "--external-transients", "--verbose")
    assert code == 0, err
    runtime = json.loads((tmp_path / "net.vmfb.json").read_text())["runtime"]
    assert runtime["transient_bytes"] == module_transient_size(out.read_bytes()) is not None
    assert f"a !hal.buffer of {runtime['transient_bytes']} bytes" in err and "iree.abi.transients" in runtime["note"]
    x = torch.randn(1, 4, 10, 10)
    np.testing.assert_allclose(tgc.load(out)(x)[0], reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("extra", "words"), [
    (["--dynamic-dim", "0"], "--external-transients needs static shapes"),
    ([], "apply to an IREE module output; add -o model.vmfb"),
])
def test_external_transients_refused_early(capsys: pytest.CaptureFixture[str], model_file: Path, tmp_path: Path,
                                           extra: list[str], words: str) -> None:
    output = ["-o", str(tmp_path / "net.vmfb")] if extra else []
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "2,4,10,10", *output,
                           "--external-transients", *extra)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == [model_file]
