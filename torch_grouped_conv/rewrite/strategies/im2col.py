"""`im2col`: a grouped GEMM. An im2col linalg.generic gathers each output
pixel's receptive field, then one linalg.batch_matmul over the groups.

Index math, with G groups, Cg = C/G, Fg = F/G, K = Cg*KH*KW, P = N*Ho*Wo:
  col[g, c, kh, kw, n, ho, wo] = x[n, g*Cg + c, ho*sh + kh*dh, wo*sw + kw*dw]
  (x padded, read through its [N,G,Cg,Hp,Wp] expansion: an affine map, no gather),
  collapsed to [G, K, P];
  weight [F,Cg,KH,KW] -> [G,Fg,Cg,KH,KW] -> [G,Fg,K];
  out[g, f, p] = acc[g, f, p] + sum_k weight[g, f, k] * col[g, k, p]   (batch_matmul)
The accumulator [N,F,Ho,Wo] (zeros; the bias is added after) is transposed to [F,N,Ho,Wo] so
that P = (n, ho, wo) is contiguous, and the result is transposed back.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import linalg, tensor

from .. import builders
from ..plan import Case, ConvPlan
from .layout import elem_type, merge_groups, parallel_generic, reshape, shape, transpose
from .registry import emits

NF_SWAP = (1, 0, 2, 3)  # [N,F,Ho,Wo] <-> [F,N,Ho,Wo]


def im2col_input_map(stride: tuple[int, ...], dilation: tuple[int, ...]) -> ir.AffineMap:
    """(g, c, kh, kw, n, ho, wo) -> (n, g, c, ho*sh + kh*dh, wo*sw + kw*dw)."""
    g, c, kh, kw, n, ho, wo = (ir.AffineDimExpr.get(i) for i in range(7))

    def window(out: ir.AffineExpr, k: ir.AffineExpr, s: int, d: int) -> ir.AffineExpr:
        return ir.AffineAddExpr.get(
            ir.AffineMulExpr.get(out, ir.AffineConstantExpr.get(s)),
            ir.AffineMulExpr.get(k, ir.AffineConstantExpr.get(d)),
        )

    return ir.AffineMap.get(7, 0, [n, g, c, window(ho, kh, stride[0], dilation[0]),
                                   window(wo, kw, stride[1], dilation[1])])


def im2col(plan: ConvPlan, x: ir.Value, out_hw: tuple[int, int]) -> ir.Value:
    """[N,C,Hp,Wp] -> col [G, Cg*KH*KW, N*Ho*Wo] (see module docstring)."""
    spec = plan.spec
    groups, (kh, kw) = spec.groups, spec.kernel
    xg = builders.expand(x, 1, groups)
    n, _, c_group, _, _ = shape(xg)
    col_shape = [groups, c_group, kh, kw, n, *out_hw]
    empty = tensor.empty(col_shape, elem_type(x))
    maps = [im2col_input_map(spec.stride, spec.dilation), ir.AffineMap.get_identity(7)]
    col = parallel_generic([xg], empty, maps, lambda args: args[0])
    k, p = c_group * kh * kw, n * out_hw[0] * out_hw[1]
    return reshape(col, [[0], [1, 2, 3], [4, 5, 6]], [groups, k, p])


@emits("im2col", Case.CONV, Case.GROUPED, Case.DEPTHWISE_MULTIPLIER)
def emit_im2col(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    groups = plan.spec.groups
    n, f, ho, wo = shape(acc)
    f_group = f // groups
    col = im2col(plan, x, (ho, wo))
    weight = reshape(builders.expand(w, 0, groups), merge_groups(5, 2, 3), [groups, f_group, col_k(col)])
    acc_fn = transpose(acc, NF_SWAP)  # [F,N,Ho,Wo]
    acc3 = reshape(reshape(acc_fn, [[0, 1], [2], [3], [4]], [groups, f_group, n, ho, wo]),
                   merge_groups(5, 2, 3), [groups, f_group, n * ho * wo])
    out = linalg.batch_matmul(weight, col, outs=[acc3])
    out5 = reshape(out, merge_groups(5, 2, 3), [groups, f_group, n, ho, wo])
    return transpose(reshape(out5, [[0, 1], [2], [3], [4]], [f, n, ho, wo]), NF_SWAP)


def col_k(col: ir.Value) -> int:
    return shape(col)[1]
