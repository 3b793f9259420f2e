"""Time the two remedies for large im2col matrices side by side, in one
process, steady state, at 1 and 2 threads: `auto` with neither (the im2col
matrix packed by IREE's data tiling, transients allocated by IREE per call),
with the tiled im2col only (`im2col.blocked_gemm`), with external transients
only (runners/transients.py), with both (what `auto` and the `iree` runner do
now), and PyTorch eager.

    python -m tests.campaigns.large_im2col_bench [--threads 1,2] [--rounds 5] [--block 5]

Per variant and thread count: one untimed call, then `--rounds` rounds of
`--block` back-to-back calls, the variants rotating per round; prints the
median and min ms per call and each variant's median / PyTorch's, and checks
every output against PyTorch's (max |diff| / max |expected| <= 1e-4).
Threads: 1 = IREE local-sync and torch.set_num_threads(1); 2 = local-task
with 2 workers and 2 torch threads. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import torch_grouped_conv as tgc
from torch_grouped_conv.rewrite import tuning
from torch_grouped_conv.runners.iree import Entry, compile_for, program_config
from torch_grouped_conv.runners.transients import upload


@dataclass(frozen=True)
class Shape:
    name: str
    module: Callable[[], torch.nn.Module]
    input: tuple[int, ...]


SHAPES = [
    Shape("wav2vec2_posconv_1d", lambda: torch.nn.Conv1d(768, 768, 128, padding=64, groups=16), (1, 768, 250)),
    Shape("grouped3d_g4_64_8x28", lambda: torch.nn.Conv3d(64, 64, 3, padding=1, groups=4), (1, 64, 8, 28, 28)),
    Shape("r3d18_layer1_conv", lambda: torch.nn.Conv3d(64, 64, 3, padding=1, bias=False), (1, 64, 16, 56, 56)),
]
VARIANTS = {"neither": (False, False), "tiled im2col": (True, False), "transients": (False, True),
            "both (auto)": (True, True)}


def compile_variant(model: torch.nn.Module, x: torch.Tensor, tiled: bool, transients: bool, threads: int) -> Entry:
    current = tuning.active()
    with tuning.tuned_for(current if tiled else dataclasses.replace(current, blocked_im2col_bytes=1 << 62)):
        module = tgc.compile(model, x, grouped_conv="auto")
    done = compile_for(module, None, threads=threads, transients=transients)
    return Entry(done.vmfb, program_config(threads))


def measure(calls: dict[str, Callable[[], object]], rounds: int, block: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for call in calls.values():
        call()
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            calls[name]()
            start = time.perf_counter()
            for _ in range(block):
                calls[name]()
            times[name].append((time.perf_counter() - start) / block * 1e3)
    return times


def run_shape(shape: Shape, threads: int, rounds: int, block: int) -> list[str]:
    torch.manual_seed(0)
    model, x = shape.module().eval(), torch.randn(shape.input)
    with torch.no_grad():
        expected = model(x).numpy()
    calls: dict[str, Callable[[], object]] = {}

    def eager() -> object:
        with torch.inference_mode():
            return model(x)

    calls["PyTorch"] = eager
    device = program_config(threads).device
    for name, (tiled, transients) in VARIANTS.items():
        entry = compile_variant(model, x, tiled, transients, threads)
        args = [upload(device, x.numpy())]
        out = np.asarray(entry(*args)[0].to_host())
        error = float(np.abs(out - expected).max() / np.abs(expected).max())
        assert error <= 1e-4, f"{shape.name} {name}: relative error {error:.1e}"
        calls[name] = (lambda e=entry, a=args: e(*a)[0].to_host())
    times = measure(calls, rounds, block)
    base = statistics.median(times["PyTorch"])
    rows = []
    for name, samples in times.items():
        med = statistics.median(samples)
        rows.append(f"| {shape.name} | {threads} | {name} | {med:.2f} | {min(samples):.2f} | {med / base:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=5)
    args = parser.parse_args()
    print("| shape | threads | variant | median ms | min ms | ×PyTorch |")
    print("|---|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for shape in SHAPES:
            for row in run_shape(shape, threads, args.rounds, args.block):
                print(row, flush=True)


if __name__ == "__main__":
    main()
