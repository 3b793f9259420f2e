"""The command line a person expects: --version, defaults and examples in
every --help, --json/--report records, --dtype, --dynamic-dim, and the
announcement of long stages."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from tests.support.cli import SMALL_LAYERS, model_source, run_cli, write_model

MODEL = model_source(*SMALL_LAYERS, "ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)")


@pytest.fixture()
def model(tmp_path: Path) -> str:
    return f"{write_model(tmp_path, MODEL, 'net.py')}:make"


def test_version_names_the_package_and_the_compilers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0
    for dist in ("torch-grouped-conv", "torch-mlir", "iree-base-compiler", "iree-base-runtime", "torch"):
        assert f"{dist} {importlib.metadata.version(dist)}" in out


def test_top_help_lists_every_command_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("compile", "lower", "verify", "demo", "bench"):
        assert f"\n  {command} " in out, command
    assert "examples:" in out and "torch-grouped-conv demo" in out


@pytest.mark.parametrize("command", ["compile", "lower", "verify", "demo"])
def test_every_help_shows_defaults_and_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    text = " ".join(out.split())  # argparse wraps lines
    assert "examples:" in out
    examples = [line for line in out.splitlines() if line.startswith(f"  torch-grouped-conv {command}")]
    assert len(examples) >= 2, out
    if command in ("verify", "demo"):
        assert "(default: refbackend)" in text
    if command != "demo":
        assert "(default: auto)" in text  # --grouped-conv (and lower's --input-form)
    if command in ("compile", "verify"):
        assert "--dtype DTYPE" in out and "(default: f32)" in text
        assert "--dynamic-dim" in out and "--json" in out and "--report" in out


def test_compile_json_has_one_record_per_conv(capsys: pytest.CaptureFixture[str], model: str, tmp_path: Path) -> None:
    records = tmp_path / "report.json"
    code, _, err = run_cli(capsys, "compile", model, "--input-shape", "1,4,5,5", "-o", str(tmp_path / "net.mlir"),
                           "--json", str(records))
    assert code == 0, err
    assert "┃" not in err and len(err.strip().splitlines()) <= 3  # the default output stays short
    report = json.loads(records.read_text())["report"]
    assert report["strategy"] == "auto"
    first, second, third = report["decisions"]
    assert [d["module_path"] for d in report["decisions"]] == ["0", "2", "3"]
    assert (first["case"], second["case"], third["case"]) == ("grouped", "depthwise", "transposed_conv")
    assert first["flops"] == 2 * 1 * 8 * (4 // 2) * 3 * 3 * 5 * 5
    assert second["flops"] == 2 * 1 * 8 * 1 * 3 * 3 * 3 * 3
    # Transposed: only the products of a real input element and a tap that land in the output.
    stride, padding, size, kernel, out = 2, 1, 3, 3, 6
    pairs = sum(1 for i in range(size) for j in range(kernel) if 0 <= i * stride - padding + j < out)
    assert third["output_shape"] == [1, 4, out, out]
    assert third["flops"] == 2 * 1 * 8 * 4 * pairs * pairs
    assert report["total_flops"] == first["flops"] + second["flops"] + third["flops"]
    for d in report["decisions"]:
        assert d["why"] == d["note"] and d["why"].startswith("auto: ") and d["dtype"] == "f32"


def test_report_prints_a_table_on_stderr(capsys: pytest.CaptureFixture[str], model: str) -> None:
    code, out, err = run_cli(capsys, "compile", model, "--input-shape", "1,4,5,5", "--report", "--output-type", "torch")
    assert code == 0 and "func.func @main" in out
    assert "┃ module" in err and "transposed_conv" in err and "1x8x3x3 -> 1x4x6x6" in err
    assert "3 convolution(s), strategy=auto, dtype f32, total 0.0 MFLOPs" in err


def test_compile_dtype_casts_model_and_input(capsys: pytest.CaptureFixture[str], model: str, tmp_path: Path) -> None:
    records = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "compile", model, "--input-shape", "1,4,5,5", "--dtype", "f16",
                             "--json", str(records))
    assert code == 0, err
    assert "func.func @main(%arg0: tensor<1x4x5x5xf16>) -> tensor<1x4x6x6xf16>" in out
    assert {d["dtype"] for d in json.loads(records.read_text())["report"]["decisions"]} == {"f16"}


@pytest.mark.parametrize("spec", ["0", "0:0"])
def test_compile_dynamic_dim(capsys: pytest.CaptureFixture[str], model: str, spec: str) -> None:
    code, out, err = run_cli(capsys, "compile", model, "--input-shape", "2,4,5,5", "--dynamic-dim", spec,
                             "--dynamic-dim", "3")
    assert code == 0, err
    assert "func.func @main(%arg0: tensor<?x4x5x?xf32>) -> tensor<?x4x6x?xf32>" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dtype", "f8"], "unknown --dtype 'f8'; choose one of f32, f16, bf16, f64"),
        (["--dynamic-dim", "batch"], "malformed --dynamic-dim 'batch'"),
        (["--dynamic-dim", "1:0"], "malformed --dynamic-dim '1:0'"),
        (["--dynamic-dim", "4"], "--dynamic-dim 4: the input has 4 dims (0..3)"),
        (["--dynamic-dim", "0", "--input-shape", "1,4,5,5"], "the example size of dim 0 is 1"),
    ],
    ids=["dtype", "dim-name", "input-1", "dim-range", "size-1"],
)
def test_bad_dtype_or_dynamic_dim_exits_2(capsys: pytest.CaptureFixture[str], model: str, tmp_path: Path,
                                          args: list[str], message: str) -> None:
    shape = [] if "--input-shape" in args else ["--input-shape", "2,4,5,5"]
    target = tmp_path / "out.mlir"
    code, _, err = run_cli(capsys, "compile", model, *shape, *args, "-o", str(target))
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and not target.exists()


def test_verify_json_records_dtype_and_progress(capsys: pytest.CaptureFixture[str], model: str,
                                                tmp_path: Path) -> None:
    result_path = tmp_path / "result.json"
    code, out, err = run_cli(capsys, "verify", model, "--input-shape", "2,4,5,5", "--dtype", "bf16",
                             "--dynamic-dim", "0", "--json", str(result_path), "--report")
    assert code == 0, out + err
    assert "compile …" in err  # stderr is not a terminal here: one line for the long stage
    assert "┃ module" in err
    result = json.loads(result_path.read_text())
    assert result["result"] == "PASS" and result["input_shape"] == [2, 4, 5, 5]
    decisions = result["report"]["decisions"]
    assert [d["module_path"] for d in decisions] == ["0", "2", "3"]
    assert {d["dtype"] for d in decisions} == {"bf16"} and decisions[0]["input_shape"][0] is None
    assert result["comparison"]["tolerance"] == 5e-2  # bf16, against the model run in f64


def test_progress_on_a_terminal_is_a_spinner_with_elapsed_time() -> None:
    """On a terminal each stage shows `NAME …` with its elapsed time while it runs, then clears;
    off a terminal only the long stage (compile) gets one line, the others none."""
    import io
    import time

    from rich.console import Console

    from torch_grouped_conv.progress import StageProgress

    tty = io.StringIO()
    progress = StageProgress(Console(file=tty, force_terminal=True, width=80))
    with progress.stage("export"):
        time.sleep(0.3)
    assert "export …" in tty.getvalue() and "0:00:00" in tty.getvalue()
    assert tty.getvalue().endswith("\x1b[2K")  # transient: the line is cleared when the stage ends

    log = io.StringIO()
    progress = StageProgress(Console(file=log, force_terminal=False, width=80))
    for stage in ("export", "plugin", "compile", "run"):
        with progress.stage(stage):
            pass
    assert log.getvalue() == "compile …\n"


def test_lower_records_read_module_paths_from_named_locations(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    """`lower --json/--report` on IR printed with its locations: the NameLocs
    the torch.export frontend puts on each conv give the records' module paths."""
    import torch

    import torch_grouped_conv as tgc

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, groups=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=8))
    module = tgc.compile(model.eval(), torch.randn(1, 4, 9, 9), grouped_conv=None, output_type="torch")
    source, records = tmp_path / "net.torch.mlir", tmp_path / "records.json"
    source.write_text(module.operation.get_asm(enable_debug_info=True))
    code, out, err = run_cli(capsys, "lower", str(source), "--json", str(records), "--report",
                             "--grouped-conv", "grouped")
    assert code == 0, err
    assert "┃ module" in err and "linalg.conv_2d_ngchw_gfchw" in out
    data = json.loads(records.read_text())
    assert data["input_file"] == str(source) and data["grouped_conv"] == "grouped"
    decisions = data["report"]["decisions"]
    assert [(d["module_path"], d["case"], d["strategy"]) for d in decisions] == [
        ("0", "grouped", "grouped"), ("2", "depthwise", "grouped")]
    assert decisions[0]["flops"] == 2 * 1 * 8 * 2 * 3 * 3 * 7 * 7
