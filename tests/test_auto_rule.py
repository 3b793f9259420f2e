"""The `auto` rule as a pure function of the plan (no IR, no compilation)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.rewrite.plan import Case, ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.spec import ConvSpec, TensorInfo
from torch_grouped_conv.rewrite.strategies.auto import LARGE_DEPTHWISE_KERNEL, pick_strategy


def plan(c_in: int, c_out: int, groups: int, kernel: int) -> ConvPlan:
    spec = ConvSpec(
        location="loc(unknown)",
        input=TensorInfo((1, c_in, 14, 14), "f32"),
        weight=TensorInfo((c_out, c_in // groups, kernel, kernel), "f32"),
        result=TensorInfo((1, c_out, 14, 14), "f32"),
        has_bias=True, stride=(1, 1), padding=(kernel // 2,) * 2, dilation=(1, 1),
        output_padding=(0, 0), transposed=False, groups=groups,
    )
    planned = plan_convolution(spec)
    assert isinstance(planned, ConvPlan), planned
    return planned


@pytest.mark.parametrize(("c_in", "c_out", "groups", "kernel", "expected"), [
    (384, 384, 384, 7, "channels-last"),  # ConvNeXt depthwise 7x7
    (384, 384, 384, 9, "channels-last"),
    (384, 384, 384, 3, "grouped"),  # MobileNet depthwise 3x3
    (240, 240, 240, 5, "grouped"),  # EfficientNet depthwise 5x5
    (256, 256, 32, 3, "im2col"),  # ResNeXt grouped
    (48, 48, 6, 3, "im2col"),  # RegNet grouped
    (32, 64, 32, 3, "im2col"),  # channel multiplier (depthwise_multiplier): grouped GEMM
    (64, 128, 1, 3, "grouped"),  # plain conv
    (64, 128, 1, 1, "grouped"),
])
def test_pick_strategy(c_in: int, c_out: int, groups: int, kernel: int, expected: str) -> None:
    strategy, why = pick_strategy(plan(c_in, c_out, groups, kernel))
    assert strategy == expected
    assert why  # the reason goes into the report's note


def test_threshold_is_the_boundary() -> None:
    k = LARGE_DEPTHWISE_KERNEL
    assert pick_strategy(plan(64, 64, 64, k))[0] == "channels-last"
    assert pick_strategy(plan(64, 64, 64, k - 2))[0] == "grouped"


@pytest.mark.parametrize(("c_in", "c_out", "groups", "case"), [
    (64, 64, 1, Case.CONV), (64, 64, 64, Case.DEPTHWISE), (32, 64, 32, Case.DEPTHWISE_MULTIPLIER),
    (64, 64, 8, Case.GROUPED),
])
def test_note_names_the_case(c_in: int, c_out: int, groups: int, case: Case) -> None:
    """Every case has a rule, and the note (shown in the report) describes that case."""
    planned = plan(c_in, c_out, groups, 3)
    assert planned.case is case
    _, why = pick_strategy(planned)
    assert ("groups=1" in why) == (case is Case.CONV), why
    assert ("depthwise" in why) == (case in (Case.DEPTHWISE, Case.DEPTHWISE_MULTIPLIER)), why
