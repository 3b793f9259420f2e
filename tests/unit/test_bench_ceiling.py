"""The ceiling measurement's shape (a small GEMM; no timed assertions) and the CPU family."""

from __future__ import annotations

import pytest
import torch

from torch_grouped_conv.bench import ceiling, machine


def test_ceiling_has_one_sample_per_block_and_their_median() -> None:
    before = torch.get_num_threads()
    try:
        c = ceiling.measure(1, size=64, blocks=3, calls=2, warmup=1)
    finally:
        torch.set_num_threads(before)
    assert c.threads == 1 and c.size == 64 and len(c.samples_gflops) == 3
    assert all(s > 0 for s in c.samples_gflops) and c.gflops == sorted(c.samples_gflops)[1]
    d = c.to_dict()
    assert d["ceiling_gflops"] == round(c.gflops, 1) and len(d["samples_gflops"]) == 3
    assert "torch.mm 64x64x64 f32" in d["method"] and "median of 3 blocks of 2" in d["method"]


def test_gemm_flops_and_bad_sizes() -> None:
    assert ceiling.gemm_flops(2) == 16
    with pytest.raises(ValueError, match="must be positive"):
        ceiling.measure(1, size=0)


@pytest.mark.parametrize("model, family", [
    ("AMD EPYC", "AMD EPYC"), ("AMD EPYC 9654 96-Core Processor", "AMD EPYC"),
    ("Intel(R) Xeon(R) Platinum 8480+", "Intel Xeon"), ("QEMU Virtual CPU", "other"),
])
def test_cpu_family(model: str, family: str) -> None:
    assert machine.family(model) == family


def test_describe_names_the_cpu_and_its_family() -> None:
    d = machine.describe(1)
    assert d["cpu_family"] == machine.family(str(d["cpu"]))
