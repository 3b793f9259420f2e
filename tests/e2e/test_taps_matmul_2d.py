"""The `taps` (depthwise) and `matmul` (groups == 1) strategies, and `auto`
with them: numbers on both backends against PyTorch eager, and the op chain
each emits. Layout everywhere: input [N,C,H,W], weight [F,C/G,KH,KW].
"""

from __future__ import annotations

from collections import Counter

import pytest
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.cases_conv2d import Conv2dConfig
from tests.support.compiled import op_names, print_ir
from tests.support.strategy_checks import check_matches_eager, compile_config
from torch_grouped_conv.report import RewriteReport

BACKENDS = ("refbackend", "iree")


def _grid() -> dict[str, Conv2dConfig]:
    grid: dict[str, Conv2dConfig] = {}
    for k in (3, 5, 7):  # depthwise: kernel x stride, bias and batch alternating
        for s in (1, 2):
            bias, batch = (k + s) % 2 == 0, 3 if s == 2 else 1
            grid[f"dw{k}_s{s}_{'bias' if bias else 'nobias'}_b{batch}"] = Conv2dConfig(
                c_in=8, groups=8, kernel=(k, k), stride=(s, s), padding=(k // 2, k // 2), bias=bias,
                batch=batch, spatial=(11, 9))
    grid["dw3_d2_p0"] = Conv2dConfig(c_in=8, groups=8, dilation=(2, 2), padding=(0, 0), spatial=(10, 12))
    for k, p in ((1, 0), (3, 1)):  # groups == 1
        for s in (1, 2):
            for batch in (1, 3):
                grid[f"conv{k}_s{s}_b{batch}"] = Conv2dConfig(
                    c_in=16, c_out=24, groups=1, kernel=(k, k), stride=(s, s), padding=(p, p),
                    bias=batch == 1, batch=batch, spatial=(9, 11))
    grid["conv1_p1"] = Conv2dConfig(c_in=8, c_out=8, groups=1, kernel=(1, 1), padding=(1, 1), spatial=(5, 6))
    grid["grouped_g4_s2"] = Conv2dConfig(groups=4, c_out=8, stride=(2, 2), batch=3)
    grid["grouped_g2_d2_nobias"] = Conv2dConfig(c_in=8, groups=2, dilation=(2, 2), padding=(2, 2), bias=False,
                                                spatial=(9, 10))
    grid["grouped_g4_k5"] = Conv2dConfig(groups=4, c_out=12, kernel=(5, 5), padding=(2, 2), spatial=(7, 9))
    grid["grouped_cg16_im2col"] = Conv2dConfig(c_in=64, groups=4, spatial=(6, 6))  # auto: im2col
    return grid


GRID = _grid()


def compiled(config_name: str, strategy: str, output_type: str = "linalg-on-tensors") -> tuple[ir.Module, RewriteReport]:
    return compile_config(GRID[config_name], strategy, output_type)


# Each new strategy on the cases it has an emitter for (elsewhere it reuses
# the default emitter, covered by test_strategies_2d.py); auto on every config.
STRATEGY_CASES = {"taps": ("depthwise", "grouped"), "matmul": ("conv",), "auto": ("depthwise", "conv", "grouped")}
RUNS = [(s, name) for s, cases in STRATEGY_CASES.items() for name, c in GRID.items() if c.case in cases]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("strategy", "config_name"), RUNS)
def test_matches_eager(strategy: str, config_name: str, backend: str) -> None:
    check_matches_eager(GRID[config_name], strategy, backend, config_name)


def emitted(config_name: str, strategy: str) -> Counter[str]:
    module, _ = compiled(config_name, strategy, "torch")
    return Counter(op_names(module))


NAMED_CONVS = ("linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw", "linalg.batch_matmul",
               "linalg.depthwise_conv_2d_nhwc_hwc", "linalg.conv_2d_nhwc_hwcf", "linalg.transpose")


@pytest.mark.parametrize(("config_name", "taps", "generics"), [
    ("dw3_s1_bias_b1", 9, 1), ("dw7_s1_bias_b1", 49, 1),
    ("dw5_s2_nobias_b3", 25, 2),  # stride 2: the column de-interleave generic first
])
def test_taps_op_chain(config_name: str, taps: int, generics: int) -> None:
    """Per tap a strided input view and a [C] weight slice, into one
    all-parallel generic with 2 * taps multiply-adds; no named conv. A bias
    is one more generic (one addf) after it."""
    counts = emitted(config_name, "taps")
    module, _ = compiled(config_name, "taps", "torch")
    bias = int(GRID[config_name].bias)
    assert counts["tensor.extract_slice"] == 2 * taps and counts["linalg.generic"] == generics + bias, print_ir(module)
    assert counts["arith.mulf"] == taps and counts["arith.addf"] == taps + bias
    assert not [op for op in NAMED_CONVS if counts[op]], dict(counts)
    assert "reduction" not in print_ir(module)


def test_grouped_taps_op_chain() -> None:
    """grouped_g4_k5: C/G = 4, 5x5 -> 100 products; per product an input view
    x[:, c::C/G, ...] and a weight slice [F] expanded to [G, F/G]."""
    counts = emitted("grouped_g4_k5", "taps")
    module, _ = compiled("grouped_g4_k5", "taps", "torch")
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
    _, report = compiled(config_name, "auto", "torch")
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
    assert actual == expected, print_ir(compiled(config_name, "matmul", "torch")[0])
    assert counts["linalg.conv_2d_nchw_fchw"] == 0
    if "linalg.batch_matmul" not in expected:
        assert counts["linalg.transpose"] == 0


def test_matmul_contraction_has_one_reduction() -> None:
    module, _ = compiled("conv1_s1_b3", "matmul", "torch")
    assert print_ir(module).count('"reduction"') == 1, print_ir(module)


def test_taps_declines_huge_windows() -> None:
    config = Conv2dConfig(c_in=4, groups=4, kernel=(9, 9), padding=(4, 4), spatial=(10, 10))
    tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="taps", output_type="torch")
    report = tgc.last_report()
    assert report is not None
    (decision,) = report.decisions
    assert decision.strategy == "grouped" and "81 taps > 64" in (decision.note or "")
