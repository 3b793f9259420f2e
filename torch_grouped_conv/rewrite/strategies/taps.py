"""`taps`: a depthwise convolution as one elementwise linalg.generic over
the output, the window unrolled into its KH*KW taps.

Layout: padded input x [N,C,Hp,Wp], weight [C,1,KH,KW], accumulator
[N,C,Ho,Wo] (bias included). With stride s and dilation d,

  out[n,c,ho,wo] = acc[n,c,ho,wo]
                   + sum_{kh,kw} w[c,0,kh,kw] * x[n, c, ho*sh + kh*dh, wo*sw + kw*dw]

Tap (kh, kw) reads the strided view
  x[:, :, kh*dh : kh*dh + (Ho-1)*sh + 1 : sh, kw*dw : kw*dw + (Wo-1)*sw + 1 : sw]
(a tensor.extract_slice of shape [N,C,Ho,Wo]; IREE folds it into the
dispatch's load, no copy) with the identity map, and its weight w[:, 0, kh, kw] ([C], a rank-reducing
slice of a constant) through (n,c,ho,wo) -> (c). A single weight operand
read through (c, 0, kh, kw) maps (constant results) verifies too, but IREE
then does not vectorize the dispatch (scalar vmulss/vaddss in the dumped
assembly, ~2x slower). All loops are
parallel, so IREE tiles and vectorizes it like any elementwise op (along
Wo), with no reduction loop; the multiply-adds are unrolled in the body.
With a column stride s > 1 the taps would read every s-th float (a gather
per vector); the input's columns are first de-interleaved into s phases
(`column_phases`, one copy pass) and each tap reads a contiguous run of one
phase instead.
(Reading x directly through (n, c, ho*sh + kh*dh, ...) maps does not
verify: tap (0, 0) at stride 1 is a bare dim, which must match Ho exactly.)
"""

from __future__ import annotations

from collections.abc import Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from ..builders import pad_spatial, tensor_type
from ..plan import Case, ConvPlan
from .layout import elem_type, parallel_generic, shape
from .registry import declines, emits

MAX_TAPS = 64  # a body of 2*KH*KW arith ops; bigger windows stay on the named op


def tap_offsets(kernel: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """(kh, kw, row offset, column offset) of every tap, row-major."""
    return [(kh, kw, kh * dilation[0], kw * dilation[1]) for kh in range(kernel[0]) for kw in range(kernel[1])]


def tap_view(x: ir.Value, row: int, col: int, out_shape: Sequence[int], stride: Sequence[int]) -> ir.Value:
    """x[:, :, row::sh, col::sw] cut to out_shape [N,C,Ho,Wo]."""
    return tensor.extract_slice(tensor_type(list(out_shape), elem_type(x)), x, [], [], [], [0, 0, row, col],
                                list(out_shape), [1, 1, *stride])


def tap_weight(w: ir.Value, kh: int, kw: int) -> ir.Value:
    """w[:, 0, kh, kw] as a [C] tensor (rank-reducing tensor.extract_slice)."""
    c = shape(w)[0]
    return tensor.extract_slice(tensor_type([c], elem_type(w)), w, [], [], [], [0, 0, kh, kw], [c, 1, 1, 1],
                                [1, 1, 1, 1])


def column_phases(x: ir.Value, stride: int, width: int) -> ir.Value:
    """x [N,C,Hp,Wp] -> [N,C,Hp,stride,width] with
    out[n,c,h,p,q] = x[n,c,h,q*stride + p] (x zero-padded on the right when
    width*stride > Wp; those columns are never read by a tap).

    One copy pass that de-interleaves the columns, so that every tap of a
    convolution with column stride > 1 reads contiguous columns: tap column
    wo*stride + o lies in phase o % stride at q = wo + o // stride.
    """
    n, c, hp, wp = shape(x)
    if width * stride > wp:
        x = pad_spatial(x, [0, 0], [0, width * stride - wp])
    d = [ir.AffineDimExpr.get(i) for i in range(5)]
    column = ir.AffineAddExpr.get(ir.AffineMulExpr.get(d[4], ir.AffineConstantExpr.get(stride)), d[3])
    maps = [ir.AffineMap.get(5, 0, [d[0], d[1], d[2], column]), ir.AffineMap.get_identity(5)]
    init = tensor.empty([n, c, hp, stride, width], elem_type(x))
    return parallel_generic([x], init, maps, lambda args: args[0])


def phase_view(phases: ir.Value, row: int, col: int, out_shape: Sequence[int], row_stride: int) -> ir.Value:
    """The tap at (row, col) of the padded input, read from `column_phases`:
    phases[:, :, row::sh, col % s, col // s : col // s + Wo] as [N,C,Ho,Wo]."""
    s = shape(phases)[3]
    n, c, ho, wo = out_shape
    return tensor.extract_slice(tensor_type(list(out_shape), elem_type(phases)), phases, [], [], [],
                                [0, 0, row, col % s, col // s], [n, c, ho, 1, wo], [1, 1, row_stride, 1, 1])


@declines("taps")
def decline_taps(plan: ConvPlan) -> str | None:
    taps = plan.kernel[0] * plan.kernel[1]
    if taps > MAX_TAPS:
        return f"kernel {list(plan.kernel)} has {taps} taps > {MAX_TAPS}"
    return None


@emits("taps", Case.DEPTHWISE)
def emit_depthwise_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    out_shape = shape(acc)
    offsets = tap_offsets(plan.kernel, plan.spec.dilation)
    sh, sw = plan.spec.stride
    if sw == 1:
        views = [tap_view(x, row, col, out_shape, plan.spec.stride) for _, _, row, col in offsets]
    else:
        phases = column_phases(x, sw, out_shape[3] + max(col for *_, col in offsets) // sw)
        views = [phase_view(phases, row, col, out_shape, sh) for _, _, row, col in offsets]
    weights = [tap_weight(w, kh, kw) for kh, kw, _, _ in offsets]
    identity, channel = ir.AffineMap.get_identity(4), ir.AffineMap.get(4, 0, [ir.AffineDimExpr.get(1)])
    maps = [identity] * len(views) + [channel] * len(weights) + [identity]
    taps = len(views)

    def body(args: list[ir.Value]) -> ir.Value:
        total = args[-1]
        for t in range(taps):
            total = arith.addf(total, arith.mulf(args[t], args[taps + t]))
        return total

    return parallel_generic(views + weights, acc, maps, body)
