"""`python -m torch_grouped_conv.bench.torch_compile`: steady-state latency of whole nets
under PyTorch eager, `torch.compile` (inductor, its default backend) and
`torch.compile(backend="torch_grouped_conv")` (auto strategy, IREE), at the
same thread count. Writes JSON and prints a Markdown table (docs/performance.md).

Method: each variant is compiled and called once untimed; then R rounds, each
timing a block of B back-to-back calls per variant (order rotated by round);
a sample is block time / B. Median and min of the R samples are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from torch_grouped_conv.bench import machine
from torch_grouped_conv.models import build_model
from torch_grouped_conv.runners.iree_flags import set_runtime_threads

MODELS = ("mobilenet_v2", "resnext50_32x4d")


def variants(model: torch.nn.Module) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    import torch_grouped_conv as tgc

    tgc.register_dynamo_backend()
    return {
        "eager": model,
        "inductor": torch.compile(model),
        "torch_grouped_conv": torch.compile(model, backend="torch_grouped_conv"),
    }


def measure(name: str, shape: tuple[int, ...], rounds: int, block: int) -> dict[str, dict[str, float]]:
    model = build_model(f"torchvision:{name}")
    x = torch.randn(shape)
    calls = variants(model)
    samples: dict[str, list[float]] = {v: [] for v in calls}
    with torch.no_grad():
        expected = model(x)
        for v, f in calls.items():  # compile + first call, untimed
            start = time.perf_counter()
            y = f(x)
            print(f"{name} {v}: first call {time.perf_counter() - start:.1f} s, "
                  f"max abs diff vs eager {float((y - expected).abs().max()):.2e}", file=sys.stderr)
        order = list(calls)
        for r in range(rounds):
            for i in range(len(order)):
                v = order[(i + r) % len(order)]
                start = time.perf_counter()
                for _ in range(block):
                    calls[v](x)
                samples[v].append((time.perf_counter() - start) / block)
    return {v: {"median_ms": statistics.median(s) * 1e3, "min_ms": min(s) * 1e3} for v, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--block", type=int, default=5)
    p.add_argument("--shape", default="1,3,224,224")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=Path("bench-results/bench_torch_compile.json"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    set_runtime_threads(args.threads)
    shape = tuple(int(d) for d in args.shape.split(","))
    results = {name: measure(name, shape, args.rounds, args.block) for name in args.models.split(",")}
    record = {"threads": args.threads, "rounds": args.rounds, "block": args.block, "input_shape": list(shape),
              "machine": machine.describe(args.threads), "results": results}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"| model ({args.shape}, {args.threads} threads) | eager | inductor | torch_grouped_conv (auto, IREE) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        cells = [f"{r[v]['median_ms']:.1f} (min {r[v]['min_ms']:.1f})" for v in ("eager", "inductor", "torch_grouped_conv")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
