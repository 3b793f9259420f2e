"""Every strategy (`grouped_conv=`) on a grid of 2D convolutions: numbers on
both backends against PyTorch eager, and the op chain each strategy emits.

The grid (tests/support/configs.py `STRATEGY_GRID`) covers groups 1/2/4/8/C,
stride 1/2, padding 0/1, dilation 1/2, bias on/off, batch 1/3, non-square
inputs and kernels, F != C and a channel multiplier (case
`depthwise_multiplier`). Layout everywhere: input [N,C,H,W], weight [F,C/G,KH,KW].
"""

from __future__ import annotations

from collections import Counter

import pytest

import torch_grouped_conv as tgc
from tests.support.compiled import check_matches_eager, compiled, op_names, print_ir
from tests.support.configs import STRATEGY_GRID, ConvConfig
from torch_grouped_conv import BACKENDS
from torch_grouped_conv.rewrite.driver import convolution_ops
from torch_grouped_conv.rewrite.plan import Case, ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.read.spec import Refusal, read_conv_spec
from torch_grouped_conv.rewrite.strategies import STRATEGIES
from torch_grouped_conv.rewrite.strategies.split import MAX_SPLIT_GROUPS
from torch_grouped_conv.rewrite.strategies.strategy import DEFAULT_STRATEGY, REGISTRY

GRID = STRATEGY_GRID


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("config_name", list(GRID))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_matches_eager(strategy: str, config_name: str, backend: str) -> None:
    check_matches_eager(GRID[config_name], strategy, backend, config_name)


def emitted_ops(config_name: str, strategy: str) -> Counter[str]:
    """Op counts right after the rewrite (torch form), before torch-mlir's own lowering."""
    module, _ = compiled(GRID[config_name], strategy, "torch")
    return Counter(op_names(module))


# Per strategy, for "g4_f8_k3x5" (groups=4, C=16, F=8, bias, padding): the ops
# the rewrite must emit, with their counts. Common to all: one tensor.pad, no
# linalg.broadcast (the accumulator is zeros) and one bias add after the conv
# (a linalg.generic, counted in each chain).
OP_CHAINS: dict[str, dict[str, int]] = {
    # expand input, weight and bias by group where they enter; collapse the result.
    "grouped": {"linalg.conv_2d_ngchw_gfchw": 1, "tensor.expand_shape": 3, "tensor.collapse_shape": 1,
                "linalg.generic": 1},
    # per group: slice input and weight, zero-fill, conv; then concat, then the bias add.
    "split": {"linalg.conv_2d_nchw_fchw": 4, "tensor.extract_slice": 8, "linalg.fill": 4,
              "tensor.concat": 1, "linalg.generic": 1},
    # NCHW->NHWC on input and accumulator, GFCHW->GFHWC on the weight, back on the result.
    "channels-last": {"linalg.conv_2d_nhwgc_gfhwc": 1, "linalg.transpose": 4,
                      "tensor.expand_shape": 3, "tensor.collapse_shape": 1, "linalg.generic": 1},
    # im2col generic, batch_matmul, bias add; accumulator [N,F,..] <-> [F,N,..] transposes;
    # expand: input, weight, accumulator, result; collapse: col, weight, acc, result.
    "im2col": {"linalg.generic": 2, "linalg.batch_matmul": 1, "linalg.transpose": 2,
               "tensor.expand_shape": 4, "tensor.collapse_shape": 4},
}
COMMON_OPS = {"tensor.pad": 1, "linalg.broadcast": 0}
CONV_OPS = ("linalg.conv_2d_ngchw_gfchw", "linalg.conv_2d_nchw_fchw", "linalg.conv_2d_nhwgc_gfhwc",
            "linalg.batch_matmul", "linalg.depthwise_conv_2d_nchw_chw", "linalg.depthwise_conv_2d_nhwc_hwc",
            "linalg.conv_2d_nhwc_hwcf")


@pytest.mark.parametrize("strategy", list(OP_CHAINS))
def test_op_chain(strategy: str) -> None:
    counts = emitted_ops("g4_f8_k3x5", strategy)
    expected = {**OP_CHAINS[strategy], **COMMON_OPS}
    actual = {name: counts[name] for name in expected}
    assert actual == expected, print_ir(compiled(GRID["g4_f8_k3x5"], strategy, "torch")[0])
    others = [op for op in CONV_OPS if op not in expected and counts[op]]
    assert not others, f"unexpected {others}"
    assert counts["torch.aten.convolution"] == 0


@pytest.mark.parametrize(("config_name", "conv_op"), [
    ("g1", "linalg.conv_2d_nhwc_hwcf"), ("dw_s2_b3_9x13", "linalg.depthwise_conv_2d_nhwc_hwc"),
])
def test_channels_last_other_cases(config_name: str, conv_op: str) -> None:
    counts = emitted_ops(config_name, "channels-last")
    assert counts[conv_op] == 1 and counts["linalg.transpose"] == 4, dict(counts)


def test_split_declines_many_groups_into_report() -> None:
    config = ConvConfig(c_in=2 * (MAX_SPLIT_GROUPS + 1), groups=MAX_SPLIT_GROUPS + 1, spatial=(4, 4))
    module = tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="split", output_type="torch")
    report = tgc.last_report()
    assert report is not None and report.strategy == "split"
    (decision,) = report.decisions
    assert decision.strategy == "grouped"
    assert decision.note is not None and f"groups={MAX_SPLIT_GROUPS + 1} > {MAX_SPLIT_GROUPS}" in decision.note
    assert "fell back to grouped" in report.summary()
    assert Counter(op_names(module))["linalg.conv_2d_ngchw_gfchw"] == 1


def test_strategy_with_nothing_special_reuses_default() -> None:
    _, report = compiled(GRID["dw_s2_b3_9x13"], "im2col")
    (decision,) = report.decisions
    assert decision.strategy == "im2col" and "default emitter" in (decision.note or "")
    assert emitted_ops("dw_s2_b3_9x13", "im2col")["linalg.depthwise_conv_2d_nchw_chw"] == 1


# The op that marks each strategy's emitter, per case (None: the default emitter's).
MARKER_OPS: dict[tuple[str, Case], str | tuple[str, ...]] = {
    ("grouped", Case.GROUPED): "linalg.conv_2d_ngchw_gfchw",
    ("grouped", Case.DEPTHWISE_MULTIPLIER): "linalg.conv_2d_ngchw_gfchw",
    ("grouped", Case.DEPTHWISE): "linalg.depthwise_conv_2d_nchw_chw",
    ("grouped", Case.CONV): "linalg.conv_2d_nchw_fchw",
    ("split", Case.GROUPED): "tensor.concat",
    ("split", Case.DEPTHWISE_MULTIPLIER): "tensor.concat",
    ("split", Case.DEPTHWISE): "tensor.concat",
    ("channels-last", Case.GROUPED): "linalg.conv_2d_nhwgc_gfhwc",
    ("channels-last", Case.DEPTHWISE_MULTIPLIER): "linalg.conv_2d_nhwgc_gfhwc",
    ("channels-last", Case.DEPTHWISE): "linalg.depthwise_conv_2d_nhwc_hwc",
    ("channels-last", Case.CONV): "linalg.conv_2d_nhwc_hwcf",
    ("im2col", Case.GROUPED): "linalg.batch_matmul",
    ("im2col", Case.DEPTHWISE_MULTIPLIER): "linalg.batch_matmul",
    ("im2col", Case.CONV): "linalg.batch_matmul",
    ("taps", Case.DEPTHWISE): "tensor.extract_slice",  # one strided view per tap
    ("taps", Case.GROUPED): "tensor.extract_slice",
    ("taps", Case.DEPTHWISE_MULTIPLIER): "tensor.extract_slice",
    ("matmul", Case.CONV): ("linalg.matmul", "linalg.batch_matmul"),  # 1x1, or KxK through im2col
    ("winograd", Case.CONV): "linalg.batch_matmul",  # over the 36 tile positions
    ("winograd", Case.GROUPED): "linalg.batch_matmul",
}


def emitted_marker(module: object, marker: str | tuple[str, ...]) -> bool:
    """Whether `module` holds the marker op (one of them, when several forms exist)."""
    counts = Counter(op_names(module))
    return any(counts[m] >= 1 for m in ((marker,) if isinstance(marker, str) else marker))


def test_marker_ops_cover_every_emitter() -> None:
    registered = {(strategy.name, case) for strategy in REGISTRY.values() for case in strategy.emitters}
    assert registered == set(MARKER_OPS)


@pytest.mark.parametrize("config_name", list(GRID))
@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "auto"])
def test_strategy_uses_its_emitter(strategy: str, config_name: str) -> None:
    """Each strategy's own emitter for the cases it registers (no note), the
    default emitter with a note for the others."""
    module, report = compiled(GRID[config_name], strategy, "torch")
    (decision,) = report.decisions
    plan = plan_first_convolution(config_name)
    case, reason = plan.case, REGISTRY[strategy].refusal(plan)
    if reason is not None:  # outside what it covers (winograd: 3x3 stride 1): the default emitter, with the reason
        assert (decision.strategy, decision.note) == (DEFAULT_STRATEGY, f"{strategy} declined: {reason}; "
                                                      f"fell back to {DEFAULT_STRATEGY}"), decision
        return
    assert decision.strategy == strategy, decision
    marker = MARKER_OPS.get((strategy, case), MARKER_OPS[(DEFAULT_STRATEGY, case)])
    assert emitted_marker(module, marker), print_ir(module)
    if (strategy, case) in MARKER_OPS:
        assert decision.note is None, decision.note
    else:
        assert decision.note == f"{strategy} has nothing special for {case}; default emitter"


# What `auto` picks for each grid config, written from the rule in
# strategies/auto.py's docstring (C = 16, 3x3 unless the name says otherwise):
# (strategy, case, words of the report note).
AUTO_PICKS: dict[str, tuple[str, Case, str]] = {
    "g1": ("matmul", Case.CONV, "groups=1, kernel [3, 3]: im2col + matmul"),  # rule 7
    "g2_s2_nobias": ("taps", Case.GROUPED, "groups=2, C/G*KH*KW=72 <= 72 (default tuning): unrolled taps"),  # rule 3, bound
    "g4_p0_d2_b3": ("taps", Case.GROUPED, "groups=4, C/G*KH*KW=36 <= 72"),
    "g8_9x13_s12": ("taps", Case.GROUPED, "groups=8, C/G*KH*KW=18 <= 72"),
    "g4_f8_k3x5": ("taps", Case.GROUPED, "groups=4, C/G*KH*KW=60 <= 72"),  # 4 x 3x5
    "dw_s2_b3_9x13": ("taps", Case.DEPTHWISE, "depthwise with kernel [3, 3] (9 taps): unrolled elementwise taps"),
    "dw_d2_nobias": ("taps", Case.DEPTHWISE, "depthwise with kernel [3, 3] (9 taps)"),
    "dw_k7": ("taps", Case.DEPTHWISE, "depthwise with kernel [7, 7] (49 taps)"),  # rule 1: <= 64 taps
    "multiplier_c8_f16": ("taps", Case.DEPTHWISE_MULTIPLIER, "channel multiplier, kernel [3, 3] (9 taps)"),  # rule 4
    "g3_f3_unit_out": ("taps", Case.GROUPED, "groups=3, C/G*KH*KW=27 <= 72"),
}


def test_auto_picks_cover_the_grid() -> None:
    assert set(AUTO_PICKS) == set(GRID)


@pytest.mark.parametrize("config_name", list(GRID))
def test_auto_emits_what_the_rule_picks(config_name: str) -> None:
    expected, case, words = AUTO_PICKS[config_name]
    config = GRID[config_name]
    module = tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="auto", output_type="torch")
    report = tgc.last_report()
    assert report is not None
    (decision,) = report.decisions
    assert (decision.strategy, decision.case) == (expected, str(case)), decision
    assert decision.note is not None and decision.note.startswith("auto: ") and words in decision.note, decision.note
    assert emitted_marker(module, MARKER_OPS[(expected, case)]), print_ir(module)


def plan_first_convolution(config_name: str) -> ConvPlan:
    """The plan the pattern sees for the grid config (read from the plugin-off torch IR)."""
    (op,) = convolution_ops(compiled(GRID[config_name], None, "torch").module)
    spec = read_conv_spec(op)
    assert not isinstance(spec, Refusal)
    plan = plan_convolution(spec)
    assert isinstance(plan, ConvPlan)
    return plan
