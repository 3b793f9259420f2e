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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch_mlir import ir
from torch_mlir.dialects import linalg, tensor

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.emit.layout import (
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
from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.read.spec import FLOAT_DTYPES
from torch_grouped_conv.rewrite.strategies.strategy import Coverage, Strategy, register


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
