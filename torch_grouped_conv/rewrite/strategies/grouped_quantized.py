"""The `grouped` strategy's emitters for quantized convolutions (plan.quant
set), one per case (`QUANTIZED_EMITTERS`; grouped.py declares the strategy).

Same contract as grouped.py's float emitters: prepared input and forward weight in, the
accumulator (bias broadcast into it) out; here they are signless i8 operands
holding signed values (plan.QuantPlan) and an i32 accumulator:

    out[n, f, *o] += (x[n, c, o*s + k*d] - input_zp) * (w[f, c, *k] - weight_zp)

linalg's `*_q` convolutions compute exactly this (they sign-extend the i8
operands and the i32 zero points to the i32 accumulator). Layout: input NC*,
kernel FC*, or, in grouped layout (depthwise too, see
`ConvPlan.grouped_layout`), input [N,G,C/G,*s], kernel [G,F/G,C/G,*k],
accumulator [N,G,F/G,*o]. linalg has 2D `_q` ops only: 1D convs take them
with a unit height, 3D convs are a `linalg.generic` with the same body.
"""

from __future__ import annotations

from collections.abc import Callable

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg
from torch_mlir.dialects.linalg import IteratorType

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.convolution import Emitter
from torch_grouped_conv.rewrite.plan import Case, ConvPlan


def _zero_points(plan: ConvPlan) -> tuple[ir.Value, ir.Value]:
    assert plan.quant is not None
    i32 = ir.IntegerType.get_signless(32)
    return builders.constant(i32, plan.quant.input_zero_point), builders.constant(i32, plan.quant.weight_zero_point)


def emit_quantized_conv(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """groups == 1: `conv_2d_nchw_fchw_q` (1D: with a unit height at axis 2; 3D: generic)."""
    return _by_rank(linalg.conv_2d_nchw_fchw_q, 2, False, plan, x, w, acc)


def emit_quantized_grouped(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Grouped layout: `conv_2d_ngchw_gfchw_q` (1D: unit height at axis 3; 3D: generic)."""
    return _by_rank(linalg.conv_2d_ngchw_gfchw_q, 3, True, plan, x, w, acc)


def _by_rank(op: Callable[..., ir.Value], unit_axis: int, grouped: bool, plan: ConvPlan, x: ir.Value, w: ir.Value,
             acc: ir.Value) -> ir.Value:
    """The 2D `_q` op `op`; 1D as that op with a unit height inserted at `unit_axis`
    of input, weight and accumulator; 3D as an integer generic (linalg has no 3D `_q` conv)."""
    rank = plan.spec.spatial_rank
    if rank == 3:
        return _quantized_generic(plan, x, w, acc, grouped=grouped)
    if rank == 1:
        x1, w1, acc1 = (builders.expand(v, unit_axis, 1) for v in (x, w, acc))
        out = _conv_2d_q(op, plan, x1, w1, acc1, unit_height=True)
        return builders.collapse(out, unit_axis)
    return _conv_2d_q(op, plan, x, w, acc)


def _conv_2d_q(op: Callable[..., ir.Value], plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value,
               unit_height: bool = False) -> ir.Value:
    """A 2D `_q` op; `unit_height`: the 1D window with stride and dilation 1 along a unit dim."""
    lead = [1] if unit_height else []
    x_zp, w_zp = _zero_points(plan)
    return op(x, w, x_zp, w_zp, outs=[acc], strides=[*lead, *plan.window.stride],
              dilations=[*lead, *plan.window.dilation])


def _quantized_generic(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value, grouped: bool) -> ir.Value:
    """Any spatial rank, as a linalg.generic: loops (n, [g,] f, *o, c, *k);
    out[n,g,f,*o] += (ext(in[n,g,c, o_i*s_i + k_i*d_i]) - x_zp) * (ext(w[g,f,c,*k]) - w_zp)."""
    rank = plan.spec.spatial_rank
    lead = 3 if grouped else 2  # parallel (n, g, f) or (n, f)
    n_loops = lead + 1 + 2 * rank
    d = builders.dim_exprs(n_loops)
    outs, c, ks = d[lead:lead + rank], d[lead + rank], d[lead + rank + 1:]
    batch_group, f = d[:lead - 1], d[lead - 1]
    groups = d[1:2] if grouped else []
    window = [o * s + k * dl for o, k, s, dl in zip(outs, ks, plan.window.stride, plan.window.dilation, strict=False)]
    maps = [
        builders.affine_map(n_loops, [*batch_group, c, *window]),
        builders.affine_map(n_loops, [*groups, f, c, *ks]),
        builders.affine_map(n_loops, [*batch_group, f, *outs]),
    ]
    iterators = [IteratorType.parallel] * (lead + rank) + [IteratorType.reduction] * (1 + rank)
    i32 = ir.IntegerType.get_signless(32)
    x_zp, w_zp = _zero_points(plan)

    def multiply_add(a: ir.Value, b: ir.Value, total: ir.Value) -> ir.Value:
        a32 = arith.subi(arith.extsi(i32, a), x_zp)
        b32 = arith.subi(arith.extsi(i32, b), w_zp)
        return arith.addi(total, arith.muli(a32, b32))

    return builders.generic([x, w], acc, maps, iterators, multiply_add)


QUANTIZED_EMITTERS: dict[Case, Emitter] = {
    Case.CONV: emit_quantized_conv,
    Case.GROUPED: emit_quantized_grouped,
    Case.DEPTHWISE: emit_quantized_grouped,
    Case.DEPTHWISE_MULTIPLIER: emit_quantized_grouped,
}
