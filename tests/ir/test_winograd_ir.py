"""IR of `winograd`: the F(4x4, 3x3) matrices (exact), the op chain it emits
(input and filter transforms as multi-result all-parallel generics written
as sums, ONE batch_matmul over the 36 tile positions, the output transform),
and its declines with their reasons."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch_mlir import ir

from tests.support.compiled import compiled, op_names, print_ir
from tests.support.configs import ConvConfig
from torch_grouped_conv.rewrite.driver import ops_named
from torch_grouped_conv.rewrite.strategies.winograd import F4, MAX_RESULTS


def test_f4_matrices_compute_the_correlation() -> None:
    """1D: sum_j A^T[i][j] G[j][k] B^T[j][l] = [l == i + k] (y_i = sum_k d_{i+k} g_k), exactly;
    the 2D transform is this applied to rows and columns."""
    for i in range(F4.m):
        for k in range(3):
            for col in range(F4.alpha):
                total = sum(F4.at[i][j] * F4.g[j][k] * F4.bt[j][col] for j in range(F4.alpha))
                assert total == (1 if col == i + k else 0), (i, k, col)


def transform_generics(module: ir.Module) -> list[ir.Operation]:
    """The multi-result linalg.generics (the three transforms)."""
    return [op for op in ops_named(module, "linalg.generic") if len(op.results) > 1]


def body_ops(op: ir.Operation) -> Counter[str]:
    return Counter(inner.name for inner in op.regions[0].blocks[0].operations)


@pytest.mark.parametrize(("config", "gemm"), [
    # groups=1, C=8, F=12, output 9x11 -> 3x3 tiles of 4x4: [36, 9, 8] x [36, 8, 12]
    (ConvConfig(c_in=8, c_out=12, groups=1, spatial=(9, 11)), ((36, 9, 8), (36, 8, 12), (36, 9, 12))),
    # groups=4, C=F=16, batch 2, output 8x8: batch 36*4, T = 2*2*2, [144, 8, 4] x [144, 4, 4]
    (ConvConfig(groups=4, batch=2), ((144, 8, 4), (144, 4, 4), (144, 8, 4))),
], ids=["g1", "g4_b2"])
def test_op_chain(config: ConvConfig, gemm: tuple[tuple[int, ...], ...]) -> None:
    module, report = compiled(config, "winograd", "torch")
    assert report.decisions[0].strategy == "winograd", report.summary()
    counts = Counter(op_names(module))
    text = print_ir(module)
    (matmul,) = ops_named(module, "linalg.batch_matmul")
    types = [ir.RankedTensorType(v.type) for v in (*matmul.operands[:2], matmul.results[0])]
    assert [tuple(t.shape) for t in types] == list(gemm), text
    assert not [name for name in counts if "conv" in name and name.startswith("linalg.")], text
    # input transform: 2 generics x 18 positions; filter: 2 x 18; output: 1 x 16 (m*m)
    generics = transform_generics(module)
    assert sorted(len(op.results) for op in generics) == [16, 18, 18, 18, 18], text
    assert max(len(op.results) for op in generics) <= MAX_RESULTS  # IREE's 32 bindings per dispatch
    for op in generics:
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        assert all("parallel" in it for it in iterators), text
        body = body_ops(op)
        assert "linalg.index" not in body and "tensor.extract" not in body, body  # explicit sums, no gathers
        assert body["arith.addf"] + body["arith.subf"] > 0, body
    assert counts["tensor.concat"] == 3 and counts["linalg.transpose"] == 2, dict(counts)


def test_input_transform_reads_channel_innermost() -> None:
    """The input transform's loops end in the channel dim, and every read of
    the NHWC input has it as its last index (contiguous vector loads)."""
    module, _ = compiled(ConvConfig(c_in=8, c_out=12, groups=1, spatial=(9, 11)), "winograd", "torch")
    generics = transform_generics(module)
    reads_x = [op for op in generics if len(op.results) == 18 and len(op.operands) == 18 + 36]
    assert len(reads_x) == 2
    for op in reads_x:
        maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
        assert all(str(m.results[-1]) == f"d{m.n_dims - 1}" for m in maps), maps


@pytest.mark.parametrize(("config", "reason"), [
    (ConvConfig(groups=1, stride=2), "winograd declined: stride [2, 2] (it covers stride 1)"),
    (ConvConfig(groups=1, dilation=2, padding=2), "winograd declined: dilation [2, 2] (it covers dilation 1)"),
    (ConvConfig(groups=1, kernel=5, padding=2), "winograd declined: kernel [5, 5] (it covers 3x3)"),
    (ConvConfig(groups=1, kernel=(3, 1), padding=(1, 0)), "winograd declined: kernel [3, 1] (it covers 3x3)"),
    (ConvConfig(groups=1, spatial=(8,)), "winograd declined: 1D convolution (it covers spatial ranks [2])"),
    (ConvConfig(groups=1, dtype=torch.float16), "winograd declined: dtype f16 (it covers f32, f64)"),
    (ConvConfig(groups=1, transposed=True), "winograd declined: transposed convolution (it covers forward ones)"),
    (ConvConfig(groups=16), "winograd has nothing special for depthwise; default emitter"),
], ids=["stride", "dilation", "k5", "k3x1", "1d", "f16", "transposed", "depthwise"])
def test_declines_with_reason(config: ConvConfig, reason: str) -> None:
    module, report = compiled(config, "winograd", "torch")
    (decision,) = report.decisions
    assert decision.note is not None and decision.note.startswith(reason), decision.note
    assert not ops_named(module, "linalg.batch_matmul")
