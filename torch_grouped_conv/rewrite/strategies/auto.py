"""`auto`: pick a strategy per convolution, by a rule read off the benchmark
(docs/performance.md, "The `auto` rule"; numbers from `torch-grouped-conv bench`,
torch_grouped_conv/bench/).

The rule holds for every spatial rank (1D/2D/3D), forward and transposed,
f32/f64/f16/bf16: taps, im2col and matmul cover them all (their
`Strategy.coverage`), with a dynamic batch and dynamic spatial dims too; dynamic
channel dims fall back to `grouped` with a note. In order:
1. depthwise (groups == C_in == C_out) with at most `taps.MAX_TAPS` taps
   -> `taps`: one all-parallel elementwise generic over the output, the
   window unrolled (0.6x PyTorch geomean on the 12 depthwise core shapes
   vs 3.4x for the NCHW named op and 3.2x for NHWC; 3D 3x3x3 csn_dw3d and
   the transposed depthwise, by output phase, measured in
   docs/performance.md "The `auto` rule"); computed channels-last
   when the result goes straight into a permute to NHWC (ConvNeXt), so the
   transposes cancel (taps.emit_depthwise_taps_nhwc); over 16-channel blocks
   ([N,C/16,H,W,16], linalg.pack / unpack) when output rows are narrow (Wo <= 7,
   or <= 14 with >= 25 taps; f32/f16/bf16, C % 16 == 0; taps.blocks_channels):
   the taps then vectorize along 16 channels instead of 7- or 14-float rows
   (1152@7^2 k5 + BN + SiLU 0.27 -> 0.17 ms, 768@7^2 k7 0.32 -> 0.15);
2. larger depthwise windows -> `channels-last` (NHWC depthwise) in 2D
   forward, the default direct depthwise op elsewhere (channels-last is 2D
   forward only);
3. grouped (1 < groups, not depthwise) with C/G*KH*KW <= the tuning's
   `grouped_taps` (default 72, C/G <= 8 at 3x3: ResNeXt layer1/2, every
   RegNet shape; intel-avx512 144, C/G <= 16 at 3x3, forward convs only:
   transposed ones keep 72) -> `taps`: the
   C/G*KH*KW products unrolled in one all-parallel generic (1.1x PyTorch
   geomean on those vs 2.2x for im2col, side by side);
4. the channel multiplier (groups = C_in, C_out = m*C_in) with at most
   `MAX_TAPS` taps -> `taps` (m outputs per input channel; ~5x faster than
   im2col on dw_multiplier2_32to64_112);
5. other grouped, and larger multiplier windows -> `im2col`:
   one batch_matmul over the groups (C/G = 16: tied with taps; C/G = 32:
   taps would unroll 288 products; wav2vec2's 1D k=128 and 3D grouped
   ~4-6x faster than the default emitter);
6. groups == 1, 1x1 kernel -> `matmul`: W[F,C] @ X[C,H*W], no transposes
   (stride-2 1x1 convs ran ~100x faster than IREE's direct
   conv_2d_nchw_fchw, stride 1 about the same);
7. other forward groups == 1 (KxK kernels, any rank) -> `matmul` (im2col +
   matmul). With the default data tiling this beats IREE's direct
   conv_2d_nchw_fchw on whole networks (resnet50: 0.65x vs 0.76x PyTorch,
   all 13 of its 3x3 stride-1 convs moved), the direct strided conv is
   pathological (ConvNeXt's 2x2/2 downsampling convs: ~80 ms each direct,
   ~3 ms as im2col + matmul), and in 3D the direct conv_3d is ~11x slower
   (r3d_18 whole model, steady state: 14.6 s vs 1.34 s at 1 thread, 7.5 s
   vs 0.72 s at 2);
   7a. except f32 3x3 stride-1 dilation-1 2D convs with both output dims
   >= `WINOGRAD_MIN_OUTPUT` -> `winograd` (F(4x4, 3x3): 2.25 products per
   output per channel instead of 9; resnet50's 64ch@56^2 / 128ch@28^2 /
   256ch@14^2 convs IREE-compiled, side by side with im2col + matmul:
   docs/performance.md "Winograd"; at 7^2 the 2x2 tiles of 4x4 waste 30%:
   its gain was unsure on the AMD VM, and on the Intel one resnet50 ran no
   faster with it (slower at 2 threads); grouped (ResNeXt, C/G <= 32) it was 2-13x slower than
   taps / im2col: the 36*G GEMMs are tiny);
8. transposed groups == 1 KxK -> `matmul`: with stride > 1, one im2col +
   GEMM per output phase over the undilated input (im2col.emit_im2col_phases;
   4-43x faster than the direct named conv on 5 decoder shapes, 1 and 2
   threads, docs/performance.md "Transposed groups = 1 convs"). Grouped
   transposed with C/G*prod(k) > 72 goes through the same phases (`im2col`).

Rule 3's bound is the active `Tuning`'s (rewrite/tuning.py: the CPU family
the rule was measured on; the host's unless told otherwise).

Quantized convolutions have their own rule (`pick_quantized`): `im2col`
except depthwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch_grouped_conv.rewrite.emit.phases import is_phased
from torch_grouped_conv.rewrite.plan import Case, ConvPlan, group_channels
from torch_grouped_conv.rewrite.strategies.im2col import blocking
from torch_grouped_conv.rewrite.strategies.strategy import Strategy, register
from torch_grouped_conv.rewrite.strategies.taps import CHANNEL_BLOCK, MAX_TAPS, blocks_channels, computes_channels_last
from torch_grouped_conv.rewrite.strategies.winograd import WINOGRAD
from torch_grouped_conv.rewrite.tuning import Tuning, active

# Rule 3's C/G*KH*KW bound for taps comes from the active `Tuning`
# (rewrite/tuning.py): `default` (measured on AMD EPYC) 72, `intel-avx512` 144.
# Transposed grouped convs keep 72 on every CPU: by output phase, taps at C/G = 16
# ran 3.6x slower than the per-phase GEMMs on the Intel VM (grouped_transposed_g4_s2
# 2.65 vs 0.73 ms, 1 thread).
TRANSPOSED_GROUPED_TAPS = 72
# Rule 7a: both output dims at least this for `winograd` (measured faster than
# im2col + matmul on resnet50's 3x3 convs at 56^2, 28^2, 14^2; at 7^2 unsure on
# the AMD VM, no faster on the Intel one).
WINOGRAD_MIN_OUTPUT = 14


def pick_quantized(plan: ConvPlan) -> tuple[str, str]:
    """Quantized convolutions: IREE 3.13 runs `conv_2d_nchw_fchw_q` /
    `conv_2d_ngchw_gfchw_q` slowly (scalar loops; torch-mlir's own lowering
    emits the same ops); the grouped GEMM on centered i32 operands is 3-26x
    faster (docs/design.md, "Quantized convolutions"). Depthwise keeps the `_q` op:
    im2col has no depthwise form."""
    if plan.case is Case.DEPTHWISE:
        return "grouped", "quantized depthwise: conv_2d_ngchw_gfchw_q"
    return "im2col", f"quantized {plan.case}: grouped GEMM on i32 (im2col + batch_matmul)"


def pick_strategy(plan: ConvPlan) -> tuple[str, str]:
    """(strategy, why) for one convolution under the active tuning; see the module docstring."""
    return pick_tuned(plan, active())


def pick_tuned(plan: ConvPlan, tuning: Tuning) -> tuple[str, str]:
    """(strategy, why) for one convolution, with `tuning`'s thresholds."""
    if plan.quant is not None:
        return pick_quantized(plan)
    kernel = [k for k in plan.spec.kernel if k is not None]
    return PICK_BY_CASE[plan.case](plan, kernel, tuning)


def pick_depthwise(plan: ConvPlan, kernel: list[int], tuning: Tuning) -> tuple[str, str]:
    """Rules 1 and 2: taps up to MAX_TAPS, then NHWC (2D forward) or the direct depthwise op."""
    taps = math.prod(kernel)
    if taps <= MAX_TAPS:
        layout = ""
        if computes_channels_last(plan):
            layout = ", computed NHWC (the result is permuted to channels-last next)"
        elif blocks_channels(plan):
            layout = f", over {CHANNEL_BLOCK}-channel blocks (narrow output rows: linalg.pack, taps, linalg.unpack)"
        return "taps", f"depthwise with kernel {kernel} ({taps} taps): unrolled elementwise taps{layout}" + _phases(plan)
    if plan.spec.spatial_rank != 2 or plan.spec.transposed:
        return "grouped", (f"depthwise with kernel {kernel} ({taps} taps > {MAX_TAPS}), "
                           f"{_kind(plan)}: direct depthwise op")
    return "channels-last", f"depthwise with kernel {kernel} ({taps} taps > {MAX_TAPS}): NHWC depthwise"


def pick_grouped(plan: ConvPlan, kernel: list[int], tuning: Tuning) -> tuple[str, str]:
    """Rules 3 and 5: taps up to `tuning.grouped_taps` products per output
    (TRANSPOSED_GROUPED_TAPS for a transposed conv), else the grouped GEMM."""
    transposed = plan.spec.transposed
    bound = TRANSPOSED_GROUPED_TAPS if transposed else tuning.grouped_taps
    products = (group_channels(plan.spec)[0] or bound + 1) * math.prod(kernel)
    if products <= bound:
        return "taps", (f"groups={plan.spec.groups}, C/G*KH*KW={products} <= {bound} "
                        f"({'transposed' if transposed else f'{tuning.name} tuning'}): unrolled taps")
    return "im2col", f"groups={plan.spec.groups}: grouped GEMM (im2col + batch_matmul)" + _phases(plan, "one GEMM") \
        + _blocked(plan, tuning)


def pick_multiplier(plan: ConvPlan, kernel: list[int], tuning: Tuning) -> tuple[str, str]:
    """Rules 4 and 5: the channel multiplier as taps up to MAX_TAPS, else the grouped GEMM."""
    taps = math.prod(kernel)
    if taps <= MAX_TAPS:
        return "taps", (f"groups={plan.spec.groups}, depthwise with a channel multiplier, kernel {kernel} "
                        f"({taps} taps): unrolled taps, m outputs per input channel" + _phases(plan))
    return "im2col", (f"groups={plan.spec.groups}, depthwise with a channel multiplier: grouped GEMM "
                      f"(im2col + batch_matmul){_blocked(plan, tuning)}")


def pick_winograd(plan: ConvPlan) -> tuple[str, str] | None:
    """Rule 7a: an f32 conv `winograd` takes (3x3, stride 1, dilation 1, 2D
    forward, static) with both output dims >= WINOGRAD_MIN_OUTPUT, or None."""
    out = plan.spec.result.shape[2:]
    if plan.spec.input.dtype != "f32" or WINOGRAD.refusal(plan) is not None:
        return None
    if any(o is None or o < WINOGRAD_MIN_OUTPUT for o in out):
        return None
    return "winograd", (f"groups=1, 3x3 stride 1, output {list(out)} (both >= {WINOGRAD_MIN_OUTPUT}): "
                        "Winograd F(4x4, 3x3)")


def pick_conv(plan: ConvPlan, kernel: list[int], tuning: Tuning) -> tuple[str, str]:
    """Rules 6 to 8: groups == 1 as matmuls (1x1 directly, KxK via im2col, transposed by output phase)."""
    if all(k == 1 for k in kernel):
        return "matmul", "groups=1, 1x1 kernel: matmul"
    if not plan.spec.transposed:
        winograd = pick_winograd(plan)
        if winograd is not None:
            return winograd
        return "matmul", f"groups=1, kernel {kernel}: im2col + matmul{_blocked(plan, tuning)}"
    return "matmul", f"groups=1, transposed, kernel {kernel}: im2col + matmul" + _phases(plan, "one GEMM")


PICK_BY_CASE: dict[Case, Callable[[ConvPlan, list[int], Tuning], tuple[str, str]]] = {
    Case.DEPTHWISE: pick_depthwise,
    Case.GROUPED: pick_grouped,
    Case.DEPTHWISE_MULTIPLIER: pick_multiplier,
    Case.CONV: pick_conv,
}


def _kind(plan: ConvPlan) -> str:
    return f"{plan.spec.spatial_rank}D{' transposed' if plan.spec.transposed else ''}"


def _blocked(plan: ConvPlan, tuning: Tuning) -> str:
    """Note suffix for an im2col GEMM written in tiles (im2col.blocking under `tuning`)."""
    tiles = blocking(plan, tuning)
    return "" if tiles is None else f"; {tiles.describe()}"


def _phases(plan: ConvPlan, per_phase: str = "one tap set") -> str:
    """Note suffix for a transposed conv that taps or im2col split into output phases."""
    if is_phased(plan):
        return f" (transposed, stride {list(plan.spec.stride)}: {per_phase} per output phase)"
    return ""


AUTO = register(Strategy("auto", pick=pick_strategy))
