"""`matmul`: groups == 1 convolutions as matrix products, no transposes.

1x1 kernels, layout x [N,C,Hp,Wp] (stride s: read through a strided
tensor.extract_slice first, x[:, :, ::sh, ::sw] cropped to [N,C,Ho,Wo]),
weight [F,C,1,1] -> [F,C], accumulator [N,F,Ho,Wo] -> [N,F,P], P = Ho*Wo:

  out[n,f,p] = acc[n,f,p] + sum_c w[f,c] * x[n,c,p]

For N == 1 this is linalg.matmul W[F,C] @ X[C,P] on [F,P] (the unit batch
dim dropped by collapse_shape, free); otherwise a linalg.generic
contraction (n, f, p, c) that IREE treats as a batch matmul with a shared
LHS. Larger kernels go through the im2col emitter (one group: a
batch_matmul with batch 1).
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from ..builders import tensor_type
from ..plan import Case, ConvPlan
from .im2col import emit_im2col
from .layout import elem_type, reshape, shape
from .registry import emits


def strided_window(x: ir.Value, stride: tuple[int, int], out_hw: tuple[int, int]) -> ir.Value:
    """x[:, :, 0:Ho*sh:sh, 0:Wo*sw:sw] (the 1x1 conv's receptive fields)."""
    n, c, hp, wp = shape(x)
    if (hp, wp) == out_hw:
        return x
    sizes = [n, c, *out_hw]
    return tensor.extract_slice(tensor_type(sizes, elem_type(x)), x, [], [], [], [0, 0, 0, 0], sizes,
                                [1, 1, *stride])


def contraction(w: ir.Value, x: ir.Value, acc: ir.Value) -> ir.Value:
    """out[n,f,p] = acc[n,f,p] + sum_c w[f,c] * x[n,c,p] (a linalg.generic)."""
    n, f, p, c = (ir.AffineDimExpr.get(i) for i in range(4))
    maps = [ir.AffineMap.get(4, 0, [f, c]), ir.AffineMap.get(4, 0, [n, c, p]), ir.AffineMap.get(4, 0, [n, f, p])]
    iterators = [ir.Attribute.parse(f"#linalg.iterator_type<{t}>") for t in ("parallel",) * 3 + ("reduction",)]
    op = linalg.GenericOp([acc.type], [w, x], [acc], ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                          ir.ArrayAttr.get(iterators))
    elem = elem_type(acc)
    block = op.regions[0].blocks.append(elem, elem, elem)
    with ir.InsertionPoint(block):
        a, b, out = block.arguments
        linalg.YieldOp([arith.addf(out, arith.mulf(a, b))])
    return op.result


@emits("matmul", Case.CONV)
def emit_conv_matmul(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    if tuple(plan.kernel) != (1, 1):
        return emit_im2col(plan, x, w, acc)
    n, f, ho, wo = shape(acc)
    c, p = shape(w)[1], ho * wo
    cols = reshape(strided_window(x, plan.spec.stride, (ho, wo)), [[0], [1], [2, 3]], [n, c, p])
    weight = reshape(w, [[0], [1, 2, 3]], [f, c])
    acc3 = reshape(acc, [[0], [1], [2, 3]], [n, f, p])
    if n == 1:
        out2 = linalg.matmul(weight, reshape(cols, [[0, 1], [2]], [c, p]), outs=[reshape(acc3, [[0, 1], [2]], [f, p])])
        out3 = reshape(out2, [[0, 1], [2]], [1, f, p])
    else:
        out3 = contraction(weight, cols, acc3)
    return reshape(out3, [[0], [1], [2, 3]], [n, f, ho, wo])
