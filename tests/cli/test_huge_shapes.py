"""`compile` takes shapes, not data, and its time does not grow with the input
size: adaptive average pooling over windows too large for PyTorch's unrolled
decomposition is pooled by matmuls (frontends/decompositions.py), with the
same numbers as PyTorch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import model_source, run_cli, write_model
from torch_grouped_conv.frontends.decompositions import UNROLL_LIMIT, unrolled_terms

# A conv then an adaptive pool to 7x7: from an input of H x W, windows of unequal length
# (H - 2 = 128 -> 7: 20-wide windows, 400 positions; 99998 -> 7: 14287-wide, ~2e8 positions).
POOL_MODEL = model_source("Conv2d(3, 4, 3)", "AdaptiveAvgPool2d((7, 7))")


@pytest.fixture
def pool_model(tmp_path: Path) -> Path:
    return write_model(tmp_path, POOL_MODEL, "pool_model.py")


def test_compile_a_huge_shape_with_adaptive_pooling(pool_model, tmp_path):
    """1x3x100000x100000 (120 GB of data, ~2e8 window positions for PyTorch's
    decomposition): compiled in seconds, nothing run. In a process of its own,
    with a timeout, so a regression fails instead of hanging the suite."""
    assert unrolled_terms((99998, 99998), (7, 7)) > 10**8
    out = tmp_path / "big.mlir"
    done = subprocess.run(
        [sys.executable, "-m", "torch_grouped_conv.cli", "compile", f"{pool_model}:make", "--input-shape",
         "1,3,100000,100000", "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ir = out.read_text()
    assert "func.func @main(%arg0: tensor<1x3x100000x100000xf32>) -> tensor<1x4x7x7xf32>" in ir
    pooling = [line for line in ir.splitlines() if re.search(r"linalg\.(?:batch_)?matmul", line) and "99998" in line]
    assert len(pooling) == 2  # rows @ x @ cols^T over the conv's 99998x99998 output


@pytest.mark.parametrize("backend", ["refbackend", "iree"])
def test_pooling_over_large_windows_matches_pytorch(capsys, pool_model, backend):
    assert unrolled_terms((128, 128), (7, 7)) > UNROLL_LIMIT
    code, out, err = run_cli(capsys, "verify", f"{pool_model}:make", "--input-shape", "1,3,130,130",
                             "--backend", backend)
    assert code == 0, out + err
    assert "PASS" in out


def test_small_windows_keep_pytorchs_decomposition(capsys, pool_model):
    """At ordinary sizes the IR is what torch-mlir's own table gives: no matmul."""
    assert 0 < unrolled_terms((11, 11), (7, 7)) <= UNROLL_LIMIT
    code, out, err = run_cli(capsys, "compile", f"{pool_model}:make", "--input-shape", "1,3,13,13",
                             "--output-type", "torch")
    assert code == 0, err
    assert "torch.aten.mm" not in out and "torch.aten.bmm" not in out
    assert "torch.aten.select.int" in out or "torch.aten.index" in out
