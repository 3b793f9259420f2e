"""How the variants of one workload are timed: steady-state blocks (default) or
the old interleaved rotation (`--mode interleaved`).

Steady state (what a model in production sees): `rounds` rounds; in each
round every variant runs as one block -- one untimed call, then `block`
timed calls back to back -- and the order of the variants rotates by one per
round, so drift and neighbours' load hit every variant alike. PyTorch's and
ONNX Runtime's worker pools idle or spin down between calls; interleaving
single calls made the call after a slow variant a cold one, so the old mode
over-stated PyTorch's time (docs/performance.md, "Method").

Interleaved (the previous harness): `warmup` calls of each variant, then
`rounds * block` rounds each calling every variant once, rotated.

Both return seconds per call, `rounds * block` samples per variant, except
for a variant given a cap (a very slow one: `samples_cap`): it gets at most
`cap` timed calls, spread over the first rounds, with no untimed call before
its blocks (the caller's first, checked call has warmed it, and a call of
seconds is not made cold by an idle thread pool; repeating it would double
the cost).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

MODES = ("steady", "interleaved")

Call = Callable[[], object]


def rotation(count: int, round_index: int) -> list[int]:
    """Variant indices in the order of round `round_index`: rotated by one per round."""
    return [(i + round_index) % count for i in range(count)]


def samples_cap(first_call_s: float, budget_s: float, wanted: int, least: int = 2) -> int | None:
    """How many timed calls a variant whose first call took `first_call_s` may
    have within `budget_s`: None (no cap) when `wanted` fit, else at least `least`."""
    if first_call_s * wanted <= budget_s:
        return None
    return max(least, int(budget_s // max(first_call_s, 1e-9)))


def _caps(count: int, caps: Sequence[int | None] | None) -> list[int | None]:
    """Each variant's cap on its timed calls (None: no cap)."""
    return [None if caps is None else caps[v] for v in range(count)]


def steady_schedule(count: int, rounds: int, block: int,
                    caps: Sequence[int | None] | None = None) -> list[tuple[int, bool]]:
    """The sequence of (variant index, timed) calls of a steady-state run."""
    limits = _caps(count, caps)
    left = [rounds * block if cap is None else cap for cap in limits]
    plan: list[tuple[int, bool]] = []
    for r in range(rounds):
        for v in rotation(count, r):
            calls = min(block, left[v])
            if calls == 0:
                continue
            if limits[v] is None:
                plan.append((v, False))
            plan += [(v, True)] * calls
            left[v] -= calls
    return plan


def interleaved_schedule(count: int, rounds: int, block: int, warmup: int,
                         caps: Sequence[int | None] | None = None) -> list[tuple[int, bool]]:
    """The sequence of (variant index, timed) calls of an interleaved run."""
    limits = _caps(count, caps)
    plan: list[tuple[int, bool]] = [(v, False) for v in range(count) for _ in range(warmup)]
    for r in range(rounds * block):
        for v in rotation(count, r):
            cap = limits[v]
            if cap is None or r < cap:
                plan.append((v, True))
    return plan


def schedule(mode: str, count: int, rounds: int, block: int, warmup: int,
             caps: Sequence[int | None] | None = None) -> list[tuple[int, bool]]:
    if mode == "steady":
        return steady_schedule(count, rounds, block, caps)
    if mode == "interleaved":
        return interleaved_schedule(count, rounds, block, warmup, caps)
    raise ValueError(f"unknown timing mode {mode!r}; choose one of {', '.join(MODES)}")


def run_schedule(calls: Sequence[Call], plan: list[tuple[int, bool]],
                 tick: Callable[[], None] | None = None) -> list[list[float]]:
    """Execute `plan` over `calls`; seconds of every timed call, per variant.
    `tick` runs after each timed call (a progress bar)."""
    times: list[list[float]] = [[] for _ in calls]
    for index, timed in plan:
        start = time.perf_counter()
        calls[index]()
        elapsed = time.perf_counter() - start
        if timed:
            times[index].append(elapsed)
            if tick is not None:
                tick()
    return times


def stats_ms(samples: list[float]) -> dict[str, float]:
    """Median and min of per-call seconds, in ms."""
    return {"median_ms": statistics.median(samples) * 1e3, "min_ms": min(samples) * 1e3}


def geomean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and v > 0]
    return float(np.exp(np.mean(np.log(kept)))) if kept else None
