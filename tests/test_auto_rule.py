"""The `auto` rule as a pure function of the plan (no IR, no compilation)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.rewrite.plan import Case, ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.spec import ConvSpec, TensorInfo
from torch_grouped_conv.rewrite.strategies.auto import GROUPED_TAPS, pick_strategy
from torch_grouped_conv.rewrite.strategies.taps import MAX_TAPS


def plan(c_in: int, c_out: int, groups: int, kernel: int, stride: int = 1,
         channels_last_result: bool = False) -> ConvPlan:
    out = (14 + 2 * (kernel // 2) - kernel) // stride + 1
    spec = ConvSpec(
        location="loc(unknown)",
        input=TensorInfo((1, c_in, 14, 14), "f32"),
        weight=TensorInfo((c_out, c_in // groups, kernel, kernel), "f32"),
        result=TensorInfo((1, c_out, out, out), "f32"),
        has_bias=True, stride=(stride, stride), padding=(kernel // 2,) * 2, dilation=(1, 1),
        output_padding=(0, 0), transposed=False, groups=groups, channels_last_result=channels_last_result,
    )
    planned = plan_convolution(spec)
    assert isinstance(planned, ConvPlan), planned
    return planned


@pytest.mark.parametrize(("c_in", "c_out", "groups", "kernel", "stride", "expected"), [
    (384, 384, 384, 7, 1, "taps"),  # ConvNeXt depthwise 7x7
    (384, 384, 384, 3, 1, "taps"),  # MobileNet depthwise 3x3
    (96, 96, 96, 3, 2, "taps"),  # MobileNet depthwise 3x3 stride 2
    (240, 240, 240, 5, 1, "taps"),  # EfficientNet depthwise 5x5
    (384, 384, 384, 9, 1, "channels-last"),  # 81 taps
    (256, 256, 32, 3, 1, "taps"),  # ResNeXt grouped, C/G = 8
    (128, 128, 32, 3, 1, "taps"),  # ResNeXt grouped, C/G = 4
    (512, 512, 32, 3, 1, "im2col"),  # ResNeXt grouped, C/G = 16
    (1024, 1024, 32, 3, 1, "im2col"),  # ResNeXt grouped, C/G = 32
    (48, 48, 6, 3, 2, "taps"),  # RegNet grouped
    (32, 64, 32, 3, 1, "im2col"),  # channel multiplier (depthwise_multiplier): grouped GEMM
    (64, 128, 1, 3, 1, "matmul"),  # plain 3x3 conv: im2col + matmul
    (128, 128, 1, 3, 2, "matmul"),  # 3x3 stride 2 (ResNet-50 downsampling): im2col + matmul
    (96, 192, 1, 2, 2, "matmul"),  # 2x2 stride 2 (ConvNeXt downsampling): im2col + matmul
    (64, 128, 1, 1, 1, "matmul"),  # 1x1
    (512, 1024, 1, 1, 2, "matmul"),  # 1x1 stride 2 (ResNet downsample)
    (3, 64, 1, 7, 2, "matmul"),  # stem: im2col + matmul
])
def test_pick_strategy(c_in: int, c_out: int, groups: int, kernel: int, stride: int, expected: str) -> None:
    strategy, why = pick_strategy(plan(c_in, c_out, groups, kernel, stride))
    assert strategy == expected
    assert why  # the reason goes into the report's note


def test_thresholds_are_the_boundaries() -> None:
    assert MAX_TAPS == 64  # 8x8 is the largest square window for taps
    assert pick_strategy(plan(64, 64, 64, 7))[0] == "taps"
    assert pick_strategy(plan(64, 64, 64, 9))[0] == "channels-last"
    assert pick_strategy(plan(8 * GROUPED_TAPS // 9, 64, 8, 3))[0] == "taps"  # C/G * 9 == GROUPED_TAPS
    assert pick_strategy(plan(8 * (GROUPED_TAPS // 9 + 1), 64, 8, 3))[0] == "im2col"


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


def test_depthwise_permuted_to_channels_last_says_nhwc() -> None:
    """ConvNeXt's dwconv feeds a permute to NHWC: still taps, and the note says it is computed NHWC."""
    strategy, why = pick_strategy(plan(96, 96, 96, 7, channels_last_result=True))
    assert strategy == "taps" and "NHWC" in why
    assert "NHWC" not in pick_strategy(plan(96, 96, 96, 7))[1]
