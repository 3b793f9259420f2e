"""`matmul`: groups == 1 convolutions as matrix products, no transposes.

1x1(x1) kernels of any spatial rank, layout x [N,C,*Sp] (stride s: read
through a strided tensor.extract_slice first, x[:, :, ::s_1, ...] cropped to
[N,C,*O]), weight [F,C,1...] -> [F,C], accumulator [N,F,*O] -> [N,F,P],
P = prod(O):

  out[n,f,p] = acc[n,f,p] + sum_c w[f,c] * x[n,c,p]

For N == 1 this is linalg.matmul W[F,C] @ X[C,P] on [F,P] (the unit batch
dim dropped by collapse_shape, free); otherwise a linalg.generic
contraction (n, f, p, c) that IREE treats as a batch matmul with a shared
LHS. A transposed conv's weight comes through the swap/flip generic, and
IREE 3.13 crashes (segfault in PropagateLinalgTranspose's matmul
conversion) when that transpose meets a linalg.matmul: N == 1 transposed
convs take the generic contraction too. Larger kernels go through the im2col emitter (one group: a
batch_matmul with batch 1).
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.layout import element_type_of, extract, reshape, shape, sizes
from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.read.spec import FLOAT_DTYPES
from torch_grouped_conv.rewrite.strategies.im2col import emit_im2col
from torch_grouped_conv.rewrite.strategies.strategy import Coverage, Strategy, register


def strided_window(x: ir.Value, stride: tuple[int, ...], out_sizes: tuple[builders.SizeValue, ...]) -> ir.Value:
    """x[:, :, 0:O_i*s_i:s_i ...] (the 1x1 conv's receptive fields)."""
    n, c, *spatial = sizes(x)
    if all(isinstance(s, int) for s in (*spatial, *out_sizes)) and tuple(spatial) == out_sizes:
        return x
    return extract(x, [0] * (2 + len(out_sizes)), [n, c, *out_sizes], [1, 1, *stride])


def contraction(w: ir.Value, x: ir.Value, acc: ir.Value) -> ir.Value:
    """out[n,f,p] = acc[n,f,p] + sum_c w[f,c] * x[n,c,p] (a linalg.generic;
    both factors extended to the accumulator type when narrower)."""
    n, f, p, c = (ir.AffineDimExpr.get(i) for i in range(4))
    maps = [ir.AffineMap.get(4, 0, [f, c]), ir.AffineMap.get(4, 0, [n, c, p]), ir.AffineMap.get(4, 0, [n, f, p])]
    iterators = [ir.Attribute.parse(f"#linalg.iterator_type<{t}>") for t in ("parallel",) * 3 + ("reduction",)]
    op = linalg.GenericOp([acc.type], [w, x], [acc], ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                          ir.ArrayAttr.get(iterators))
    elem = element_type_of(acc)
    block = op.regions[0].blocks.append(element_type_of(w), element_type_of(x), elem)
    with ir.InsertionPoint(block):
        a, b, out = (v if v.type == elem else arith.extf(elem, v) for v in block.arguments)
        linalg.YieldOp([arith.addf(out, arith.mulf(a, b))])
    return op.result


def emit_conv_matmul(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    if any(k != 1 for k in plan.kernel):
        return emit_im2col(plan, x, w, acc)
    n, f, *out = sizes(acc)  # ints, or tensor.dim values for a dynamic batch or spatial dim
    assert isinstance(f, int)
    rank = 2 + len(out)
    c, p = shape(w)[1], builders.product(out)
    flat = [[0], [1], list(range(2, rank))]  # [N,C,*O] <-> [N,C,P]
    cols = reshape(strided_window(x, plan.window.stride, tuple(out)), flat, [n, c, p])
    weight = reshape(w, [[0], list(range(1, rank))], [f, c])
    acc3 = reshape(acc, flat, [n, f, p])
    if isinstance(n, int) and n == 1 and not plan.spec.transposed:
        out2 = linalg.matmul(weight, reshape(cols, [[0, 1], [2]], [c, p]), outs=[reshape(acc3, [[0, 1], [2]], [f, p])])
        out3 = reshape(out2, [[0, 1], [2]], [1, f, p])
    else:
        out3 = contraction(weight, cols, acc3)
    return reshape(out3, flat, [n, f, *out])


MATMUL = register(Strategy(
    "matmul",
    emitters={Case.CONV: emit_conv_matmul},
    coverage=Coverage(ranks=(1, 2, 3), transposed=True, dtypes=FLOAT_DTYPES, dynamic_batch=True, dynamic_spatial=True),
))
