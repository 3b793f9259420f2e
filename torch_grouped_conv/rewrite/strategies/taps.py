"""`taps`: a depthwise or grouped convolution as one all-parallel
linalg.generic over the output, the window unrolled into its taps. Any
spatial rank d (1D, 2D, 3D): every index below is a tuple over the spatial dims.

Depthwise layout: padded input x [N,C,*Sp], weight [C,1,*K],
accumulator [N,C,*O] (bias included). With window stride s and dilation r,

  out[n,c,*o] = acc[n,c,*o] + sum_{k} w[c,0,*k] * x[n, c, o_i*s_i + k_i*r_i ...]

Tap k reads the strided view
  x[:, :, k_i*r_i : k_i*r_i + (O_i-1)*s_i + 1 : s_i ...]
(a tensor.extract_slice of shape [N,C,*O]; IREE folds it into the
dispatch's load, no copy) through the identity map, and its weight
w[:, 0, *k] ([C], a rank-reducing slice of a constant) through
(n,c,*o) -> (c). All loops are parallel, so IREE tiles and vectorizes
it like an elementwise op (along the last dim), with no reduction loop.

Grouped (`emit_grouped_taps`): the same over (n, g, f, *o) with the
C/G*prod(K) products unrolled.

f16/bf16: every product is taken in the accumulator type (arith.extf of
both factors inside the body), so the sum is f32 and emit_plan rounds once.

Why this form (checked in IREE 3.13's dumped executables):
- one weight operand read through (c, 0, kh, kw) maps (constant results)
  verifies, but IREE then does not vectorize (scalar vmulss/vaddss, ~2x
  slower); per-tap [C] slices give packed FMAs;
- reading x through (n, c, ho*sh + kh*dh, ...) maps does not verify: tap
  (0, 0) at stride 1 is a bare dim, whose size must equal Ho;
- with a last-dim stride s > 1 the taps would read every s-th float; the
  input's last dim is first de-interleaved into s phases (`last_dim_phases`,
  one copy pass) and each tap reads a contiguous run of one phase.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from ..builders import pad_spatial, tensor_type
from ..plan import Case, ConvPlan, group_channels
from ..spec import FLOAT_DTYPES
from .layout import elem_type, parallel_generic, reshape, shape
from .registry import COVERAGE, Coverage, declines, emits

MAX_TAPS = 64  # a body of 2*prod(K) arith ops; bigger windows stay on the named op
MAX_GROUPED_TAPS = 144  # grouped: C/G*prod(K) products per output (16 channels x 3x3)

Tap = tuple[tuple[int, ...], tuple[int, ...]]  # (kernel index, input offset) per spatial dim


def tap_offsets(kernel: Sequence[int], dilation: Sequence[int]) -> list[Tap]:
    """(kernel index, input offset k_i*r_i) of every tap, row-major."""
    return [(k, tuple(i * r for i, r in zip(k, dilation))) for k in itertools.product(*(range(n) for n in kernel))]


def _channel_count(channels: slice, total: int) -> int:
    return len(range(*channels.indices(total)))


def tap_view(x: ir.Value, channels: slice, offsets: Sequence[int], out_sizes: Sequence[int],
             stride: Sequence[int]) -> ir.Value:
    """x[:, channels, o_i::s_i ...] cut to [N, len(channels), *O]."""
    n, c = shape(x)[0], _channel_count(channels, shape(x)[1])
    sizes = [n, c, *out_sizes]
    return tensor.extract_slice(tensor_type(sizes, elem_type(x)), x, [], [], [],
                                [0, channels.start or 0, *offsets], sizes, [1, channels.step or 1, *stride])


def tap_weight(w: ir.Value, k: Sequence[int], c: int = 0) -> ir.Value:
    """w[:, c, *k] as a [F] tensor (rank-reducing tensor.extract_slice)."""
    f, rank = shape(w)[0], len(shape(w))
    return tensor.extract_slice(tensor_type([f], elem_type(w)), w, [], [], [], [0, c, *k], [f] + [1] * (rank - 1),
                                [1] * rank)


def last_dim_phases(x: ir.Value, stride: int, width: int) -> ir.Value:
    """x [N,C,*S,Wp] -> [N,C,*S,stride,width] with
    out[..., p, q] = x[..., q*stride + p] (x zero-padded at the end when
    width*stride > Wp, cropped when less; those elements are never read by a tap).

    One copy pass that de-interleaves the last dim, so that every tap of a
    convolution with last-dim stride > 1 reads contiguous elements: tap
    element o*stride + t lies in phase t % stride at q = o + t // stride.
    """
    dims = shape(x)
    rank, wp = len(dims), dims[-1]
    if width * stride > wp:
        x = pad_spatial(x, [0] * (rank - 2), [0] * (rank - 3) + [width * stride - wp])
    d = [ir.AffineDimExpr.get(i) for i in range(rank + 1)]
    last = ir.AffineAddExpr.get(ir.AffineMulExpr.get(d[rank], ir.AffineConstantExpr.get(stride)), d[rank - 1])
    maps = [ir.AffineMap.get(rank + 1, 0, [*d[:rank - 1], last]), ir.AffineMap.get_identity(rank + 1)]
    init = tensor.empty([*dims[:-1], stride, width], elem_type(x))
    return parallel_generic([x], init, maps, lambda args: args[0])


def phase_view(phases: ir.Value, channels: slice, offsets: Sequence[int], out_sizes: Sequence[int],
               stride: Sequence[int]) -> ir.Value:
    """The tap at `offsets` of the padded input, read from `last_dim_phases`:
    phases[:, channels, o_i::s_i ..., t % s, t // s : t // s + O_last] as [N, len(channels), *O]."""
    dims = shape(phases)
    n, c, s = dims[0], _channel_count(channels, dims[1]), dims[-2]
    *lead, last = offsets
    return tensor.extract_slice(tensor_type([n, c, *out_sizes], elem_type(phases)), phases, [], [], [],
                                [0, channels.start or 0, *lead, last % s, last // s],
                                [n, c, *out_sizes[:-1], 1, out_sizes[-1]],
                                [1, channels.step or 1, *stride[:-1], 1, 1])


def input_taps(plan: ConvPlan, x: ir.Value, out_sizes: Sequence[int], channel_sets: Sequence[slice]) -> list[ir.Value]:
    """For each channel set (outer) and tap (inner, row-major): the strided
    [N, len(set), *O] view of the padded input x [N,C,*Sp] it reads."""
    offsets = [off for _, off in tap_offsets(plan.kernel, plan.window.dilation)]
    stride = plan.window.stride
    if stride[-1] == 1:
        return [tap_view(x, ch, off, out_sizes, stride) for ch in channel_sets for off in offsets]
    phases = last_dim_phases(x, stride[-1], out_sizes[-1] + max(off[-1] for off in offsets) // stride[-1])
    return [phase_view(phases, ch, off, out_sizes, stride) for ch in channel_sets for off in offsets]


def multiply_add(count: int, acc_elem: ir.Type) -> Callable[[list[ir.Value]], ir.Value]:
    """Body for inputs (a_0..a_{count-1}, b_0..b_{count-1}, out): out + sum a_i*b_i,
    each factor extended to the accumulator type `acc_elem` first when narrower."""
    def widen(v: ir.Value) -> ir.Value:
        return v if v.type == acc_elem else arith.extf(acc_elem, v)

    def body(args: list[ir.Value]) -> ir.Value:
        total = args[-1]
        for t in range(count):
            total = arith.addf(total, arith.mulf(widen(args[t]), widen(args[count + t])))
        return total
    return body


@declines("taps")
def decline_taps(plan: ConvPlan) -> str | None:
    taps = math.prod(plan.kernel)
    if plan.case is Case.GROUPED:
        c_group = group_channels(plan.spec)[0] or 0
        if c_group * taps > MAX_GROUPED_TAPS:
            return f"C/G={c_group} x {taps} taps = {c_group * taps} products > {MAX_GROUPED_TAPS}"
    elif taps > MAX_TAPS:
        return f"kernel {list(plan.kernel)} has {taps} taps > {MAX_TAPS}"
    return None


@emits("taps", Case.DEPTHWISE)
def emit_depthwise_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    out_shape = shape(acc)
    rank = len(out_shape)
    views = input_taps(plan, x, out_shape[2:], [slice(0, out_shape[1], 1)])
    weights = [tap_weight(w, k) for k, _ in tap_offsets(plan.kernel, plan.window.dilation)]
    identity, channel = ir.AffineMap.get_identity(rank), ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(1)])
    maps = [identity] * len(views) + [channel] * len(weights) + [identity]
    return parallel_generic(views + weights, acc, maps, multiply_add(len(views), elem_type(acc)))


@emits("taps", Case.GROUPED)
def emit_grouped_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Grouped: out[n,g,f,*o] = acc + sum_{c,k} w[g*Fg+f, c, *k] * x[n, g*Cg+c, ...],
    all loops (n, g, f, *o) parallel, the Cg*prod(K) products unrolled.
    Input tap (c, k) is x[:, c::Cg, ...] ([N,G,*O], read through
    (n,g,f,*o) -> (n,g,*o)); its weight w[:, c, *k] is [F] -> [G,Fg]
    (read through (g,f))."""
    groups = plan.spec.groups
    n, f, *out = shape(acc)
    rank = 3 + len(out)
    c_group, f_group = shape(w)[1], f // groups
    views = input_taps(plan, x, out, [slice(c, c_group * groups, c_group) for c in range(c_group)])
    weights = [reshape(tap_weight(w, k, c), [[0, 1]], [groups, f_group])
               for c in range(c_group) for k, _ in tap_offsets(plan.kernel, plan.window.dilation)]
    d = [ir.AffineDimExpr.get(i) for i in range(rank)]
    maps = ([ir.AffineMap.get(rank, 0, [d[0], d[1], *d[3:]])] * len(views)
            + [ir.AffineMap.get(rank, 0, [d[1], d[2]])] * len(weights) + [ir.AffineMap.get_identity(rank)])
    split = [[0], [1, 2], *([i] for i in range(3, rank))]
    acc_g = reshape(acc, split, [n, groups, f_group, *out])
    out_g = parallel_generic(views + weights, acc_g, maps, multiply_add(len(views), elem_type(acc)))
    return reshape(out_g, split, [n, f, *out])


COVERAGE["taps"] = Coverage(ranks=(1, 2, 3), transposed=True, dtypes=FLOAT_DTYPES)
