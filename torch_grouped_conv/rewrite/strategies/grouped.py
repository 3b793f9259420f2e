"""`grouped`, the default strategy: one named linalg op per case (builtin
tensors in, the convolution result out).

Each emitter receives the prepared input (dilated, padded or cropped), the
forward weight [F, C/G, *k] and the accumulator [N, F, *out] (zeros: the
bias is added after the emitter, see builders.init_accumulator), all builtin
tensors in PyTorch's NC* layout. Grouped cases get them split by group
instead (see `ConvPlan.grouped_layout`). The accumulator may be wider than
input and weight (f32 for f16/bf16): linalg's named convolutions extend their
operands to the output element type.

Within a case the op depends on the spatial rank only, through a table.
This module declares the strategy: these emitters and the quantized ones of
grouped_quantized.py.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg
from torch_mlir.dialects.linalg import IteratorType

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.convolution import Emitter
from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.strategies.grouped_quantized import QUANTIZED_EMITTERS
from torch_grouped_conv.rewrite.strategies.strategy import DEFAULT_STRATEGY, Strategy, register


def _window_attrs(plan: ConvPlan) -> dict[str, list[int]]:
    return {"strides": list(plan.window.stride), "dilations": list(plan.window.dilation)}


# groups == 1. Layout: input NC*, kernel FC*.
CONV_OPS = {1: linalg.conv_1d_ncw_fcw, 2: linalg.conv_2d_nchw_fchw, 3: linalg.conv_3d_ncdhw_fcdhw}

# groups == C == F. Layout: input NC*, kernel C* (weight [C, 1, *k] collapsed).
DEPTHWISE_OPS = {1: linalg.depthwise_conv_1d_ncw_cw, 2: linalg.depthwise_conv_2d_nchw_chw,
                 3: linalg.depthwise_conv_3d_ncdhw_cdhw}


def emit_conv(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    return CONV_OPS[plan.spec.spatial_rank](x, w, outs=[acc], **_window_attrs(plan))


def emit_depthwise(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    kernel = builders.collapse(w, 0)
    return DEPTHWISE_OPS[plan.spec.spatial_rank](x, kernel, outs=[acc], **_window_attrs(plan))


def emit_grouped(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Any other constant group count G, in grouped layout (`plan.grouped_layout`):
    input [N,G,C/G,*s], kernel [G,F/G,C/G,*k], accumulator [N,G,F/G,*o]."""
    return GROUPED_BY_RANK[plan.spec.spatial_rank](plan, x, w, acc)


def emit_depthwise_multiplier(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """groups == C, F = m*C, m > 1: the grouped lowering with C/G = 1.

    linalg's multiplier ops (depthwise_conv_*_nhwc_hwcm) are channels-last
    only; transposing in and out would cost more than the grouped op saves.
    """
    return emit_grouped(plan, x, w, acc)


def _grouped_1d(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """linalg has no 1D grouped op: the 2D one with a unit height.

    [N,G,C/G,W] -> [N,G,C/G,1,W] (expand_shape), likewise kernel and
    accumulator; stride and dilation 1 along the unit dim.
    """
    out = linalg.conv_2d_ngchw_gfchw(
        builders.expand(x, 3, 1), builders.expand(w, 3, 1), outs=[builders.expand(acc, 3, 1)],
        strides=[1, *plan.window.stride], dilations=[1, *plan.window.dilation],
    )
    return builders.collapse(out, 3)


def _grouped_2d(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    return linalg.conv_2d_ngchw_gfchw(x, w, outs=[acc], **_window_attrs(plan))


def _grouped_generic(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """linalg has no named 3D grouped op: a linalg.generic carrying the group dim.

    Loops (n, g, f, *o, c, *k); layout: input [N,G,C/G,*s], kernel
    [G,F/G,C/G,*k], output [N,G,F/G,*o];
    out[n,g,f,*o] += in[n,g,c, o_i*stride_i + k_i*dilation_i] * w[g,f,c,*k].
    """
    rank = plan.spec.spatial_rank
    n_loops = 4 + 2 * rank
    d = builders.dim_exprs(n_loops)
    n, g, f, outs, c, ks = d[0], d[1], d[2], d[3:3 + rank], d[3 + rank], d[4 + rank:]
    window = [o * s + k * dl for o, k, s, dl in zip(outs, ks, plan.window.stride, plan.window.dilation, strict=False)]
    maps = [
        builders.affine_map(n_loops, [n, g, c, *window]),
        builders.affine_map(n_loops, [g, f, c, *ks]),
        builders.affine_map(n_loops, [n, g, f, *outs]),
    ]
    iterators = [IteratorType.parallel] * (3 + rank) + [IteratorType.reduction] * (1 + rank)
    acc_elem = ir.RankedTensorType(acc.type).element_type

    def multiply_add(a: ir.Value, b: ir.Value, total: ir.Value) -> ir.Value:
        if a.type != acc_elem:
            a, b = arith.extf(acc_elem, a), arith.extf(acc_elem, b)
        return arith.addf(total, arith.mulf(a, b))

    return builders.generic([x, w], acc, maps, iterators, multiply_add)


# Layout: input [N,G,C/G,*s], kernel [G,F/G,C/G,*k], accumulator [N,G,F/G,*o].
GROUPED_BY_RANK: dict[int, Emitter] = {1: _grouped_1d, 2: _grouped_2d, 3: _grouped_generic}

# One emitter per case.
EMITTERS: dict[Case, Emitter] = {
    Case.CONV: emit_conv,
    Case.DEPTHWISE: emit_depthwise,
    Case.GROUPED: emit_grouped,
    Case.DEPTHWISE_MULTIPLIER: emit_depthwise_multiplier,
}

# The default: covers every convolution the planner accepts (`Coverage` is not consulted for it).
GROUPED = register(Strategy(DEFAULT_STRATEGY, emitters=EMITTERS, quantized=True, quantized_emitters=QUANTIZED_EMITTERS))
