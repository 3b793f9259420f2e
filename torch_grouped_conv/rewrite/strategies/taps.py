"""`taps`: a depthwise convolution as one elementwise linalg.generic over
the output, the window unrolled into its KH*KW taps.

Layout: padded input x [N,C,Hp,Wp], weight [C,1,KH,KW], accumulator
[N,C,Ho,Wo] (bias included). With stride s and dilation d,

  out[n,c,ho,wo] = acc[n,c,ho,wo]
                   + sum_{kh,kw} w[c,0,kh,kw] * x[n, c, ho*sh + kh*dh, wo*sw + kw*dw]

Tap (kh, kw) reads the strided view
  x[:, :, kh*dh : kh*dh + (Ho-1)*sh + 1 : sh, kw*dw : kw*dw + (Wo-1)*sw + 1 : sw]
(a tensor.extract_slice of shape [N,C,Ho,Wo]; IREE folds it into the
dispatch's load, no copy) with the identity map, and the weight through the
map (n,c,ho,wo) -> (c, 0, kh, kw) (a constant per channel). All loops are
parallel, so IREE tiles and vectorizes it like any elementwise op (along
Wo), with no reduction loop; the multiply-adds are unrolled in the body.
(Reading x directly through (n, c, ho*sh + kh*dh, ...) maps does not
verify: tap (0, 0) at stride 1 is a bare dim, which must match Ho exactly.)
"""

from __future__ import annotations

from collections.abc import Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from ..builders import tensor_type
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


def weight_map(kh: int, kw: int) -> ir.AffineMap:
    """(n, c, ho, wo) -> (c, 0, kh, kw)."""
    const = ir.AffineConstantExpr.get
    return ir.AffineMap.get(4, 0, [ir.AffineDimExpr.get(1), const(0), const(kh), const(kw)])


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
    views = [tap_view(x, row, col, out_shape, plan.spec.stride) for _, _, row, col in offsets]
    identity = ir.AffineMap.get_identity(4)
    maps = [identity] * len(views) + [weight_map(kh, kw) for kh, kw, _, _ in offsets] + [identity]
    taps = len(views)

    def body(args: list[ir.Value]) -> ir.Value:
        total = args[-1]
        for t in range(taps):
            total = arith.addf(total, arith.mulf(args[t], args[taps + t]))
        return total

    return parallel_generic(views + [w] * taps, acc, maps, body)
