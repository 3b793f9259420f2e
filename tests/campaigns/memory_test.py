"""Long-run memory test: the process's resident memory (RSS) over K calls of
one loaded module, and over C compile + load + call cycles, per runner.

    python -m tests.campaigns.memory_test --calls 10000 --cycles 100 [--backends refbackend,iree]

prints one line per runner and measure: "<backend>: <n> calls, RSS +<MB> MB
(<KB> KB per call)" and "<backend>: <n> compile/load cycles, RSS +<MB> MB
(<KB> KB per cycle)", growth measured after a warm-up (the first calls and
cycles fill caches: allocator pools, the JIT's and IREE's own); exits 1 if
any growth reaches --limit-mb (default 20). `make test` runs it small
(tests/e2e/test_runner_memory.py).
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import dataclass

import torch

import torch_grouped_conv as tgc

# One result is 32x30x30 f32 = 115 KB: a result never freed shows at once.
SHAPE = (1, 16, 32, 32)


@dataclass(frozen=True)
class Growth:
    backend: str
    what: str  # "calls" or "compile/load cycles"
    count: int
    growth_mb: float

    def line(self) -> str:
        per = self.growth_mb * 1024 / max(self.count, 1)
        return f"{self.backend}: {self.count} {self.what}, RSS {self.growth_mb:+.1f} MB ({per:+.1f} KB per {self.unit})"

    @property
    def unit(self) -> str:
        return "call" if self.what == "calls" else "cycle"


def rss_mb() -> float:
    """This process's resident set size (Linux /proc), in MB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Conv2d(16, 32, 3, groups=4).eval()


def call_growth(backend: str, calls: int, warmup: int = 200) -> Growth:
    """RSS growth over `calls` calls of one loaded module (after `warmup` calls)."""
    x = torch.randn(*SHAPE)
    program = tgc.load(tgc.compile(model(), x), backend=backend)
    for _ in range(warmup):
        program(x)
    gc.collect()
    before = rss_mb()
    for _ in range(calls):
        program(x)
    gc.collect()
    return Growth(backend, "calls", calls, rss_mb() - before)


def cycle_growth(backend: str, cycles: int, warmup: int = 3) -> Growth:
    """RSS growth over `cycles` compile + load + one call cycles (after `warmup` cycles)."""
    m, x = model(), torch.randn(*SHAPE)

    def cycle() -> None:
        program = tgc.load(tgc.compile(m, x), backend=backend)
        program(x)

    for _ in range(warmup):
        cycle()
    gc.collect()
    before = rss_mb()
    for _ in range(cycles):
        cycle()
    gc.collect()
    return Growth(backend, "compile/load cycles", cycles, rss_mb() - before)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--backends", default=",".join(tgc.BACKENDS))
    parser.add_argument("--limit-mb", type=float, default=20.0, help="fail at this RSS growth (default 20)")
    args = parser.parse_args(argv)
    failed = False
    for backend in args.backends.split(","):
        for growth in (call_growth(backend, args.calls), cycle_growth(backend, args.cycles)):
            print(growth.line(), flush=True)
            failed |= growth.growth_mb >= args.limit_mb
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
