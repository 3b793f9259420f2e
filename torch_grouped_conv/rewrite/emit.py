"""One emitter per case: builtin tensors in, the convolution result out.

Each emitter receives the padded input, the weight and the accumulator
(bias already broadcast into it), all builtin tensors in PyTorch's NC* layout.
"""

from __future__ import annotations

from collections.abc import Callable

from torch_mlir import ir
from torch_mlir.dialects import linalg

from . import builders
from .plan import Case, ConvPlan

Emitter = Callable[[ConvPlan, ir.Value, ir.Value, ir.Value], ir.Value]
EMITTERS: dict[Case, Emitter] = {}


def emits(case: Case) -> Callable[[Emitter], Emitter]:
    """Register the emitter for `case`; a case has exactly one."""

    def register(fn: Emitter) -> Emitter:
        if case in EMITTERS:
            raise ValueError(f"an emitter for {case} is already registered: {EMITTERS[case].__name__}")
        EMITTERS[case] = fn
        return fn

    return register


def _window_attrs(plan: ConvPlan) -> dict[str, list[int]]:
    return {"strides": list(plan.spec.stride), "dilations": list(plan.spec.dilation)}


@emits(Case.CONV)
def emit_conv(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """groups == 1. Layout: input NCHW, kernel FCHW."""
    return linalg.conv_2d_nchw_fchw(x, w, outs=[acc], **_window_attrs(plan))


@emits(Case.DEPTHWISE)
def emit_depthwise(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """groups == C_in == C_out. Layout: input NCHW, kernel CHW (weight [C,1,KH,KW] collapsed)."""
    kernel = builders.collapse(w, 0)
    return linalg.depthwise_conv_2d_nchw_chw(x, kernel, outs=[acc], **_window_attrs(plan))


@emits(Case.GROUPED)
def emit_grouped(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Any other constant group count G.

    Layout: input [N,C,H,W] -> NGCHW [N,G,C/G,H,W], kernel [F,C/G,KH,KW] -> GFCHW
    [G,F/G,C/G,KH,KW], accumulator [N,F,Ho,Wo] -> [N,G,F/G,Ho,Wo]; the result is
    collapsed back to [N,F,Ho,Wo].
    """
    groups = plan.spec.groups
    grouped = linalg.conv_2d_ngchw_gfchw(
        builders.expand(x, 1, groups),
        builders.expand(w, 0, groups),
        outs=[builders.expand(acc, 1, groups)],
        **_window_attrs(plan),
    )
    return builders.collapse(grouped, 1)
