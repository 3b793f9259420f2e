"""The `auto` rule as a pure function of the plan and the tuning (no IR, no
compilation): `pick` applies the `default` tuning (the rule measured on AMD
EPYC), whatever the host; the `intel-avx512` thresholds are tested below."""

from __future__ import annotations

import dataclasses

import pytest

from torch_grouped_conv.rewrite.plan import Case, ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.read.spec import ConvSpec, TensorInfo
from torch_grouped_conv.rewrite.strategies.auto import WINOGRAD_MIN_OUTPUT, pick_strategy, pick_tuned
from torch_grouped_conv.rewrite.strategies.strategy import REGISTRY, Coverage
from torch_grouped_conv.rewrite.strategies.taps import MAX_GROUPED_TAPS, MAX_TAPS
from torch_grouped_conv.rewrite.tuning import DEFAULT, INTEL_AVX512, Tuning, tuned_for

GROUPED_TAPS = DEFAULT.grouped_taps


def pick(planned: ConvPlan, tuning: Tuning = DEFAULT) -> tuple[str, str]:
    return pick_tuned(planned, tuning)


def plan(c_in: int, c_out: int, groups: int, kernel: int, stride: int = 1,
         channels_last_result: bool = False, size: int = 14, dtype: str = "f32") -> ConvPlan:
    out = (size + 2 * (kernel // 2) - kernel) // stride + 1
    spec = ConvSpec(
        location="loc(unknown)",
        input=TensorInfo((1, c_in, size, size), dtype),
        weight=TensorInfo((c_out, c_in // groups, kernel, kernel), dtype),
        result=TensorInfo((1, c_out, out, out), dtype),
        has_bias=True, stride=(stride, stride), padding=(kernel // 2,) * 2, dilation=(1, 1),
        output_padding=(0, 0), transposed=False, groups=groups, channels_last_result=channels_last_result,
    )
    planned = plan_convolution(spec)
    assert isinstance(planned, ConvPlan), planned
    return planned


@pytest.mark.parametrize(("c_in", "c_out", "groups", "kernel", "stride", "expected", "words"), [
    (384, 384, 384, 7, 1, "taps", "depthwise with kernel [7, 7] (49 taps): unrolled elementwise taps"),  # ConvNeXt
    (384, 384, 384, 3, 1, "taps", "depthwise with kernel [3, 3] (9 taps): unrolled elementwise taps"),  # MobileNet
    (96, 96, 96, 3, 2, "taps", "depthwise with kernel [3, 3] (9 taps)"),  # MobileNet stride 2
    (240, 240, 240, 5, 1, "taps", "depthwise with kernel [5, 5] (25 taps)"),  # EfficientNet 5x5
    (384, 384, 384, 9, 1, "channels-last", "(81 taps > 64): NHWC depthwise"),
    (256, 256, 32, 3, 1, "taps", "groups=32, C/G*KH*KW=72 <= 72 (default tuning): unrolled taps"),  # ResNeXt, C/G = 8
    (128, 128, 32, 3, 1, "taps", "groups=32, C/G*KH*KW=36 <= 72 (default tuning): unrolled taps"),  # ResNeXt, C/G = 4
    (512, 512, 32, 3, 1, "im2col", "groups=32: grouped GEMM (im2col + batch_matmul)"),  # ResNeXt, C/G = 16
    (1024, 1024, 32, 3, 1, "im2col", "groups=32: grouped GEMM"),  # ResNeXt, C/G = 32
    (48, 48, 6, 3, 2, "taps", "groups=6, C/G*KH*KW=72 <= 72"),  # RegNet
    (32, 64, 32, 3, 1, "taps", "depthwise with a channel multiplier, kernel [3, 3] (9 taps): unrolled taps"),
    (64, 128, 1, 3, 1, "winograd", "groups=1, 3x3 stride 1, output [14, 14] (both >= 14): Winograd"),  # plain 3x3
    (128, 128, 1, 3, 2, "matmul", "groups=1, kernel [3, 3]: im2col + matmul"),  # ResNet-50 downsampling
    (96, 192, 1, 2, 2, "matmul", "groups=1, kernel [2, 2]: im2col + matmul"),  # ConvNeXt downsampling
    (64, 128, 1, 1, 1, "matmul", "groups=1, 1x1 kernel: matmul"),
    (512, 1024, 1, 1, 2, "matmul", "groups=1, 1x1 kernel: matmul"),  # ResNet downsample
    (3, 64, 1, 7, 2, "matmul", "groups=1, kernel [7, 7]: im2col + matmul"),  # stem
])
def test_pick_strategy(c_in: int, c_out: int, groups: int, kernel: int, stride: int, expected: str, words: str) -> None:
    strategy, why = pick(plan(c_in, c_out, groups, kernel, stride))
    assert strategy == expected
    assert words in why  # the reason goes into the report's note


def test_thresholds_are_the_boundaries() -> None:
    assert MAX_TAPS == 64  # 8x8 is the largest square window for taps
    assert pick(plan(64, 64, 64, 7))[0] == "taps"
    assert pick(plan(64, 64, 64, 9))[0] == "channels-last"
    assert pick(plan(8 * GROUPED_TAPS // 9, 64, 8, 3))[0] == "taps"  # C/G * 9 == GROUPED_TAPS
    assert pick(plan(8 * (GROUPED_TAPS // 9 + 1), 64, 8, 3))[0] == "im2col"


@pytest.mark.parametrize(("c_in", "c_out", "groups", "case"), [
    (64, 64, 1, Case.CONV), (64, 64, 64, Case.DEPTHWISE), (32, 64, 32, Case.DEPTHWISE_MULTIPLIER),
    (64, 64, 8, Case.GROUPED),
])
def test_note_names_the_case(c_in: int, c_out: int, groups: int, case: Case) -> None:
    """Every case has a rule, and the note (shown in the report) describes that case."""
    planned = plan(c_in, c_out, groups, 3)
    assert planned.case is case
    _, why = pick(planned)
    assert ("groups=1" in why) == (case is Case.CONV), why
    assert ("depthwise" in why) == (case in (Case.DEPTHWISE, Case.DEPTHWISE_MULTIPLIER)), why


def test_depthwise_permuted_to_channels_last_says_nhwc() -> None:
    """ConvNeXt's dwconv feeds a permute to NHWC: still taps, and the note says it is computed NHWC."""
    strategy, why = pick(plan(96, 96, 96, 7, channels_last_result=True))
    assert strategy == "taps" and "NHWC" in why
    assert "NHWC" not in pick(plan(96, 96, 96, 7))[1]


def plan_nd(rank: int, c_in: int, c_out: int, groups: int, kernel: int, stride: int = 1, transposed: bool = False,
            dtype: str = "f32") -> ConvPlan:
    """A (transposed) convolution of spatial rank `rank` on an 8^rank input, padding k//2."""
    size, pad = 8, kernel // 2
    if transposed:
        out = (size - 1) * stride - 2 * pad + kernel
        weight = (c_in, c_out // groups, *(kernel,) * rank)
    else:
        out = (size + 2 * pad - kernel) // stride + 1
        weight = (c_out, c_in // groups, *(kernel,) * rank)
    spec = ConvSpec(
        location="loc(unknown)",
        input=TensorInfo((1, c_in, *(size,) * rank), dtype),
        weight=TensorInfo(weight, dtype),
        result=TensorInfo((1, c_out, *(out,) * rank), dtype),
        has_bias=True, stride=(stride,) * rank, padding=(pad,) * rank, dilation=(1,) * rank,
        output_padding=(0,) * rank, transposed=transposed, groups=groups,
    )
    planned = plan_convolution(spec)
    assert isinstance(planned, ConvPlan), planned
    return planned


@pytest.mark.parametrize(("rank", "c_in", "c_out", "groups", "kernel", "stride", "transposed", "dtype", "expected"), [
    (3, 96, 96, 96, 3, 1, False, "f32", "taps"),  # CSN / X3D depthwise 3x3x3
    (3, 64, 64, 4, 3, 1, False, "f32", "im2col"),  # 3D grouped, C/G = 16: 432 products
    (3, 16, 16, 4, 3, 1, False, "f32", "im2col"),  # C/G = 4 x 27 = 108 > GROUPED_TAPS
    (3, 64, 128, 1, 1, 1, False, "f32", "matmul"),  # 3D 1x1x1
    (3, 64, 64, 1, 3, 1, False, "f32", "matmul"),  # r3d_18 3x3x3: im2col + matmul (~11x the direct conv_3d)
    (2, 64, 64, 1, 3, 2, True, "f32", "matmul"),  # transposed groups == 1 3x3: one GEMM per output phase
    (1, 256, 128, 1, 4, 2, True, "f32", "matmul"),  # 1D decoder, k=4 s=2
    (2, 64, 64, 1, 3, 1, True, "f32", "matmul"),  # transposed stride 1: im2col + matmul
    (1, 768, 768, 16, 128, 1, False, "f32", "im2col"),  # wav2vec2 positional conv: K = 48*128
    (1, 256, 256, 256, 3, 1, False, "f32", "taps"),  # 1D separable TCN depthwise
    (1, 64, 64, 64, 65, 1, False, "f32", "grouped"),  # 65 taps > MAX_TAPS, channels-last is 2D only
    (1, 32, 64, 32, 3, 1, False, "f32", "taps"),  # 1D channel multiplier
    (2, 64, 64, 64, 4, 2, True, "f32", "taps"),  # depthwise transposed (upsampler): by phase
    (2, 64, 64, 4, 3, 2, True, "f32", "im2col"),  # grouped transposed, C/G = 16
    (2, 16, 16, 8, 3, 2, True, "f32", "taps"),  # grouped transposed, C/G = 2 (weight [C, F/G, ...])
    (2, 64, 64, 64, 9, 1, True, "f32", "grouped"),  # 81 taps, transposed: not channels-last
    (2, 64, 64, 64, 3, 1, False, "f16", "taps"),  # f16 depthwise
    (2, 256, 256, 32, 3, 1, False, "bf16", "taps"),  # bf16 ResNeXt C/G = 8
])
def test_pick_strategy_beyond_2d_f32(rank: int, c_in: int, c_out: int, groups: int, kernel: int, stride: int,
                                     transposed: bool, dtype: str, expected: str) -> None:
    strategy, why = pick(plan_nd(rank, c_in, c_out, groups, kernel, stride, transposed, dtype))
    assert strategy == expected, why


def test_transposed_note_says_phases() -> None:
    _, why = pick(plan_nd(2, 64, 64, 64, 4, 2, True))
    assert "one tap set per output phase" in why and "stride [2, 2]" in why
    _, forward = pick(plan_nd(2, 64, 64, 64, 4, 2, False))
    assert "phase" not in forward
    for groups in (1, 4):  # im2col (matmul for groups == 1) by phase: one GEMM each
        _, gemm = pick(plan_nd(2, 64, 64, groups, 3, 2, True))
        assert "one GEMM per output phase" in gemm and "stride [2, 2]" in gemm, gemm


def test_multiplier_threshold_is_max_taps() -> None:
    assert pick(plan_nd(2, 8, 16, 8, 7))[0] == "taps"  # 49 taps
    assert pick(plan_nd(2, 8, 16, 8, 9))[0] == "im2col"  # 81 taps


def with_shapes(planned: ConvPlan, input_shape: tuple[int | None, ...], result_shape: tuple[int | None, ...]) -> ConvPlan:
    spec = dataclasses.replace(planned.spec, input=TensorInfo(input_shape, "f32"), result=TensorInfo(result_shape, "f32"))
    replanned = plan_convolution(spec)
    assert isinstance(replanned, ConvPlan), replanned
    return replanned


@pytest.mark.parametrize(("input_shape", "result_shape", "refusal"), [
    ((None, 8, 8, 8), (None, 8, 8, 8), None),  # dynamic batch
    ((1, 8, None, 8), (1, 8, None, 8), None),  # dynamic height
    ((None, 8, None, None), (None, 8, None, None), None),
    ((1, None, 8, 8), (1, 8, 8, 8), "dynamic shape [1, ?, 8, 8] (its emitters size channel dims statically)"),
])
def test_coverage_takes_dynamic_batch_and_spatial_dims(input_shape: tuple[int | None, ...],
                                                       result_shape: tuple[int | None, ...],
                                                       refusal: str | None) -> None:
    """taps, im2col and matmul size views and GEMMs from tensor.dim for the
    batch and spatial dims; the channel counts (groups, C/G, K) stay static."""
    planned = with_shapes(plan_nd(2, 8, 8, 2, 3), input_shape, result_shape)
    for strategy in ("taps", "im2col", "matmul"):
        assert REGISTRY[strategy].coverage.refusal(planned) == refusal, strategy
    batch_only = Coverage(ranks=(2,), dynamic_batch=True)
    expected = None if input_shape[1:] == (8, 8, 8) else (
        f"dynamic shape [{', '.join('?' if d is None else str(d) for d in input_shape)}] "
        "(its emitters size channel or spatial dims statically)")
    assert batch_only.refusal(planned) == expected


@pytest.mark.parametrize(("size", "dtype", "expected"), [
    (14, "f32", "winograd"), (56, "f32", "winograd"), (13, "f32", "matmul"), (7, "f32", "matmul"),
    (14, "f64", "matmul"),  # winograd covers f64, but auto's rule was measured on f32
])
def test_winograd_from_a_14x14_output(size: int, dtype: str, expected: str) -> None:
    assert WINOGRAD_MIN_OUTPUT == 14
    assert pick(plan(64, 64, 1, 3, size=size, dtype=dtype))[0] == expected
    assert pick(plan(64, 64, 32, 3, size=size, dtype=dtype))[0] != "winograd"  # grouped: never


@pytest.mark.parametrize(("c_in", "c_out", "groups", "kernel", "size", "default", "intel"), [
    (512, 512, 32, 3, 14, "im2col", "taps"),  # ResNeXt layer3, C/G = 16: 144 products
    (64, 128, 4, 3, 56, "im2col", "taps"),  # groups4_64to128_56, C/G = 16
    (1024, 1024, 32, 3, 7, "im2col", "im2col"),  # C/G = 32: 288 products, past what taps unrolls
    (256, 256, 32, 3, 28, "taps", "taps"),  # C/G = 8 on both
    (512, 512, 1, 3, 7, "matmul", "matmul"),  # Winograd's threshold is the same on both
    (512, 512, 1, 3, 14, "winograd", "winograd"),
    (384, 384, 384, 7, 14, "taps", "taps"),  # depthwise: the same
])
def test_intel_tuning_moves_the_grouped_bound(c_in: int, c_out: int, groups: int, kernel: int, size: int,
                                           default: str, intel: str) -> None:
    planned = plan(c_in, c_out, groups, kernel, size=size)
    assert pick(planned, DEFAULT)[0] == default
    strategy, why = pick(planned, INTEL_AVX512)
    assert strategy == intel
    if strategy != default:
        assert "intel-avx512 tuning" in why, why


def test_intel_bound_is_what_taps_unrolls() -> None:
    """intel-avx512 hands taps every grouped conv taps itself takes (MAX_GROUPED_TAPS), no more."""
    assert INTEL_AVX512.grouped_taps == MAX_GROUPED_TAPS == 144
    assert pick(plan(8 * 16, 64, 8, 3), INTEL_AVX512)[0] == "taps"  # C/G = 16: 144
    assert pick(plan(8 * 17, 64 + 8, 8, 3), INTEL_AVX512)[0] == "im2col"  # C/G = 17: 153


def test_pick_strategy_follows_the_active_tuning() -> None:
    """`auto` (pick_strategy) reads the tuning set by tuned_for, whatever the host."""
    planned = plan(512, 512, 32, 3)
    with tuned_for("default"):
        assert pick_strategy(planned)[0] == "im2col"
    with tuned_for(INTEL_AVX512):
        assert pick_strategy(planned)[0] == "taps"


def test_intel_bound_is_for_forward_convs() -> None:
    """A transposed grouped conv at C/G = 16 keeps the grouped GEMM by phase under every tuning."""
    transposed = plan_nd(2, 64, 64, 4, 3, 2, True)
    assert pick(transposed, INTEL_AVX512)[0] == pick(transposed, DEFAULT)[0] == "im2col"
    assert pick(plan_nd(2, 64, 64, 4, 3, 2, False), INTEL_AVX512)[0] == "taps"
    _, why = pick(plan_nd(2, 16, 16, 8, 3, 2, True), INTEL_AVX512)  # C/G = 2: taps, by the fixed bound
    assert "<= 72 (transposed)" in why, why
