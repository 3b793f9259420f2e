"""`taps`: a depthwise or grouped convolution as one all-parallel
linalg.generic over the output, the window unrolled into its taps.

Depthwise layout: padded input x [N,C,Hp,Wp], weight [C,1,KH,KW],
accumulator [N,C,Ho,Wo] (zeros; the bias is added after). With stride s and dilation d,

  out[n,c,ho,wo] = acc[n,c,ho,wo]
                   + sum_{kh,kw} w[c,0,kh,kw] * x[n, c, ho*sh + kh*dh, wo*sw + kw*dw]

Tap (kh, kw) reads the strided view
  x[:, :, kh*dh : kh*dh + (Ho-1)*sh + 1 : sh, kw*dw : kw*dw + (Wo-1)*sw + 1 : sw]
(a tensor.extract_slice of shape [N,C,Ho,Wo]; IREE folds it into the
dispatch's load, no copy) through the identity map, and its weight
w[:, 0, kh, kw] ([C], a rank-reducing slice of a constant) through
(n,c,ho,wo) -> (c). All loops are parallel, so IREE tiles and vectorizes
it like an elementwise op (along Wo), with no reduction loop.

Grouped (`emit_grouped_taps`): the same over (n, g, f, ho, wo) with the
C/G*KH*KW products unrolled.

Why this form (checked in IREE 3.13's dumped executables):
- one weight operand read through (c, 0, kh, kw) maps (constant results)
  verifies, but IREE then does not vectorize (scalar vmulss/vaddss, ~2x
  slower); per-tap [C] slices give packed FMAs;
- reading x through (n, c, ho*sh + kh*dh, ...) maps does not verify: tap
  (0, 0) at stride 1 is a bare dim, whose size must equal Ho;
- with a column stride s > 1 the taps would read every s-th float; the
  input's columns are first de-interleaved into s phases (`column_phases`,
  one copy pass) and each tap reads a contiguous run of one phase.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from ..builders import pad_spatial, tensor_type
from ..plan import Case, ConvPlan
from .layout import elem_type, parallel_generic, reshape, shape
from .registry import declines, emits

MAX_TAPS = 64  # a body of 2*KH*KW arith ops; bigger windows stay on the named op
MAX_GROUPED_TAPS = 144  # grouped: C/G*KH*KW products per output (16 channels x 3x3)


def tap_offsets(kernel: Sequence[int], dilation: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """(kh, kw, row offset, column offset) of every tap, row-major."""
    return [(kh, kw, kh * dilation[0], kw * dilation[1]) for kh in range(kernel[0]) for kw in range(kernel[1])]


def tap_view(x: ir.Value, channels: slice, row: int, col: int, out_hw: Sequence[int],
             stride: Sequence[int]) -> ir.Value:
    """x[:, channels, row::sh, col::sw] cut to [N, len(channels), Ho, Wo]."""
    n, c = shape(x)[0], len(range(*channels.indices(shape(x)[1])))
    sizes = [n, c, *out_hw]
    return tensor.extract_slice(tensor_type(sizes, elem_type(x)), x, [], [], [], [0, channels.start or 0, row, col],
                                sizes, [1, channels.step or 1, *stride])


def tap_weight(w: ir.Value, kh: int, kw: int, c: int = 0) -> ir.Value:
    """w[:, c, kh, kw] as a [F] tensor (rank-reducing tensor.extract_slice)."""
    f = shape(w)[0]
    return tensor.extract_slice(tensor_type([f], elem_type(w)), w, [], [], [], [0, c, kh, kw], [f, 1, 1, 1],
                                [1, 1, 1, 1])


def column_phases(x: ir.Value, stride: int, width: int) -> ir.Value:
    """x [N,C,Hp,Wp] -> [N,C,Hp,stride,width] with
    out[n,c,h,p,q] = x[n,c,h,q*stride + p] (x zero-padded on the right when
    width*stride > Wp, cropped when less; those columns are never read by a tap).

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


def phase_view(phases: ir.Value, channels: slice, row: int, col: int, out_hw: Sequence[int],
               row_stride: int) -> ir.Value:
    """The tap at (row, col) of the padded input, read from `column_phases`:
    phases[:, channels, row::sh, col % s, col // s : col // s + Wo] as [N, len(channels), Ho, Wo]."""
    n, c_all, _, s, _ = shape(phases)
    c = len(range(*channels.indices(c_all)))
    ho, wo = out_hw
    return tensor.extract_slice(tensor_type([n, c, ho, wo], elem_type(phases)), phases, [], [], [],
                                [0, channels.start or 0, row, col % s, col // s], [n, c, ho, 1, wo],
                                [1, channels.step or 1, row_stride, 1, 1])


def input_taps(plan: ConvPlan, x: ir.Value, out_hw: Sequence[int], channel_sets: Sequence[slice]) -> list[ir.Value]:
    """For each channel set (outer) and tap (inner, row-major): the strided
    [N, len(set), Ho, Wo] view of the padded input x [N,C,Hp,Wp] it reads."""
    offsets = tap_offsets(plan.kernel, plan.spec.dilation)
    sh, sw = plan.spec.stride
    if sw == 1:
        return [tap_view(x, ch, row, col, out_hw, plan.spec.stride) for ch in channel_sets for *_, row, col in offsets]
    phases = column_phases(x, sw, out_hw[1] + max(col for *_, col in offsets) // sw)
    return [phase_view(phases, ch, row, col, out_hw, sh) for ch in channel_sets for *_, row, col in offsets]


def multiply_add(count: int) -> Callable[[list[ir.Value]], ir.Value]:
    """Body for inputs (a_0..a_{count-1}, b_0..b_{count-1}, out): out + sum a_i*b_i."""
    def body(args: list[ir.Value]) -> ir.Value:
        total = args[-1]
        for t in range(count):
            total = arith.addf(total, arith.mulf(args[t], args[count + t]))
        return total
    return body


@declines("taps")
def decline_taps(plan: ConvPlan) -> str | None:
    taps = plan.kernel[0] * plan.kernel[1]
    if plan.case is Case.GROUPED:
        c_group = plan.spec.weight.shape[1] or 0
        if c_group * taps > MAX_GROUPED_TAPS:
            return f"C/G={c_group} x {taps} taps = {c_group * taps} products > {MAX_GROUPED_TAPS}"
    elif taps > MAX_TAPS:
        return f"kernel {list(plan.kernel)} has {taps} taps > {MAX_TAPS}"
    return None


@emits("taps", Case.DEPTHWISE)
def emit_depthwise_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    out_shape = shape(acc)
    views = input_taps(plan, x, out_shape[2:], [slice(0, out_shape[1], 1)])
    weights = [tap_weight(w, kh, kw) for kh, kw, _, _ in tap_offsets(plan.kernel, plan.spec.dilation)]
    identity, channel = ir.AffineMap.get_identity(4), ir.AffineMap.get(4, 0, [ir.AffineDimExpr.get(1)])
    maps = [identity] * len(views) + [channel] * len(weights) + [identity]
    return parallel_generic(views + weights, acc, maps, multiply_add(len(views)))


@emits("taps", Case.GROUPED)
def emit_grouped_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Grouped: out[n,g,f,ho,wo] = acc + sum_{c,kh,kw} w[g*Fg+f, c, kh, kw] * x[n, g*Cg+c, ...],
    all loops (n, g, f, ho, wo) parallel, the Cg*KH*KW products unrolled.
    Input tap (c, kh, kw) is x[:, c::Cg, ...] ([N,G,Ho,Wo], read through
    (n,g,f,ho,wo) -> (n,g,ho,wo)); its weight w[:, c, kh, kw] is [F] -> [G,Fg]
    (read through (g,f))."""
    groups = plan.spec.groups
    n, f, ho, wo = shape(acc)
    c_group, f_group = shape(w)[1], f // groups
    views = input_taps(plan, x, (ho, wo), [slice(c, c_group * groups, c_group) for c in range(c_group)])
    weights = [reshape(tap_weight(w, kh, kw, c), [[0, 1]], [groups, f_group])
               for c in range(c_group) for kh, kw, _, _ in tap_offsets(plan.kernel, plan.spec.dilation)]
    d = [ir.AffineDimExpr.get(i) for i in range(5)]
    maps = ([ir.AffineMap.get(5, 0, [d[0], d[1], d[3], d[4]])] * len(views)
            + [ir.AffineMap.get(5, 0, [d[1], d[2]])] * len(weights) + [ir.AffineMap.get_identity(5)])
    acc5 = reshape(acc, [[0], [1, 2], [3], [4]], [n, groups, f_group, ho, wo])
    out = parallel_generic(views + weights, acc5, maps, multiply_add(len(views)))
    return reshape(out, [[0], [1, 2], [3], [4]], [n, f, ho, wo])
