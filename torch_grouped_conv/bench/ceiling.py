"""The machine's practical f32 ceiling, measured: a large SGEMM through
PyTorch's BLAS (`torch.mm`), steady state, at a given thread count.

Method: `size`³ f32 `torch.mm` into a preallocated output; `warmup` untimed
calls, then `blocks` blocks of `calls` back-to-back calls; a sample is one
block's time / `calls`. The ceiling is 2·size³ / the median sample (GFLOP/s):
what the best-tuned GEMM on this machine reaches at this thread count now,
neighbours' load included. Every figure of the run that is a fraction of the
ceiling (efficiency.py) divides by this number at the same thread count.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

SIZE = 2048
BLOCKS = 5
CALLS = 3
WARMUP = 2


@dataclass(frozen=True)
class Ceiling:
    """One measurement: GFLOP/s of every block and their median."""

    threads: int
    size: int
    calls: int
    samples_gflops: tuple[float, ...]

    @property
    def gflops(self) -> float:
        return statistics.median(self.samples_gflops)

    def to_dict(self) -> dict[str, object]:
        return {"ceiling_gflops": round(self.gflops, 1), "threads": self.threads,
                "method": f"torch.mm {self.size}x{self.size}x{self.size} f32 (PyTorch's BLAS), "
                          f"median of {len(self.samples_gflops)} blocks of {self.calls} back-to-back calls",
                "samples_gflops": [round(s, 1) for s in self.samples_gflops]}


def gemm_flops(size: int) -> int:
    """2·M·N·K multiply-add FLOPs of one size³ GEMM."""
    return 2 * size ** 3


def measure(threads: int, size: int = SIZE, blocks: int = BLOCKS, calls: int = CALLS,
            warmup: int = WARMUP) -> Ceiling:
    """The ceiling at `threads` threads (sets torch.set_num_threads; the caller
    sets it again for what follows)."""
    if size < 1 or blocks < 1 or calls < 1:
        raise ValueError(f"size, blocks and calls must be positive (got {size}, {blocks}, {calls})")
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    out = torch.empty(size, size)
    for _ in range(warmup):
        torch.mm(a, b, out=out)
    samples = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        seconds = (time.perf_counter() - start) / calls
        samples.append(gemm_flops(size) / seconds / 1e9)
    return Ceiling(threads, size, calls, tuple(samples))
