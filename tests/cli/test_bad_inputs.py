"""Every bad input to the command line: exit code 2, exactly one line on
stderr, no traceback, checked before the long work, no file left behind.
Plus the API's own one-line errors for the same mistakes, and the output
files' permissions (the umask's)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torch_grouped_conv as tgc
from tests.support.cli import SMALL_LAYERS, model_source, run_cli, write_model

SMALL_MODEL = model_source(*SMALL_LAYERS[:2])

# A torch-backend conv whose numbers contradict each other: groups=3 does not divide C_in=8.
MALFORMED_IR = """
func.func @main(%x: !torch.vtensor<[1,8,5,5],f32>, %w: !torch.vtensor<[6,2,3,3],f32>)
    -> !torch.vtensor<[1,6,3,3],f32> {
  %none = torch.constant.none
  %false = torch.constant.bool false
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int3 = torch.constant.int 3
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %false, %zeros, %int3 :
    !torch.vtensor<[1,8,5,5],f32>, !torch.vtensor<[6,2,3,3],f32>, !torch.none, !torch.list<int>,
    !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,6,3,3],f32>
  return %0 : !torch.vtensor<[1,6,3,3],f32>
}
"""


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    return write_model(tmp_path, SMALL_MODEL, "small_model.py")


def one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert err.startswith("torch-grouped-conv: error: "), err
    for word in words:
        assert word in err, err


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_output_is_an_existing_folder(capsys, model_file, tmp_path):
    out = tmp_path / "outdir"
    out.mkdir()
    before = files_in(tmp_path)
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8", "-o", str(out))
    one_line_error(code, err, "is a folder", "model.mlir")
    assert files_in(tmp_path) == before and files_in(out) == set()


def test_output_in_proc(capsys, model_file):
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8", "-o", "/proc/x.mlir")
    one_line_error(code, err, "cannot write to output folder '/proc'")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_output_in_read_only_folder(capsys, model_file, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8",
                               "-o", str(folder / "x.mlir"))
        one_line_error(code, err, "cannot write to output folder")
        assert files_in(folder) == set()
    finally:
        folder.chmod(0o755)


def test_json_output_checked_before_the_work(capsys, model_file, tmp_path):
    code, _, err = run_cli(capsys, "verify", f"{model_file}:make", "--input-shape", "1,4,8,8",
                           "--json", str(tmp_path))
    one_line_error(code, err, "is a folder")


def test_compile_takes_shapes_not_data(capsys, model_file, tmp_path):
    """A 120 GB input shape: `compile` traces with a data-free (fake) tensor, so it just compiles."""
    out = tmp_path / "big.mlir"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,100000,100000",
                           "--output-type", "torch", "-o", str(out))
    assert code == 0, err
    assert "!torch.vtensor<[1,4,100000,100000],f32>" in out.read_text()


def test_verify_says_how_much_memory(capsys, model_file, tmp_path):
    code, _, err = run_cli(capsys, "verify", f"{model_file}:make", "--input-shape", "1,4,100000,100000",
                           "--json", str(tmp_path / "r.json"))
    one_line_error(code, err, "needs 149.0 GiB", "smaller --input-shape")
    assert files_in(tmp_path) == {"small_model.py"}


def test_model_rejecting_its_input_prints_one_line(tmp_path):
    """torchvision's alexnet rejects 32x32 in a pooling layer; torch logs a
    traceback of it while tracing: silenced, only our line is printed."""
    done = subprocess.run(
        [sys.executable, "-m", "torch_grouped_conv.cli", "compile", "torchvision:alexnet", "--input-shape",
         "1,3,32,32", "-o", str(tmp_path / "a.mlir")],
        capture_output=True, text=True, timeout=600,
    )
    one_line_error(done.returncode, done.stderr, "torchvision:alexnet rejects input shape [1, 3, 32, 32]",
                   "Output size is too small")
    assert files_in(tmp_path) == set()


def test_lower_malformed_op_is_an_input_error(capsys, tmp_path):
    source = tmp_path / "bad.mlir"
    source.write_text(MALFORMED_IR)
    code, out, err = run_cli(capsys, "lower", str(source), "-o", str(tmp_path / "out.mlir"))
    one_line_error(code, err, "malformed convolution", "groups=3 does not divide C_in=8")
    assert out == "" and files_in(tmp_path) == {"bad.mlir"}


def test_compile_mlir_points_to_lower(capsys, tmp_path):
    source = tmp_path / "x.mlir"
    source.write_text(MALFORMED_IR)
    code, _, err = run_cli(capsys, "compile", str(source))
    one_line_error(code, err, "is MLIR, not a model", "torch-grouped-conv lower")


def test_folder_named_onnx(capsys, tmp_path):
    folder = tmp_path / "x.onnx"
    folder.mkdir()
    code, _, err = run_cli(capsys, "compile", str(folder))
    one_line_error(code, err, "is a folder")


def test_api_compile_of_a_non_module():
    with pytest.raises(tgc.InputError, match="takes a torch.nn.Module, got function"):
        tgc.compile(torch.nn.functional.relu, torch.randn(2, 3))


def test_output_files_honour_the_umask(capsys, model_file, tmp_path):
    out = tmp_path / "x.mlir"
    previous = os.umask(0o022)
    try:
        code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,4,8,8",
                               "--output-type", "torch", "-o", str(out))
    finally:
        os.umask(previous)
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert files_in(tmp_path) == {"small_model.py", "x.mlir"}
