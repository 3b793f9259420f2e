"""The `taps` (depthwise) and `matmul` (groups == 1) strategies, and `auto`
with them: numbers on both backends against PyTorch eager, and the op chain
each emits. Layout everywhere: input [N,C,H,W], weight [F,C/G,KH,KW].
"""

from __future__ import annotations

from collections import Counter

import pytest

import torch_grouped_conv as tgc
from tests.support.compiled import check_matches_eager, compiled, op_names, print_ir
from tests.support.configs import TAPS_MATMUL_GRID, ConvConfig
from torch_grouped_conv import BACKENDS

GRID = TAPS_MATMUL_GRID


# Each new strategy on the cases it has an emitter for (elsewhere it reuses
# the default emitter, covered by test_strategies_2d.py); auto on every config.
STRATEGY_CASES = {"taps": ("depthwise", "grouped"), "matmul": ("conv",), "auto": ("depthwise", "conv", "grouped")}
RUNS = [(s, name) for s, cases in STRATEGY_CASES.items() for name, c in GRID.items() if c.case in cases]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("strategy", "config_name"), RUNS)
def test_matches_eager(strategy: str, config_name: str, backend: str) -> None:
    check_matches_eager(GRID[config_name], strategy, backend, config_name)


def emitted(config_name: str, strategy: str) -> Counter[str]:
    module, _ = compiled(GRID[config_name], strategy, "torch")
    return Counter(op_names(module))


NAMED_CONVS = ("linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw", "linalg.batch_matmul",
               "linalg.depthwise_conv_2d_nhwc_hwc", "linalg.conv_2d_nhwc_hwcf", "linalg.transpose")


@pytest.mark.parametrize(("config_name", "taps", "deinterleaves"), [
    ("dw3_s1_bias_b1", 9, 0), ("dw7_s1_bias_b1", 49, 0),
    ("dw5_s2_nobias_b3", 25, 1),  # stride 2: the columns de-interleaved first, one linalg.transpose
])
def test_taps_op_chain(config_name: str, taps: int, deinterleaves: int) -> None:
    """Per tap a strided input view and a [C] weight slice, into one
    all-parallel generic with 2 * taps multiply-adds; no named conv. A bias
    is one more generic (one addf) after it. At a column stride of 2 the padded
    input (9 + 4 = 13 columns, zero-padded to 14) is viewed as [7, 2] column
    pairs and transposed to [2, 7] phases first."""
    counts = emitted(config_name, "taps")
    module, _ = compiled(GRID[config_name], "taps", "torch")
    bias = int(GRID[config_name].bias)
    assert counts["tensor.extract_slice"] == 2 * taps, print_ir(module)
    assert counts["linalg.generic"] == 1 + bias and counts["linalg.transpose"] == deinterleaves, print_ir(module)
    assert counts["arith.mulf"] == taps and counts["arith.addf"] == taps + bias
    assert not [op for op in NAMED_CONVS if op != "linalg.transpose" and counts[op]], dict(counts)
    assert "reduction" not in print_ir(module)


def test_grouped_taps_op_chain() -> None:
    """grouped_g4_k5: C/G = 4, 5x5 -> 100 products; per product an input view
    x[:, c::C/G, ...] and a weight slice [F] expanded to [G, F/G]."""
    counts = emitted("grouped_g4_k5", "taps")
    module, _ = compiled(GRID["grouped_g4_k5"], "taps", "torch")
    products, bias = 4 * 25, int(GRID["grouped_g4_k5"].bias)
    assert counts["tensor.extract_slice"] == 2 * products and counts["linalg.generic"] == 1 + bias, print_ir(module)
    assert counts["arith.mulf"] == products and counts["arith.addf"] == products + bias
    assert not [op for op in NAMED_CONVS if counts[op]], dict(counts)
    assert "reduction" not in print_ir(module)


@pytest.mark.parametrize(("config_name", "picked"), [("grouped_g4_s2", "taps"), ("grouped_cg16_im2col", "im2col"),
                                                     ("conv1_s2_b3", "matmul"), ("conv3_s1_b1", "matmul"),
                                                     ("conv3_s2_b1", "matmul"),
                                                     ("dw7_s2_nobias_b3", "taps")])
def test_auto_report(config_name: str, picked: str) -> None:
    _, report = compiled(GRID[config_name], "auto", "torch")
    (decision,) = report.decisions
    assert decision.strategy == picked, decision.note


@pytest.mark.parametrize(("config_name", "expected"), [
    # batch 1: collapse x / weight / acc to 2D, one linalg.matmul, expand back.
    ("conv1_s1_b1", {"linalg.matmul": 1, "tensor.extract_slice": 0, "linalg.generic": 0}),
    # stride 2: a strided slice first.
    ("conv1_s2_b1", {"linalg.matmul": 1, "tensor.extract_slice": 1, "linalg.generic": 0}),
    # batch 3: a generic contraction with a shared [F,C] weight.
    ("conv1_s1_b3", {"linalg.matmul": 0, "tensor.extract_slice": 0, "linalg.generic": 1}),
    # 3x3: im2col generic + batch_matmul with one group.
    ("conv3_s1_b1", {"linalg.batch_matmul": 1, "linalg.generic": 1, "linalg.matmul": 0}),
])
def test_matmul_op_chain(config_name: str, expected: dict[str, int]) -> None:
    """`expected` leaves out the bias add (one linalg.generic after the conv, iff a bias)."""
    counts = emitted(config_name, "matmul")
    expected = {**expected, "linalg.generic": expected["linalg.generic"] + int(GRID[config_name].bias)}
    actual = {name: counts[name] for name in expected}
    assert actual == expected, print_ir(compiled(GRID[config_name], "matmul", "torch")[0])
    assert counts["linalg.conv_2d_nchw_fchw"] == 0
    if "linalg.batch_matmul" not in expected:
        assert counts["linalg.transpose"] == 0


def test_matmul_contraction_has_one_reduction() -> None:
    module, _ = compiled(GRID["conv1_s1_b3"], "matmul", "torch")
    assert print_ir(module).count('"reduction"') == 1, print_ir(module)


def test_taps_declines_huge_windows() -> None:
    config = ConvConfig(c_in=4, groups=4, kernel=9, padding=4, spatial=(10, 10))
    tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="taps", output_type="torch")
    report = tgc.last_report()
    assert report is not None
    (decision,) = report.decisions
    assert decision.strategy == "grouped" and "81 taps > 64" in (decision.note or "")
