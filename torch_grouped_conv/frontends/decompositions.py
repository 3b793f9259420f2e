"""The decomposition table the torch.export frontend hands torch-mlir's FX import.

torch-mlir's own table (`torch_mlir.extras.fx_decomp_util`), with one entry
replaced: `aten._adaptive_avg_pool2d`. PyTorch's decomposition of it, which
torch-mlir picks, unrolls the pooling window into one `add` per window
position when the windows differ in length ("we assume that the kernels are
going to be small"). A large input makes that window huge: torchvision's
alexnet at 100000x100000 pools a 3124x3124 map to 6x6 with windows up to
522x522, 272,484 adds traced one by one (hours of export; 4000x4000 already
takes 484 of them and ~5 s). torch-mlir's own lowering of the op is no way
out: it aborts the process ("only support cases with fixed stride size").

Above `UNROLL_LIMIT` window positions the table's entry pools with two
matmuls by averaging matrices instead: linear in the input size, the same
windows. At or below it PyTorch's decomposition runs as before, so the IR of
ordinary shapes is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._decomp import decomposition_table as pytorch_decompositions

ADAPTIVE_AVG_POOL2D = torch.ops.aten._adaptive_avg_pool2d.default
UNROLL_LIMIT = 64  # window positions PyTorch's decomposition may unroll (an 8x8 window; each costs ~10 ms of tracing)
LOW_PRECISION = (torch.float16, torch.bfloat16)  # pooled in f32, as PyTorch's decomposition does


def decomposition_table() -> dict[Any, Callable[..., Any]]:
    """torch-mlir's default decomposition table, `aten._adaptive_avg_pool2d` by `adaptive_avg_pool2d`."""
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    table = dict(get_decomposition_table())
    if ADAPTIVE_AVG_POOL2D in table:
        table[ADAPTIVE_AVG_POOL2D] = adaptive_avg_pool2d
    return table


def unrolled_terms(in_sizes: Sequence[int], out_sizes: Sequence[int]) -> int:
    """How many window positions PyTorch's decomposition adds one by one for
    pooling `in_sizes` (H, W) to `out_sizes`: the product of the longest
    window per dim when some dim has windows of different lengths, else 0 (it
    takes a mean over equal windows then)."""
    pairs = list(zip(in_sizes, out_sizes, strict=True))
    if not any(_unequal_windows(i, o) for i, o in pairs):
        return 0
    return math.prod(_longest_window(i, o) for i, o in pairs)


def _unequal_windows(in_size: int, out_size: int) -> bool:
    # PyTorch's `adaptive`: windows of different lengths iff in % out does not divide out.
    rest = in_size % out_size
    return rest != 0 and out_size % rest != 0


def _longest_window(in_size: int, out_size: int) -> int:
    # PyTorch's `maxlength`: in // out + 1, one more with unequal windows,
    # one less when out divides in.
    if in_size % out_size == 0:
        return in_size // out_size
    return in_size // out_size + (2 if _unequal_windows(in_size, out_size) else 1)


def window_weights(in_size: int, out_size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(out_size, in_size): row i is 1/L over output i's window [start, end)
    and 0 elsewhere, with PyTorch's adaptive windows start = floor(i * in / out),
    end = ceil((i + 1) * in / out), L = end - start."""
    i = torch.arange(out_size, device=device).unsqueeze(1)
    j = torch.arange(in_size, device=device).unsqueeze(0)
    start = torch.div(i * in_size, out_size, rounding_mode="floor")
    end = torch.div((i + 1) * in_size + out_size - 1, out_size, rounding_mode="floor")
    inside = (j >= start) & (j < end)
    return inside.to(dtype) / (end - start).to(dtype)


def adaptive_avg_pool2d(x: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
    """`aten._adaptive_avg_pool2d` on x ([N,] C, H, W): PyTorch's decomposition
    where it unrolls at most `UNROLL_LIMIT` window positions (or a size is
    symbolic), else rows @ x @ cols^T with the averaging matrices of
    `window_weights` (H and W pooled one after the other; f16/bf16 in f32)."""
    in_h, in_w = x.shape[-2:]
    out_h, out_w = output_size
    sizes = (in_h, in_w, out_h, out_w)
    if not all(isinstance(s, int) for s in sizes) or unrolled_terms((in_h, in_w), (out_h, out_w)) <= UNROLL_LIMIT:
        return pytorch_decompositions[ADAPTIVE_AVG_POOL2D](x, output_size)
    compute = torch.float32 if x.dtype in LOW_PRECISION else x.dtype
    rows = window_weights(in_h, out_h, compute, x.device)
    cols = window_weights(in_w, out_w, compute, x.device)
    return (rows @ x.to(compute) @ cols.transpose(0, 1)).to(x.dtype)
