"""`channels-last`: the NHWC named convolutions, with linalg.transpose at the
boundary. Weight transposes act on constants, which IREE const-evaluates.

Input [N,C,Hp,Wp] -> NHWC; accumulator [N,F,Ho,Wo] -> NHWC; result NHWC ->
NCHW. Per case the kernel becomes:
- conv: [F,C,KH,KW] -> HWCF, linalg.conv_2d_nhwc_hwcf;
- depthwise: [C,1,KH,KW] -> [C,KH,KW] -> HWC, linalg.depthwise_conv_2d_nhwc_hwc;
- grouped, depthwise_multiplier: [F,C/G,KH,KW] -> [G,F/G,C/G,KH,KW] -> GFHWC, input NHWC ->
  [N,H,W,G,C/G], accumulator -> [N,Ho,Wo,G,F/G], linalg.conv_2d_nhwgc_gfhwc.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import linalg

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.layout import NCHW_TO_NHWC, NHWC_TO_NCHW, transpose
from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.strategies.strategy import Strategy, register

FCHW_TO_HWCF = (2, 3, 1, 0)
CHW_TO_HWC = (1, 2, 0)
GFCHW_TO_GFHWC = (0, 1, 3, 4, 2)


def _window(plan: ConvPlan) -> dict[str, list[int]]:
    return {"strides": list(plan.spec.stride), "dilations": list(plan.spec.dilation)}


def emit_conv_nhwc(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    out = linalg.conv_2d_nhwc_hwcf(
        transpose(x, NCHW_TO_NHWC), transpose(w, FCHW_TO_HWCF),
        outs=[transpose(acc, NCHW_TO_NHWC)], **_window(plan),
    )
    return transpose(out, NHWC_TO_NCHW)


def emit_depthwise_nhwc(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    out = linalg.depthwise_conv_2d_nhwc_hwc(
        transpose(x, NCHW_TO_NHWC), transpose(builders.collapse(w, 0), CHW_TO_HWC),
        outs=[transpose(acc, NCHW_TO_NHWC)], **_window(plan),
    )
    return transpose(out, NHWC_TO_NCHW)


def emit_grouped_nhwgc(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    groups = plan.spec.groups
    out = linalg.conv_2d_nhwgc_gfhwc(
        builders.expand(transpose(x, NCHW_TO_NHWC), 3, groups),
        transpose(builders.expand(w, 0, groups), GFCHW_TO_GFHWC),
        outs=[builders.expand(transpose(acc, NCHW_TO_NHWC), 3, groups)],
        **_window(plan),
    )
    return transpose(builders.collapse(out, 3), NHWC_TO_NCHW)


CHANNELS_LAST = register(Strategy("channels-last", emitters={
    Case.CONV: emit_conv_nhwc,
    Case.DEPTHWISE: emit_depthwise_nhwc,
    Case.GROUPED: emit_grouped_nhwgc,
    Case.DEPTHWISE_MULTIPLIER: emit_grouped_nhwgc,
}))
