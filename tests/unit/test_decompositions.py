"""The adaptive average pooling decomposition (frontends/decompositions.py):
its count of PyTorch's unrolled window positions, pinned against PyTorch's own
decomposition, and its numbers against PyTorch's kernel."""

from __future__ import annotations

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from torch_grouped_conv.frontends.decompositions import (
    ADAPTIVE_AVG_POOL2D,
    UNROLL_LIMIT,
    adaptive_avg_pool2d,
    decomposition_table,
    pytorch_decompositions,
    unrolled_terms,
)

# (H, W, out H, out W): equal windows (mean), divisible (avg_pool2d), unequal in one or both dims.
POOLS = [(8, 8, 6, 6), (12, 12, 6, 6), (12, 13, 6, 6), (30, 1, 7, 1), (124, 38, 6, 5), (20, 20, 3, 3)]


def pytorch_unrolled_terms(h: int, w: int, out: tuple[int, int]) -> int:
    """Window positions PyTorch's decomposition unrolls: it selects each one with two `select`s."""
    graph = make_fx(lambda x: pytorch_decompositions[ADAPTIVE_AVG_POOL2D](x, list(out)))(torch.empty(1, 2, h, w))
    return sum(node.target == torch.ops.aten.select.int for node in graph.graph.nodes) // 2


@pytest.mark.parametrize(("h", "w", "oh", "ow"), POOLS)
def test_unrolled_terms_count_what_pytorch_unrolls(h, w, oh, ow):
    assert unrolled_terms((h, w), (oh, ow)) == pytorch_unrolled_terms(h, w, (oh, ow))


def test_table_replaces_only_adaptive_avg_pool2d():
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    ours, theirs = decomposition_table(), get_decomposition_table()
    assert ours.keys() == theirs.keys()
    assert [op for op in ours if ours[op] is not theirs[op]] == [ADAPTIVE_AVG_POOL2D]


@pytest.mark.parametrize(("shape", "out", "dtype"), [
    ((2, 3, 124, 38), (6, 5), torch.float32),   # 198 positions: matmuls
    ((3, 202, 31), (7, 3), torch.float64),      # unbatched, 330 positions
    ((1, 4, 126, 126), (6, 6), torch.bfloat16),  # pooled in f32
    ((1, 2, 20, 20), (3, 3), torch.float32),    # 64 positions: PyTorch's decomposition
])
def test_matches_pytorch(shape, out, dtype):
    torch.manual_seed(0)
    x = torch.randn(shape).to(dtype)
    tolerance = 1e-2 if dtype == torch.bfloat16 else 1e-6
    torch.testing.assert_close(adaptive_avg_pool2d(x, out), torch.nn.functional.adaptive_avg_pool2d(x, out),
                               atol=tolerance, rtol=tolerance)


def test_large_windows_are_two_matmuls_not_an_unrolled_sum():
    big = make_fx(lambda x: adaptive_avg_pool2d(x, [6, 5]))(torch.empty(1, 2, 124, 38))
    small = make_fx(lambda x: adaptive_avg_pool2d(x, [3, 3]))(torch.empty(1, 2, 20, 20))
    ops = [str(n.target) for n in big.graph.nodes if n.op == "call_function"]
    assert unrolled_terms((124, 38), (6, 5)) > UNROLL_LIMIT >= unrolled_terms((20, 20), (3, 3))
    assert "aten.select.int" not in ops and sum("matmul" in op or "mm" in op for op in ops) == 2
    assert sum(n.target == torch.ops.aten.select.int for n in small.graph.nodes) == 2 * 64  # 8x8 windows, unrolled
