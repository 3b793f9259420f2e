"""The `auto` rule as a pure function of the plan (no IR, no compilation)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.rewrite.plan import ConvPlan, classify
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
    return ConvPlan(spec, classify(spec))


@pytest.mark.parametrize(("c_in", "c_out", "groups", "kernel", "expected"), [
    (384, 384, 384, 7, "channels-last"),  # ConvNeXt depthwise 7x7
    (384, 384, 384, 9, "channels-last"),
    (384, 384, 384, 3, "grouped"),  # MobileNet depthwise 3x3
    (240, 240, 240, 5, "grouped"),  # EfficientNet depthwise 5x5
    (256, 256, 32, 3, "im2col"),  # ResNeXt grouped
    (48, 48, 6, 3, "im2col"),  # RegNet grouped
    (32, 64, 32, 3, "im2col"),  # channel multiplier: grouped case
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
