"""`split`: one regular conv_2d_nchw_fchw per group on channel slices.

Layout: input [N,C,Hp,Wp] sliced to [N,C/G,Hp,Wp] at channel g*C/G, weight
[F,C/G,KH,KW] sliced to [F/G,C/G,KH,KW] at g*F/G; the accumulator [N,F,Ho,Wo]
is zeros (the bias is added after, see builders.init_accumulator), so only its
type is used. Each group convolves into its own zero-filled [N,F/G,Ho,Wo]; the
group results are joined with tensor.concat along F. Slicing a bias
accumulator per group instead (or a chain of tensor.insert_slice) fails in
IREE 3.13 llvm-cpu codegen: "write affecting operations on global resources
are restricted to workgroup distributed contexts". IR size grows with G, so
many groups are declined.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import linalg, tensor

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.layout import element_type_of, shape, slice_axis
from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.strategies.strategy import Strategy, register

MAX_SPLIT_GROUPS = 16


def decline_split(plan: ConvPlan) -> str | None:
    groups = plan.spec.groups
    if groups > MAX_SPLIT_GROUPS:
        return f"groups={groups} > {MAX_SPLIT_GROUPS} would emit {groups} convolutions"
    return None


def emit_split(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    groups = plan.spec.groups
    c_group, f_group = shape(x)[1] // groups, shape(w)[0] // groups
    n, _, ho, wo = shape(acc)
    parts = [
        linalg.conv_2d_nchw_fchw(
            slice_axis(x, 1, g * c_group, c_group),
            slice_axis(w, 0, g * f_group, f_group),
            outs=[builders.init_accumulator([n, f_group, ho, wo], element_type_of(acc))],
            strides=list(plan.spec.stride), dilations=list(plan.spec.dilation),
        )
        for g in range(groups)
    ]
    return tensor.concat(acc.type, 1, parts)


SPLIT = register(Strategy(
    "split",
    emitters={Case.GROUPED: emit_split, Case.DEPTHWISE_MULTIPLIER: emit_split, Case.DEPTHWISE: emit_split},
    decline=decline_split,
))
