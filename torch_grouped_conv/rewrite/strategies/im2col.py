"""`im2col`: a grouped GEMM. An im2col linalg.generic gathers each output
position's receptive field, then one linalg.batch_matmul over the groups.
Any spatial rank d; below *k, *o, *s are d-tuples.

Index math, with G groups, Cg = C/G, Fg = F/G, K = Cg*prod(k), P = N*prod(O):
  col[g, c, *k, n, *o] = x[n, g*Cg + c, o_i*s_i + k_i*r_i ...]
  (x padded, read through its [N,G,Cg,*Sp] expansion: an affine map, no gather),
  collapsed to [G, K, P];
  weight [F,Cg,*k] -> [G,Fg,Cg,*k] -> [G,Fg,K];
  out[g, f, p] = acc[g, f, p] + sum_k weight[g, f, k] * col[g, k, p]   (batch_matmul)
The accumulator [N,F,*O] (zeros; the bias is added after) is transposed to [F,N,*O] so
that P = (n, *o) is contiguous, and the result is transposed back.
f16/bf16: col and weight stay in the input type; batch_matmul extends them
to the (f32) accumulator's type per element.

A long 1D kernel (wav2vec2's k=128, C/G=48) is the natural case: K = 6144.

Blocked (`blocking`): an f32 im2col matrix of at least the active tuning's
`blocked_im2col_bytes` (rewrite/tuning.py: 32 MiB, 4 MiB on Intel AVX-512)
is written straight in the tiled layout of a `linalg.batch_mmt4d` (the layout
IREE's data tiling packs a GEMM operand into, here with Mt = Nt = 16, Kt = 1):
  rhs[g, (n, *o', w1), (c, *k), n0] = x[n, g*Cg + c, ..., (w1*16 + n0)*s + k*r]
(o' the outer output dims, the last one split as w1*16 + n0 and padded up to
a multiple of 16: the input gets the extra columns as zeros),
  lhs[g, m1, (c, *k), m0] = weight[g*Fg + m1*16 + m0, c, *k]   (zero rows up to 16),
  out[g, m1, n1, m0, n0] = sum lhs * rhs (batch_mmt4d), transposed to
[G, Fg, N, *O] and cropped. IREE would otherwise fuse the im2col into its
pack as one store per element (wav2vec2: 98 MB in 36 ms at 1 thread), and
over 64 MiB its local-task driver maps the transient afresh on every call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import linalg, tensor

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.layout import (
    add_tensors,
    element_type_of,
    extract,
    merge_groups,
    parallel_generic,
    reshape,
    shape,
    sizes,
    transpose,
)
from torch_grouped_conv.rewrite.emit.phases import TapSet, by_phase, is_phased
from torch_grouped_conv.rewrite.plan import Case, ConvPlan, group_channels
from torch_grouped_conv.rewrite.read.spec import FLOAT_DTYPES
from torch_grouped_conv.rewrite.strategies.strategy import Coverage, Strategy, register
from torch_grouped_conv.rewrite.tuning import Tuning, active


def nf_swap(rank: int) -> tuple[int, ...]:
    """[N,F,*O] <-> [F,N,*O] for a rank-`rank` tensor."""
    return (1, 0, *range(2, rank))


def im2col_input_map(stride: Sequence[int], dilation: Sequence[int]) -> ir.AffineMap:
    """(g, c, *k, n, *o) -> (n, g, c, o_i*s_i + k_i*r_i ...)."""
    d = len(stride)
    dims = [ir.AffineDimExpr.get(i) for i in range(3 + 2 * d)]
    g, c, ks, n, outs = dims[0], dims[1], dims[2:2 + d], dims[2 + d], dims[3 + d:]
    window = [o * s + k * r for o, k, s, r in zip(outs, ks, stride, dilation, strict=False)]
    return ir.AffineMap.get(3 + 2 * d, 0, [n, g, c, *window])


def im2col(plan: ConvPlan, x: ir.Value, out_sizes: Sequence[builders.SizeValue]) -> ir.Value:
    """[N,C,*Sp] -> col [G, Cg*prod(k), N*prod(O)] (see module docstring)."""
    return im2col_matrix(x, plan.spec.groups, plan.kernel_sizes, plan.window.stride, plan.window.dilation, out_sizes)


def im2col_matrix(x: ir.Value, groups: int, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  out_sizes: Sequence[builders.SizeValue]) -> ir.Value:
    """col[g, c, *k, n, *o] = x[n, g*Cg + c, o_i*s_i + k_i*r_i ...], collapsed to [G, Cg*prod(k), N*prod(O)]."""
    d = len(kernel)
    xg = builders.expand(x, 1, groups)
    n, _, c_group = sizes(xg)[:3]  # n: an int, or a tensor.dim for a dynamic batch
    assert isinstance(c_group, int)
    empty = tensor.empty([groups, c_group, *kernel, n, *out_sizes], element_type_of(x))
    maps = [im2col_input_map(stride, dilation), ir.AffineMap.get_identity(3 + 2 * d)]
    col = parallel_generic([xg], empty, maps, lambda args: args[0])
    k = c_group * math.prod(kernel)
    return reshape(col, [[0], list(range(1, 2 + d)), list(range(2 + d, 3 + 2 * d))], [groups, k, positions(n, out_sizes)])


def positions(n: builders.SizeValue, out_sizes: Sequence[builders.SizeValue]) -> builders.SizeValue:
    """P = N * prod(O), an index value when N or an output size is dynamic."""
    return builders.product([n, *out_sizes])


def decline_im2col(plan: ConvPlan) -> str | None:
    """A grouped transposed conv with a 1x1 kernel: its forward weight is a
    pure transpose of the constant ([G, C/G, F/G] -> [G, F/G, C/G], the flip is
    the identity), and iree-compile 3.13 crashes turning the batch_matmul fed
    by it into batch_matmul_transpose_a (TransposePropagationPatterns)."""
    if plan.spec.transposed and plan.spec.groups > 1 and all(k == 1 for k in plan.kernel):
        return (f"transposed groups={plan.spec.groups} with kernel {list(plan.kernel)}: iree-compile 3.13 crashes "
                "on a batch_matmul whose weight is a pure transpose")
    return None


def emit_im2col(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    if is_phased(plan):
        return emit_im2col_phases(plan, x, w, acc)
    tiles = blocking(plan)
    if tiles is not None:
        return blocked_gemm(plan, tiles, x, w, acc)
    n, _, *out = sizes(acc)  # ints, or tensor.dim values for a dynamic batch or spatial dim
    return grouped_gemm(plan.spec.groups, w, im2col(plan, x, tuple(out)), acc, n, out)


def grouped_gemm(groups: int, w: ir.Value, col: ir.Value, acc: ir.Value | None, n: builders.SizeValue,
                 out: Sequence[builders.SizeValue], elem: ir.Type | None = None, tile: bool = True) -> ir.Value:
    """[N,F,*O] = acc + the batch_matmul of w [F,Cg,*k] (as [G,Fg,K]) and col [G,K,N*prod(O)].
    Without acc (a transposed conv's phase block): the product alone, into zeros of type `elem`.
    Marked for no data tiling unless `wants_data_tiling` and `tile`."""
    f = shape(w)[0]
    rank, f_group = 2 + len(out), f // groups
    weight = reshape(builders.expand(w, 0, groups), merge_groups(rank + 1, 2, rank - 1), [groups, f_group, col_k(col)])
    split_f = [[0, 1], *([i] for i in range(2, rank + 1))]  # [F,...] <-> [G,Fg,...]
    if acc is None:
        assert elem is not None
        init = builders.init_accumulator([groups, f_group, positions(n, out)], elem)
    else:
        acc_g = reshape(transpose(acc, nf_swap(rank)), split_f, [groups, f_group, n, *out])  # [G,Fg,N,*O]
        init = reshape(acc_g, merge_groups(rank + 1, 2, rank - 1), [groups, f_group, positions(n, out)])
    result = linalg.batch_matmul(weight, col, outs=[init])
    if not (tile and wants_data_tiling(groups, col_k(col))):
        result.owner.attributes[builders.NO_DATA_TILING] = ir.UnitAttr.get()
    result_g = reshape(result, merge_groups(rank + 1, 2, rank - 1), [groups, f_group, n, *out])
    return transpose(reshape(result_g, split_f, [f, n, *out]), nf_swap(rank))


def emit_im2col_phases(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """A transposed conv with stride s > 1 by output phase (phases.by_phase, the
    sub-pixel decomposition): phase r is a stride-1 forward conv over the
    undilated input u with the kernel taps that land on its nonzeros. Those
    taps are, per spatial dim, an arithmetic progression of kernel indices
    k0 + j*ks reading u at q + o0 + j*os, so each phase is one grouped GEMM:
    an im2col over u[o0:] (dilation os) and the weight's strided slice
    w[:, :, k0::ks] (count m per dim), K = Cg*prod(m). No product touches an
    inserted zero: s^d GEMMs with 1/s^d of the zero-inserted form's work in all."""
    groups, d = plan.spec.groups, len(plan.kernel)
    f, c_group = shape(w)[:2]

    def emit(tap_set: TapSet, u: ir.Value) -> ir.Value:
        first, step, base, spacing, count = zip(*tap_progressions(tap_set), strict=False)
        w_phase = extract(w, [0, 0, *first], [f, c_group, *count], [1, 1, *step])
        # exactly the window the phase reads, so that a unit tap count (IREE folds the unit
        # dim, leaving a bare q index) sees an input of size Q
        n, c = sizes(u)[:2]
        window = [builders.add_sizes(q, (m - 1) * r) for q, m, r in zip(tap_set.out_sizes, count, spacing, strict=False)]
        u_phase = extract(u, [0, 0, *base], [n, c, *window], [1] * (2 + d))
        col = im2col_matrix(u_phase, groups, count, (1,) * d, spacing, tap_set.out_sizes)
        # One tap per dim: the weight is a plain slice of the (constant) flipped weight, which
        # IREE 3.13 folds into the GEMM dispatch's load; data tiling then packs it there, on the
        # stack (over the 32 KB limit from F*C = 8192: "exceeded stack allocation limit").
        single = all(m == 1 for m in count)
        return grouped_gemm(groups, w_phase, col, None, n, tap_set.out_sizes, element_type_of(acc), tile=not single)

    return by_phase(plan, x, acc, emit)


def tap_progressions(tap_set: TapSet) -> list[tuple[int, int, int, int, int]]:
    """Per spatial dim of a phase's taps: (first kernel index, kernel step,
    first input offset, offset step, count). `output_phases` keeps the taps
    that pass a per-dim test, so the set is a product over the dims, each an
    arithmetic progression (k*r = const mod s); checked here."""
    found = []
    for i in range(len(tap_set.taps[0][0])):
        pairs = sorted({(k[i], off[i]) for k, off in tap_set.taps})
        k_step = pairs[1][0] - pairs[0][0] if len(pairs) > 1 else 1
        o_step = pairs[1][1] - pairs[0][1] if len(pairs) > 1 else 1
        assert all(k == pairs[0][0] + j * k_step and o == pairs[0][1] + j * o_step for j, (k, o) in enumerate(pairs))
        found.append((pairs[0][0], k_step, pairs[0][1], o_step, len(pairs)))
    assert len(tap_set.taps) == math.prod(c for *_, c in found)
    return found


# From this size on (bytes) an f32 im2col matrix is written in the GEMM's tiled
# layout (`blocked_gemm`). Measured (AMD EPYC Zen 4, quiet; docs/performance.md,
# "Large im2col matrices"): wav2vec2's 94 MiB and r3d_18's 331 MiB faster at 1 and 2
# threads; below ~8 MB (the 7x7 stem, grouped convs at 14^2 - 56^2) mixed or slower.
BLOCK = 16  # rows and columns per tile (Mt = Nt; Kt = 1): IREE's f32 tile on AVX-512


@dataclass(frozen=True)
class Blocking:
    """The tiled GEMM of a blocked im2col (module docstring): `col_bytes` the
    plain im2col matrix's size, `m_tiles` / `n_tiles` the tile counts per group
    (Fg and N*prod(O) rounded up, the last output dim per row)."""

    col_bytes: int
    m_tiles: int
    n_tiles: int

    def describe(self) -> str:
        return (f"im2col matrix {self.col_bytes / 2**20:.0f} MiB, written in {BLOCK}x{BLOCK} GEMM tiles "
                f"(batch_mmt4d)")


def blocking(plan: ConvPlan, tuning: Tuning | None = None) -> Blocking | None:
    """The tiled form for a plan's im2col GEMM, or None for the plain one: f32,
    forward, static shapes, the last output dim at least `BLOCK`, an im2col
    matrix of at least `tuning`'s `blocked_im2col_bytes` (default: the active tuning's)."""
    spec = plan.spec
    dims = (*spec.result.shape, *group_channels(spec), *plan.kernel)
    if spec.input.dtype != "f32" or plan.quant is not None or spec.transposed or None in dims:
        return None
    n, _, *out, c_group, f_group = [d for d in dims if d is not None][:len(dims) - len(plan.kernel)]
    col_bytes = 4 * spec.groups * c_group * math.prod(plan.kernel_sizes) * n * math.prod(out)
    if out[-1] < BLOCK or col_bytes < (tuning or active()).blocked_im2col_bytes:
        return None
    rows = n * math.prod(out[:-1])
    return Blocking(col_bytes, -(-f_group // BLOCK), rows * -(-out[-1] // BLOCK))


def blocked_gemm(plan: ConvPlan, tiles: Blocking, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    """acc + the conv of the padded input x [N,C,*Sp] with w [F,Cg,*k] as one
    batch_mmt4d over tiled operands (module docstring, "Blocked")."""
    groups, kernel, elem = plan.spec.groups, plan.kernel_sizes, element_type_of(acc)
    stride, dilation = plan.window.stride, plan.window.dilation
    n, f, *out = shape(acc)
    d, c_group, f_group = len(kernel), shape(w)[1], f // groups
    row_tiles = -(-out[-1] // BLOCK)
    width = (row_tiles * BLOCK - 1) * stride[-1] + (kernel[-1] - 1) * dilation[-1] + 1
    x = builders.pad_spatial(x, [0] * d, [0] * (d - 1) + [max(0, width - shape(x)[-1])])
    k = c_group * math.prod(kernel)
    rhs = tiled_columns(builders.expand(x, 1, groups), kernel, stride, dilation, [*out[:-1], row_tiles])
    rhs = reshape(rhs, [[0], list(range(1, 2 + d)), list(range(2 + d, 3 + 2 * d)), [3 + 2 * d]],
                  [groups, tiles.n_tiles, k, BLOCK])
    lhs = tiled_weight(w, groups, tiles.m_tiles)
    init = builders.init_accumulator([groups, tiles.m_tiles, tiles.n_tiles, BLOCK, BLOCK], elem)
    product = linalg.batch_mmt4d(unit_inner(lhs), unit_inner(rhs), outs=[init])
    y = transpose(product, (0, 1, 3, 2, 4))  # [G, M1, Mt, N1, Nt]
    padded_f = tiles.m_tiles * BLOCK
    y = reshape(y, [[0], [1, 2], [3], [4]], [groups, padded_f, tiles.n_tiles, BLOCK])
    y = reshape(y, [[0], [1], list(range(2, 3 + d)), [3 + d]], [groups, padded_f, n, *out[:-1], row_tiles, BLOCK])
    y = reshape(y, [[0], [1], *([i] for i in range(2, 2 + d)), [2 + d, 3 + d]],
                [groups, padded_f, n, *out[:-1], row_tiles * BLOCK])
    y = extract(y, [0] * (3 + d), [groups, f_group, n, *out], [1] * (3 + d))  # [G,Fg,N,*O]
    y = reshape(y, [[0, 1], *([i] for i in range(2, 3 + d))], [f, n, *out])
    return add_tensors(acc, transpose(y, nf_swap(2 + d)))


def tiled_columns(xg: ir.Value, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                  outer: Sequence[int]) -> ir.Value:
    """xg [N,G,Cg,*Sp] -> [G, N, *O', W1, Cg, *k, Nt]: loops (g, n, *o', w1, c, *k, t)
    read xg[n, g, c, o_i*s_i + k_i*r_i ..., (w1*Nt + t)*s + k*r]."""
    d = len(kernel)
    n, _, c_group = shape(xg)[:3]
    loops = builders.dim_exprs(4 + 2 * d)
    g, nd, outs, c, ks, t = loops[0], loops[1], loops[2:2 + d], loops[2 + d], loops[3 + d:3 + 2 * d], loops[-1]
    columns = [o * s + kk * r for o, kk, s, r in zip(outs[:-1], ks[:-1], stride[:-1], dilation[:-1], strict=True)]
    columns.append((outs[-1] * BLOCK + t) * stride[-1] + ks[-1] * dilation[-1])
    read = builders.affine_map(4 + 2 * d, [nd, g, c, *columns])
    groups = shape(xg)[1]
    empty = tensor.empty([groups, n, *outer, c_group, *kernel, BLOCK], element_type_of(xg))
    return parallel_generic([xg], empty, [read, ir.AffineMap.get_identity(4 + 2 * d)], lambda args: args[0])


def tiled_weight(w: ir.Value, groups: int, m_tiles: int) -> ir.Value:
    """w [F,Cg,*k] -> [G, M1, Cg*prod(k), Mt]: loops (g, m1, c, *k, t) read
    w[g, m1*Mt + t, c, *k] of w as [G, Fg (zero rows up to M1*Mt), Cg, *k]."""
    wg = builders.expand(w, 0, groups)  # [G,Fg,Cg,*k]
    _, f_group, c_group, *kernel = shape(wg)
    d = len(kernel)
    wg = builders.pad_spatial(wg, [0] * (2 + d), [m_tiles * BLOCK - f_group] + [0] * (1 + d))
    loops = builders.dim_exprs(4 + d)
    read = builders.affine_map(4 + d, [loops[0], loops[1] * BLOCK + loops[-1], loops[2], *loops[3:3 + d]])
    empty = tensor.empty([groups, m_tiles, c_group, *kernel, BLOCK], element_type_of(w))
    tiled = parallel_generic([wg], empty, [read, ir.AffineMap.get_identity(4 + d)], lambda args: args[0])
    return reshape(tiled, [[0], [1], list(range(2, 3 + d)), [3 + d]], [groups, m_tiles, c_group * math.prod(kernel), BLOCK])


def unit_inner(tiled: ir.Value) -> ir.Value:
    """[G, T, K, Bt] -> [G, T, K, Bt, 1]: batch_mmt4d's operand with Kt = 1."""
    dims = shape(tiled)
    return reshape(tiled, [[0], [1], [2], [3, 4]], [*dims, 1])


# Below this K a grouped GEMM runs faster without IREE's data tiling (packing
# the im2col matrix and unpacking the result cost more than the packed kernel
# saves); docs/performance.md, "Data tiling per GEMM".
DATA_TILING_MIN_K = 1024


def wants_data_tiling(groups: int, k: int) -> bool:
    """Whether the grouped GEMM (batch G, reduction K) should be data-tiled
    when the module is: groups == 1 (the whole-network GEMMs, measured
    better tiled) or a long reduction (wav2vec2's K = 6144: 8x faster tiled);
    not the small grouped GEMMs (groups4_64to128_56: 2.0 -> 1.0 ms untiled)."""
    return groups == 1 or k >= DATA_TILING_MIN_K


def col_k(col: ir.Value) -> int:
    k = sizes(col)[1]
    assert isinstance(k, int)
    return k


# Its emitters use only type-generic ops (copies, reshapes, named matmuls): given a
# quantized plan's operands centered to i32 (q - zero point, see
# emit/convolution.py) they compute its exact accumulator.
IM2COL = register(Strategy(
    "im2col",
    emitters={Case.CONV: emit_im2col, Case.GROUPED: emit_im2col, Case.DEPTHWISE_MULTIPLIER: emit_im2col},
    coverage=Coverage(ranks=(1, 2, 3), transposed=True, dtypes=FLOAT_DTYPES, dynamic_batch=True, dynamic_spatial=True),
    decline=decline_im2col,
    quantized=True,
))
