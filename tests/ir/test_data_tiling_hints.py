"""Data tiling per GEMM: `im2col` marks small-K grouped GEMMs
(builders.NO_DATA_TILING, strategies/im2col.wants_data_tiling), and the `iree`
runner turns the marks into IREE's data-tiling hints on every other matmul-like
op, so that iree-compile packs those and leaves the marked ones untiled."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from iree.compiler.tools.binaries import find_tool

import torch_grouped_conv as tgc
from tests.support.models import grouped_then_pointwise
from torch_grouped_conv.rewrite.driver import ops_named
from torch_grouped_conv.rewrite.emit.builders import NO_DATA_TILING
from torch_grouped_conv.rewrite.strategies.im2col import DATA_TILING_MIN_K, wants_data_tiling
from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.common import module_bytecode
from torch_grouped_conv.runners.iree_flags import TUNED, flag_set


def test_rule() -> None:
    assert wants_data_tiling(1, 9)  # groups == 1: the whole-network GEMMs
    assert wants_data_tiling(16, DATA_TILING_MIN_K)  # a long reduction (wav2vec2: 6144)
    assert not wants_data_tiling(4, DATA_TILING_MIN_K - 1)


@pytest.mark.parametrize(("c_in", "kernel", "groups", "marked"), [
    (128, 3, 4, True),  # K = 32 * 3
    (256, 65, 2, False),  # K = 128 * 65 >= 1024
])
def test_im2col_marks_small_k_grouped_gemms(c_in: int, kernel: int, groups: int, marked: bool) -> None:
    model, x = grouped_then_pointwise(c_in, kernel, groups)
    module = tgc.compile(model, x, grouped_conv="auto")
    [gemm] = ops_named(module, "linalg.batch_matmul")
    assert (NO_DATA_TILING in gemm.attributes) is marked


def test_runner_hints_every_other_matmul_on_a_copy() -> None:
    model, x = grouped_then_pointwise(128, 3, 4)
    module = tgc.compile(model, x, grouped_conv="auto")
    hinted, tiles = iree.hint_data_tiling(module)
    assert tiles and hinted is not module and iree.DATA_TILING_HINT not in str(module)  # the caller's module is untouched
    [gemm] = ops_named(hinted, "linalg.batch_matmul")
    others = [op for name in iree.MATMUL_OPS | {"linalg.generic"} for op in ops_named(hinted, name)
              if iree.DATA_TILING_HINT in op.attributes]
    assert iree.DATA_TILING_HINT not in gemm.attributes and len(others) == 1  # the 1x1 conv's matmul


def test_unmarked_modules_are_left_to_iree() -> None:
    model, x = grouped_then_pointwise(256, 65, 2)
    module = tgc.compile(model, x, grouped_conv="auto")
    assert iree.hint_data_tiling(module) == (module, True)


def test_modules_with_only_marked_gemms_compile_without_data_tiling(iree_command: Callable[..., list[str]]) -> None:
    torch.manual_seed(0)
    module = tgc.compile(torch.nn.Conv1d(128, 32, 3, groups=4).eval(), torch.randn(1, 128, 40), grouped_conv="auto")
    assert iree.hint_data_tiling(module) == (module, False)
    command = iree_command(module)
    assert not set(flag_set(TUNED)) & set(command) and all(f in command for f in iree.IREE_TARGET_FLAGS)


def test_iree_packs_only_the_unmarked_matmul() -> None:
    """iree-compile --compile-to=flow: the marked grouped GEMM stays a plain batch_matmul, the 1x1
    conv's matmul is data-tiled (the global-optimization path materializes it as an mmt4d)."""
    model, x = grouped_then_pointwise(128, 3, 4)
    module, _ = iree.hint_data_tiling(tgc.compile(model, x, grouped_conv="auto"))
    with tempfile.TemporaryDirectory() as tmp:
        source, flow = Path(tmp, "in.mlirbc"), Path(tmp, "flow.mlir")
        source.write_bytes(module_bytecode(module))
        subprocess.run([find_tool("iree-compile"), str(source), "-o", str(flow), *iree.IREE_TARGET_FLAGS,
                        *flag_set(TUNED), "--compile-to=flow"], check=True, capture_output=True)
        text = flow.read_text()
    marked = [line for line in text.splitlines() if NO_DATA_TILING in line]
    assert marked and all("encoding" not in line and "mmt4d" not in line for line in marked)
    assert all("linalg.batch_matmul" in line for line in marked)
    assert "linalg.mmt4d" in text and "linalg.matmul" not in text
