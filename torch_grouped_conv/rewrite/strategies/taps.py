"""`taps`: a depthwise or grouped convolution as one all-parallel
linalg.generic over the output, the window unrolled into its taps. Any
spatial rank d (1D, 2D, 3D): every index below is a tuple over the spatial dims.

Depthwise layout: padded input x [N,C,*Sp], weight [C,1,*K],
accumulator [N,C,*O] (zeros; the bias is added after). With window stride s and dilation r,

  out[n,c,*o] = acc[n,c,*o] + sum_{k} w[c,0,*k] * x[n, c, o_i*s_i + k_i*r_i ...]

Tap k reads the strided view
  x[:, :, k_i*r_i : k_i*r_i + (O_i-1)*s_i + 1 : s_i ...]
(a tensor.extract_slice of shape [N,C,*O]; IREE folds it into the
dispatch's load, no copy) through the identity map, and its weight
w[:, 0, *k] ([C], a rank-reducing slice of a constant) through
(n,c,*o) -> (c). All loops are parallel, so IREE tiles and vectorizes
it like an elementwise op (along the last dim), with no reduction loop.

Grouped (`emit_grouped_taps`): the same over (n, g, f, *o) with the
C/G*prod(K) products unrolled; the channel multiplier (groups = C,
C_out = m*C) is its C/G = 1 instance: m outputs per input channel.

Transposed convs (stride s > 1): the sub-pixel / phase decomposition, s^d
stride-1 tap sets over the undilated input, one per output phase, no product
on an inserted zero (emit/phases.py: `output_phases`, `by_phase`, `interleave`).

Narrow rows (`blocks_channels`: f32/f16/bf16 2D forward depthwise, C % 16 == 0,
Wo <= 7, or Wo <= 14 with >= 25 taps): a 7- or 14-float row vectorizes
into 8-, 4- and 2-float pieces, so those convs run over channel blocks
instead (`emit_depthwise_taps_blocked`): linalg.pack to [N,C/16,Hp,Wp,16],
the taps as strided views of that ([N,C/16,Ho,Wo,16], 16 contiguous
channels innermost at any stride), linalg.unpack back to NCHW (IREE fuses
the consumer's elementwise ops into the unpack; the embedded runner
decomposes pack and unpack, runners/packs.py). With linalg.transpose
instead of pack / unpack IREE fuses the transpose back into the taps
dispatch, which then reads across the blocks (1152@7² k5: 0.32 ms vs 0.15).

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

import math
from collections.abc import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from torch_grouped_conv.rewrite.emit.builders import SizeValue, add_sizes, pad_spatial, static_dims, tensor_type
from torch_grouped_conv.rewrite.emit.layout import (
    NCHW_TO_NHWC,
    NHWC_TO_NCHW,
    element_type_of,
    extract,
    parallel_generic,
    reshape,
    shape,
    sizes,
    transpose,
)
from torch_grouped_conv.rewrite.emit.phases import TapSet, by_phase, output_phases, tap_offsets
from torch_grouped_conv.rewrite.plan import Case, ConvPlan, group_channels
from torch_grouped_conv.rewrite.read.spec import FLOAT_DTYPES
from torch_grouped_conv.rewrite.strategies.strategy import Coverage, Strategy, register

MAX_TAPS = 64  # a body of 2*prod(K) arith ops; bigger windows stay on the named op
MAX_GROUPED_TAPS = 144  # grouped: C/G*prod(K) products per output (16 channels x 3x3)
# IREE 3.13's runtime loads a dispatch with at most 64 push constants ("dispatch
# requiring N constants exceeds limit of 64" at load time, not at compile time).
IREE_PUSH_CONSTANT_LIMIT = 64

def shape_at(value: ir.Value, axis: int) -> int:
    """A dim that must be static (channels, spatial sizes; only the batch may be dynamic)."""
    dim = static_dims(value)[axis]
    assert dim is not None, f"taps: dim {axis} of {value.type} must be static"
    return dim


def _channel_count(channels: slice, total: int) -> int:
    return len(range(*channels.indices(total)))


def tap_view(x: ir.Value, channels: slice, offsets: Sequence[int], out_sizes: Sequence[int],
             stride: Sequence[int]) -> ir.Value:
    """x[:, channels, o_i::s_i ...] cut to [N, len(channels), *O]."""
    n, c = sizes(x)[0], _channel_count(channels, shape_at(x, 1))
    return extract(x, [0, channels.start or 0, *offsets], [n, c, *out_sizes], [1, channels.step or 1, *stride])


def tap_weight(w: ir.Value, k: Sequence[int], c: int = 0) -> ir.Value:
    """w[:, c, *k] as a [F] tensor (rank-reducing tensor.extract_slice)."""
    f, rank = shape(w)[0], len(shape(w))
    return tensor.extract_slice(tensor_type([f], element_type_of(w)), w, [], [], [], [0, c, *k], [f] + [1] * (rank - 1),
                                [1] * rank)


def last_dim_phases(x: ir.Value, stride: int, width: SizeValue) -> ir.Value:
    """x [N,C,*S,Wp] -> [N,C,*S,stride,width] with
    out[..., p, q] = x[..., q*stride + p] (x zero-padded at the end when
    width*stride > Wp, cropped when less; those elements are never read by a tap).

    One copy pass that de-interleaves the last dim, so that every tap of a
    convolution with last-dim stride > 1 reads contiguous elements: tap
    element o*stride + t lies in phase t % stride at q = o + t // stride.

    A static width: x padded or cut to width*stride columns, viewed as
    [..., width, stride] (expand_shape, free) and transposed to [..., stride,
    width], one linalg.transpose: IREE 3.13 moves it with shuffles, where the
    generic below (each output element read from every stride-th float) ran
    ~1.7x slower (96@112², stride 2, 1 thread: 0.53-0.58 -> 0.30-0.37 ms).

    A dynamic width (a dynamic spatial dim): width = Wo + (k-1)*d // stride
    and Wp >= (Wo-1)*stride + (k-1)*d + 1, so width*stride - Wp <= stride - 1:
    x is padded by stride - 1 at the end, statically, the rest cropped by that generic.
    """
    dims = sizes(x)
    rank, wp = len(dims), static_dims(x)[-1]
    if isinstance(width, int) and wp is not None:
        total = width * stride
        if total > wp:
            x = pad_spatial(x, [0] * (rank - 2), [0] * (rank - 3) + [total - wp])
        elif total < wp:
            x = extract(x, [0] * rank, [*dims[:-1], total], [1] * rank)
        pairs = reshape(x, [[i] for i in range(rank - 1)] + [[rank - 1, rank]], [*dims[:-1], width, stride])
        return transpose(pairs, [*range(rank - 1), rank, rank - 1])
    x = pad_spatial(x, [0] * (rank - 2), [0] * (rank - 3) + [stride - 1])
    d = [ir.AffineDimExpr.get(i) for i in range(rank + 1)]
    last = ir.AffineAddExpr.get(ir.AffineMulExpr.get(d[rank], ir.AffineConstantExpr.get(stride)), d[rank - 1])
    maps = [ir.AffineMap.get(rank + 1, 0, [*d[:rank - 1], last]), ir.AffineMap.get_identity(rank + 1)]
    init = tensor.empty([*dims[:-1], stride, width], element_type_of(x))
    return parallel_generic([x], init, maps, lambda args: args[0])


def phase_view(phases: ir.Value, channels: slice, offsets: Sequence[int], out_sizes: Sequence[int],
               stride: Sequence[int]) -> ir.Value:
    """The tap at `offsets` of the padded input, read from `last_dim_phases`:
    phases[:, channels, o_i::s_i ..., t % s, t // s : t // s + O_last] as [N, len(channels), *O]."""
    n, c, s = sizes(phases)[0], _channel_count(channels, shape_at(phases, 1)), shape_at(phases, -2)
    *lead, last = offsets
    return extract(phases, [0, channels.start or 0, *lead, last % s, last // s],
                   [n, c, *out_sizes[:-1], 1, out_sizes[-1]], [1, channels.step or 1, *stride[:-1], 1, 1],
                   [n, c, *out_sizes])


def input_taps(x: ir.Value, tap_set: TapSet, channel_sets: Sequence[slice], phases: ir.Value | None) -> list[ir.Value]:
    """For each channel set (outer) and tap (inner, row-major): the strided
    [N, len(set), *O] view of the padded input x [N,C,*Sp] it reads (from
    `phases`, the de-interleaved x, when the last-dim stride is > 1)."""
    offsets = [off for _, off in tap_set.taps]
    if phases is None:
        return [tap_view(x, ch, off, tap_set.out_sizes, tap_set.stride) for ch in channel_sets for off in offsets]
    return [phase_view(phases, ch, off, tap_set.out_sizes, tap_set.stride) for ch in channel_sets for off in offsets]


def input_phases(x: ir.Value, tap_set: TapSet) -> ir.Value | None:
    """`last_dim_phases` of x wide enough for the tap set (Wo + max offset // s,
    from tensor.dim when Wo is dynamic), or None at last-dim stride 1."""
    stride = tap_set.stride[-1]
    if stride == 1:
        return None
    width = add_sizes(tap_set.out_sizes[-1], max(off[-1] // stride for _, off in tap_set.taps))
    return last_dim_phases(x, stride, width)


def over_phases(plan: ConvPlan, x: ir.Value, acc: ir.Value,
                emit: Callable[[TapSet, ir.Value | None, ir.Value, ir.Value | None], ir.Value]) -> ir.Value:
    """`emit(tap_set, acc, x, phases)` once for a forward conv (phases: the
    de-interleaved input at a last-dim stride > 1), or per output phase of a
    transposed conv with stride > 1 (`phases.by_phase`: `emit(tap_set, None, u, None)`)."""
    phased = output_phases(plan, sizes(acc)[2:])
    if len(phased) == 1:
        ts = phased[0][1]
        return emit(ts, acc, x, input_phases(x, ts))
    return by_phase(plan, x, acc, lambda ts, u: emit(ts, None, u, None))


def multiply_add(count: int, acc_elem: ir.Type, accumulate: bool = True) -> Callable[[list[ir.Value]], ir.Value]:
    """Body for inputs (a_0..a_{count-1}, b_0..b_{count-1}, acc, out): acc + sum a_i*b_i
    (without `accumulate`: inputs (a..., b..., out) and the sum alone), each
    factor extended to the accumulator type `acc_elem` first when narrower.
    `out` is never read (see `accumulating_generic`)."""
    def widen(v: ir.Value) -> ir.Value:
        return v if v.type == acc_elem else arith.extf(acc_elem, v)

    def body(args: list[ir.Value]) -> ir.Value:
        products = [arith.mulf(widen(args[t]), widen(args[count + t])) for t in range(count)]
        total = args[2 * count] if accumulate else products.pop(0)
        for product in products:
            total = arith.addf(total, product)
        return total
    return body


def accumulating_generic(inputs: Sequence[ir.Value], maps: Sequence[ir.AffineMap], acc: ir.Value | None,
                         body: Callable[[list[ir.Value]], ir.Value], out_sizes: Sequence[SizeValue],
                         elem: ir.Type) -> ir.Value:
    """`parallel_generic` over `inputs` (read through `maps`, one per input)
    plus the accumulator `acc` as the last *input* (read through the identity
    map), into a tensor.empty of `out_sizes` that the body never reads; without
    `acc` (a phase block), the inputs alone.

    Why acc is an input and not the `outs` operand (seen in the IR that
    torch-mlir 20261001's MLIR produces): linalg-fuse-elementwise-ops keeps a
    producer's result as an extra result of the fused op when the producer's
    body reads its `outs`, indexed through the consumer's map for the fused
    operand. When that consumer is a convolution or a matmul
    (reduction loops, (n, c, oh + kh, ...) maps) the extra result is written
    once per reduction step, each time reading its own last value: the taps
    sum is added C_out*prod(K) times. IREE's fusion does not do this; the
    embedded runner's pipeline did (mobilenet_v2 with `taps`: rel error 2e9).
    An init that is not read cannot be preserved, so the fusion stays exact."""
    identity = ir.AffineMap.get_identity(maps[0].n_dims)
    extra, extra_maps = ([acc], [identity]) if acc is not None else ([], [])
    init = tensor.empty(list(out_sizes), elem)
    return parallel_generic([*inputs, *extra], init, [*maps, *extra_maps, identity], body)


def phase_taps(kernel: int, stride: int, dilation: int) -> int:
    """The most taps of one output phase along a dim: tap k lands in phase k*d mod s."""
    return -(-kernel // (stride // math.gcd(stride, dilation)))


def push_constants(plan: ConvPlan) -> int:
    """An estimate of the push constants of a 3D transposed conv's phase dispatch
    with a dynamic spatial dim (0 for any other conv).

    Measured on IREE 3.13 (llvm-cpu): each tap view of such a phase generic
    (C/G views per tap of the phase) is a binding with its own dynamic offset
    and size, 2 constants each, twice that at f16/bf16, plus 4: the issue's
    ConvTranspose3d(16, 2, (1, 3, 3), stride (2, 3, 1), groups 2) with a dynamic
    last dim needs 52 at f32 and 100 at f16 (24 views). Forward convs and 1D/2D
    transposed ones share their views' sizes (at most 14 measured).
    """
    spec = plan.spec
    dynamic_spatial = any(d is None for d in spec.input.shape[2:])
    if not (spec.transposed and spec.spatial_rank == 3 and dynamic_spatial and max(spec.stride) > 1):
        return 0
    c_group = 1 if plan.case == Case.DEPTHWISE else (group_channels(spec)[0] or 0)
    views = c_group * math.prod(phase_taps(k, s, d) for k, s, d in zip(plan.kernel_sizes, spec.stride,
                                                                        spec.dilation, strict=True))
    return 4 + 2 * views * (2 if spec.input.dtype in ("f16", "bf16") else 1)


def decline_taps(plan: ConvPlan) -> str | None:
    constants = push_constants(plan)
    if constants > IREE_PUSH_CONSTANT_LIMIT:
        return (f"a dynamic spatial dim of this 3D transposed conv needs ~{constants} IREE push constants per "
                f"dispatch > {IREE_PUSH_CONSTANT_LIMIT} (IREE's runtime refuses to load it)")
    taps = math.prod(plan.kernel_sizes)
    if plan.case in (Case.GROUPED, Case.DEPTHWISE_MULTIPLIER):
        c_group = group_channels(plan.spec)[0] or 0
        if c_group * taps > MAX_GROUPED_TAPS:
            return f"C/G={c_group} x {taps} taps = {c_group * taps} products > {MAX_GROUPED_TAPS}"
    elif taps > MAX_TAPS:
        return f"kernel {list(plan.kernel)} has {taps} taps > {MAX_TAPS}"
    return None


def emit_depthwise_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    if computes_channels_last(plan):
        return emit_depthwise_taps_nhwc(plan, x, w, acc)
    if blocks_channels(plan):
        return emit_depthwise_taps_blocked(plan, x, w, acc)
    channels = shape_at(acc, 1)
    rank = len(sizes(acc))

    def emit(tap_set: TapSet, acc_block: ir.Value | None, x: ir.Value, phases: ir.Value | None) -> ir.Value:
        views = input_taps(x, tap_set, [slice(0, channels, 1)], phases)
        weights = [tap_weight(w, k) for k, _ in tap_set.taps]
        identity, channel = ir.AffineMap.get_identity(rank), ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(1)])
        maps = [identity] * len(views) + [channel] * len(weights)
        n, f = sizes(acc)[:2]
        return accumulating_generic(views + weights, maps, acc_block,
                                    multiply_add(len(views), element_type_of(acc), acc_block is not None),
                                    [n, f, *tap_set.out_sizes], element_type_of(acc))

    return over_phases(plan, x, acc, emit)


def emit_grouped_taps(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Grouped: out[n,g,f,*o] = acc + sum_{c,k} w[g*Fg+f, c, *k] * x[n, g*Cg+c, ...],
    all loops (n, g, f, *o) parallel, the Cg*prod(K) products unrolled.
    Input tap (c, k) is x[:, c::Cg, ...] ([N,G,*O], read through
    (n,g,f,*o) -> (n,g,*o)); its weight w[:, c, *k] is [F] -> [G,Fg]
    (read through (g,f)).

    The channel multiplier (groups = C, F = m*C) is the case C/G = 1: per tap
    one [N,C,*O] view, read by the m outputs of its channel through
    (n,c,j,*o) -> (n,c,*o), and its weight [F] -> [C,m]."""
    groups = plan.spec.groups
    n, f, *out = sizes(acc)
    rank = 3 + len(out)
    c_group, f_group = shape(w)[1], shape_at(acc, 1) // groups
    channel_sets = [slice(c, c_group * groups, c_group) for c in range(c_group)]
    d = [ir.AffineDimExpr.get(i) for i in range(rank)]
    split = [[0], [1, 2], *([i] for i in range(3, rank))]

    def emit(tap_set: TapSet, acc_block: ir.Value | None, x: ir.Value, phases: ir.Value | None) -> ir.Value:
        views = input_taps(x, tap_set, channel_sets, phases)
        weights = [reshape(tap_weight(w, k, c), [[0, 1]], [groups, f_group])
                   for c in range(c_group) for k, _ in tap_set.taps]
        maps = ([ir.AffineMap.get(rank, 0, [d[0], d[1], *d[3:]])] * len(views)
                + [ir.AffineMap.get(rank, 0, [d[1], d[2]])] * len(weights))
        grouped_sizes = [n, groups, f_group, *tap_set.out_sizes]
        acc_g = None if acc_block is None else reshape(acc_block, split, grouped_sizes)
        out_g = accumulating_generic(views + weights, maps, acc_g,
                                     multiply_add(len(views), element_type_of(acc), acc_block is not None),
                                     grouped_sizes, element_type_of(acc))
        return reshape(out_g, split, [n, shape_at(acc, 1), *tap_set.out_sizes])

    return over_phases(plan, x, acc, emit)


def computes_channels_last(plan: ConvPlan) -> bool:
    """A 2D forward static depthwise conv whose result is permuted to NHWC next."""
    spec = plan.spec
    return (spec.channels_last_result and spec.spatial_rank == 2 and not spec.transposed
            and spec.input.is_static and spec.result.is_static)


CKK_TO_KKC = (1, 2, 3, 0)  # depthwise weight [C,1,KH,KW] -> [1,KH,KW,C]


def channel_last_weight(wt: ir.Value, k: Sequence[int]) -> ir.Value:
    """wt[0, *k, :] of a [1,KH,KW,C] weight: tap k's [C] weights, contiguous
    (a [C] slice of the [C,1,KH,KW] weight would read every KH*KW-th float,
    which IREE gathers element by element when it vectorizes along C)."""
    c = shape(wt)[-1]
    return extract(wt, [0, *k, 0], [1, 1, 1, c], [1, 1, 1, 1], [c])


def emit_depthwise_taps_nhwc(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Depthwise taps computed channels-last, for a result that is permuted to
    NHWC next (ConvNeXt): x and the accumulator are transposed to NHWC, the
    taps x[:, ho*sh + kh*dh, wo*sw + kw*dw, :] are [N,Ho,Wo,C] strided views
    (contiguous along C, which IREE vectorizes), and the result is transposed
    back to NCHW, where it cancels against the consumer's permute."""
    wt = transpose(w, CKK_TO_KKC)  # [1,KH,KW,C]: a constant's transpose, folded by IREE
    taps = tap_offsets(plan.kernel_sizes, plan.spec.dilation)
    channel = ir.AffineMap.get(4, 0, [ir.AffineDimExpr.get(3)])
    out = channel_innermost_taps(plan, transpose(x, NCHW_TO_NHWC), transpose(acc, NCHW_TO_NHWC),
                                 [channel_last_weight(wt, k) for k, _ in taps], channel)
    return transpose(out, NHWC_TO_NCHW)


def channel_innermost_taps(plan: ConvPlan, x: ir.Value, acc: ir.Value, weights: Sequence[ir.Value],
                           weight_map: ir.AffineMap) -> ir.Value:
    """acc + the taps over a layout whose last dim holds channels and whose two
    dims before it are H and W (NHWC, or the blocks [N,C/16,H,W,16]): tap k
    reads x[..., ho*sh + kh*dh, wo*sw + kw*dw, :] as a strided view the shape
    of acc (contiguous along the channels, which IREE vectorizes), and its
    weight `weights[k]` through `weight_map`. A unit output dim takes stride 1:
    iree-compile 3.13 fails on a unit slice of stride > 1 in the blocked layout
    ("expected result type to be 'memref<1x1x3x1x1x3x16xf32, ...>' or a
    rank-reduced version")."""
    dims = shape(acc)
    lead = len(dims) - 3
    sh, sw = (stride if size > 1 else 1 for stride, size in zip(plan.spec.stride, dims[lead:lead + 2], strict=True))
    view_type = tensor_type(dims, element_type_of(x))
    views = [tensor.extract_slice(view_type, x, [], [], [], [0] * lead + [row, col, 0], dims, [1] * lead + [sh, sw, 1])
             for _, (row, col) in tap_offsets(plan.kernel_sizes, plan.spec.dilation)]
    identity = ir.AffineMap.get_identity(len(dims))
    maps = [identity] * len(views) + [weight_map] * len(weights)
    body = multiply_add(len(views), element_type_of(acc))
    return accumulating_generic([*views, *weights], maps, acc, body, dims, element_type_of(acc))


CHANNEL_BLOCK = 16  # channels per block: one AVX-512 vector of f32
# Narrow output rows computed over channel blocks (measured: docs/performance.md, "The `auto` rule").
BLOCKED_MAX_WIDTH = 7
BLOCKED_WIDE_MAX_WIDTH, BLOCKED_WIDE_MIN_TAPS = 14, 25
BLOCKED_DTYPES = ("f32", "f16", "bf16")  # f16/bf16 accumulate in 16 f32 lanes too; f64 not measured


def blocks_channels(plan: ConvPlan) -> bool:
    """A 2D forward static f32/f16/bf16 depthwise conv with C % 16 == 0 and a narrow
    output row: Wo <= BLOCKED_MAX_WIDTH, or Wo <= BLOCKED_WIDE_MAX_WIDTH with at
    least BLOCKED_WIDE_MIN_TAPS taps (`emit_depthwise_taps_blocked`)."""
    spec = plan.spec
    if not (spec.spatial_rank == 2 and not spec.transposed and spec.input.is_static and spec.result.is_static
            and spec.input.dtype in BLOCKED_DTYPES and (spec.input.shape[1] or 0) % CHANNEL_BLOCK == 0):
        return False
    width, taps = spec.result.shape[-1] or 0, math.prod(plan.kernel_sizes)
    return width <= BLOCKED_MAX_WIDTH or (width <= BLOCKED_WIDE_MAX_WIDTH and taps >= BLOCKED_WIDE_MIN_TAPS)


def pack_channels(value: ir.Value) -> ir.Value:
    """[N,C,H,W] -> [N,C/16,H,W,16] (linalg.pack of dim 1 by 16)."""
    n, c, h, w = shape(value)
    empty = tensor.empty([n, c // CHANNEL_BLOCK, h, w, CHANNEL_BLOCK], element_type_of(value))
    return linalg.PackOp(empty.type, value, empty, [1], [], [CHANNEL_BLOCK]).result


def unpack_channels(value: ir.Value) -> ir.Value:
    n, cb, h, w, b = shape(value)
    empty = tensor.empty([n, cb * b, h, w], element_type_of(value))
    return linalg.UnPackOp(empty.type, value, empty, [1], [], [CHANNEL_BLOCK]).result


def emit_depthwise_taps_blocked(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """Depthwise taps over channel blocks: x and acc packed to [N,C/16,H,W,16],
    tap views x[:, :, ho*sh + kh*dh, wo*sw + kw*dw, :] ([N,C/16,Ho,Wo,16], 16
    contiguous channels innermost whatever the stride), the weights [C/16,16]
    per tap, the result unpacked."""
    accb = pack_channels(acc)
    blocks = shape(accb)[1]
    wt = transpose(w, CKK_TO_KKC)
    weights = [reshape(channel_last_weight(wt, k), [[0, 1]], [blocks, CHANNEL_BLOCK])
               for k, _ in tap_offsets(plan.kernel_sizes, plan.spec.dilation)]
    channel = ir.AffineMap.get(5, 0, [ir.AffineDimExpr.get(1), ir.AffineDimExpr.get(4)])
    return unpack_channels(channel_innermost_taps(plan, pack_channels(x), accb, weights, channel))


TAPS = register(Strategy(
    "taps",
    emitters={Case.DEPTHWISE: emit_depthwise_taps, Case.GROUPED: emit_grouped_taps,
              Case.DEPTHWISE_MULTIPLIER: emit_grouped_taps},
    coverage=Coverage(ranks=(1, 2, 3), transposed=True, dtypes=FLOAT_DTYPES, dynamic_batch=True, dynamic_spatial=True),
    decline=decline_taps,
))
