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

from .. import builders
from ..plan import Case, ConvPlan
from ..spec import FLOAT_DTYPES
from .layout import elem_type, merge_groups, parallel_generic, reshape, sizes, transpose
from .registry import COVERAGE, Coverage, declines, emits


def nf_swap(rank: int) -> tuple[int, ...]:
    """[N,F,*O] <-> [F,N,*O] for a rank-`rank` tensor."""
    return (1, 0, *range(2, rank))


def im2col_input_map(stride: tuple[int, ...], dilation: tuple[int, ...]) -> ir.AffineMap:
    """(g, c, *k, n, *o) -> (n, g, c, o_i*s_i + k_i*r_i ...)."""
    d = len(stride)
    dims = [ir.AffineDimExpr.get(i) for i in range(3 + 2 * d)]
    g, c, ks, n, outs = dims[0], dims[1], dims[2:2 + d], dims[2 + d], dims[3 + d:]
    window = [o * s + k * r for o, k, s, r in zip(outs, ks, stride, dilation)]
    return ir.AffineMap.get(3 + 2 * d, 0, [n, g, c, *window])


def im2col(plan: ConvPlan, x: ir.Value, out_sizes: tuple[int, ...]) -> ir.Value:
    """[N,C,*Sp] -> col [G, Cg*prod(k), N*prod(O)] (see module docstring)."""
    groups, kernel, d = plan.spec.groups, plan.kernel, len(plan.kernel)
    xg = builders.expand(x, 1, groups)
    n, _, c_group = sizes(xg)[:3]  # n: an int, or a tensor.dim for a dynamic batch
    assert isinstance(c_group, int)
    empty = tensor.empty([groups, c_group, *kernel, n, *out_sizes], elem_type(x))
    maps = [im2col_input_map(plan.window.stride, plan.window.dilation), ir.AffineMap.get_identity(3 + 2 * d)]
    col = parallel_generic([xg], empty, maps, lambda args: args[0])
    k = c_group * math.prod(kernel)
    return reshape(col, [[0], list(range(1, 2 + d)), list(range(2 + d, 3 + 2 * d))], [groups, k, positions(n, out_sizes)])


def positions(n: builders.SizeValue, out_sizes: Sequence[int]) -> builders.SizeValue:
    """P = N * prod(O); with a dynamic N only its dynamism matters (it sizes a collapse_shape's type)."""
    return n * math.prod(out_sizes) if isinstance(n, int) else n


@declines("im2col")
def decline_im2col(plan: ConvPlan) -> str | None:
    """A grouped transposed conv with a 1x1 kernel: its forward weight is a
    pure transpose of the constant ([G, C/G, F/G] -> [G, F/G, C/G], the flip is
    the identity), and iree-compile 3.13 crashes turning the batch_matmul fed
    by it into batch_matmul_transpose_a (TransposePropagationPatterns)."""
    if plan.spec.transposed and plan.spec.groups > 1 and all(k == 1 for k in plan.kernel):
        return (f"transposed groups={plan.spec.groups} with kernel {list(plan.kernel)}: iree-compile 3.13 crashes "
                "on a batch_matmul whose weight is a pure transpose")
    return None


@emits("im2col", Case.CONV, Case.GROUPED, Case.DEPTHWISE_MULTIPLIER)
def emit_im2col(plan: ConvPlan, x: ir.Value, w: ir.Value, acc: ir.Value) -> ir.Value:
    groups = plan.spec.groups
    n, f, *out = sizes(acc)  # n: an int, or a tensor.dim for a dynamic batch
    assert isinstance(f, int) and all(isinstance(o, int) for o in out)
    rank, f_group = 2 + len(out), f // groups
    col = im2col(plan, x, tuple(out))
    weight = reshape(builders.expand(w, 0, groups), merge_groups(rank + 1, 2, rank - 1),
                     [groups, f_group, col_k(col)])
    split_f = [[0, 1], *([i] for i in range(2, rank + 1))]  # [F,...] <-> [G,Fg,...]
    acc_g = reshape(transpose(acc, nf_swap(rank)), split_f, [groups, f_group, n, *out])  # [G,Fg,N,*O]
    acc3 = reshape(acc_g, merge_groups(rank + 1, 2, rank - 1), [groups, f_group, positions(n, out)])
    result = linalg.batch_matmul(weight, col, outs=[acc3])
    if not wants_data_tiling(groups, col_k(col)):
        result.owner.attributes[builders.NO_DATA_TILING] = ir.UnitAttr.get()
    result_g = reshape(result, merge_groups(rank + 1, 2, rank - 1), [groups, f_group, n, *out])
    return transpose(reshape(result_g, split_f, [f, n, *out]), nf_swap(rank))


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


COVERAGE["im2col"] = Coverage(ranks=(1, 2, 3), transposed=True, dtypes=FLOAT_DTYPES, dynamic_batch=True)
