"""IR checks for transposed 1x1 groups == 1 convs (fuzz seeds 301/302): the
swapped weight is a plain linalg.transpose (no gather: nothing to flip), and
`matmul` contracts it with a linalg.generic, never a linalg.matmul (IREE 3.13
crashes when a transpose meets a linalg.matmul). The numbers are checked by the
FUZZ_REGRESSIONS cases and tests/campaigns/test_fuzz.py."""

from __future__ import annotations

import pytest
import torch

import torch_grouped_conv as tgc
from torch_grouped_conv.rewrite.driver import ops_named


def lowered(strategy: str, kernel: int, batch: int):
    torch.manual_seed(0)
    module = torch.nn.ConvTranspose2d(4, 6, kernel, stride=2, bias=False).eval()
    return tgc.compile(module, torch.randn(batch, 4, 5, 5), grouped_conv=strategy)


@pytest.mark.parametrize("strategy", ["grouped", "matmul"])
def test_unit_kernel_weight_is_a_transpose(strategy: str) -> None:
    module = lowered(strategy, 1, 1)
    assert len(ops_named(module, "linalg.transpose")) == 1
    assert "tensor.extract " not in str(module)  # no gather
    assert tgc.last_report().decisions[0].strategy == strategy


def test_larger_kernel_weight_is_flipped_by_a_gather() -> None:
    module = lowered("grouped", 3, 1)
    assert ops_named(module, "linalg.transpose") == []
    assert "tensor.extract " in str(module)


@pytest.mark.parametrize("batch", [1, 2])
def test_matmul_transposed_uses_the_generic_contraction(batch: int) -> None:
    module = lowered("matmul", 1, batch)
    assert ops_named(module, "linalg.matmul") == []
    reductions = [op for op in ops_named(module, "linalg.generic") if "reduction" in str(op.attributes["iterator_types"])]
    assert len(reductions) == 1


def test_matmul_forward_batch_one_is_a_linalg_matmul() -> None:
    torch.manual_seed(0)
    module = tgc.compile(torch.nn.Conv2d(4, 6, 1, bias=False).eval(), torch.randn(1, 4, 5, 5), grouped_conv="matmul")
    assert len(ops_named(module, "linalg.matmul")) == 1
