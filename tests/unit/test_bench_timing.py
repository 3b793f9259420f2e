"""The two timing schedules (pure functions) and their execution."""

from __future__ import annotations

from collections import Counter

import pytest

from torch_grouped_conv.bench.timing import (
    geomean,
    interleaved_schedule,
    rotation,
    run_schedule,
    samples_cap,
    schedule,
    stats_ms,
    steady_schedule,
)


def test_rotation_moves_every_variant_through_every_slot() -> None:
    orders = [rotation(3, r) for r in range(3)]
    assert orders == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]


def test_steady_runs_blocks_of_one_untimed_then_k_timed_calls() -> None:
    plan = steady_schedule(count=3, rounds=4, block=5)
    assert len(plan) == 4 * 3 * (1 + 5)
    blocks = [plan[i:i + 6] for i in range(0, len(plan), 6)]
    for b in blocks:  # one variant per block: untimed first, then 5 timed back to back
        assert len({v for v, _ in b}) == 1 and [t for _, t in b] == [False] + [True] * 5
    assert [b[0][0] for b in blocks] == [v for r in range(4) for v in rotation(3, r)]
    assert Counter(v for v, timed in plan if timed) == {0: 20, 1: 20, 2: 20}


def test_interleaved_warms_up_then_calls_each_variant_once_per_round() -> None:
    plan = interleaved_schedule(count=2, rounds=2, block=3, warmup=1)
    assert plan[:2] == [(0, False), (1, False)]
    timed = [v for v, t in plan[2:] if t]
    assert timed == [0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0] and all(t for _, t in plan[2:])


def test_schedule_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown timing mode 'nope'"):
        schedule("nope", 2, 1, 1, 1)


def test_run_schedule_times_only_the_timed_calls() -> None:
    calls: list[int] = []
    times = run_schedule([lambda: calls.append(0), lambda: calls.append(1)], steady_schedule(2, 2, 3))
    assert Counter(calls) == {0: 8, 1: 8}  # 2 rounds x (1 untimed + 3 timed)
    assert [len(t) for t in times] == [6, 6] and all(s >= 0 for t in times for s in t)


def test_stats_and_geomean() -> None:
    assert stats_ms([0.003, 0.001, 0.002]) == pytest.approx({"median_ms": 2.0, "min_ms": 1.0})
    assert geomean([1.0, 4.0, None]) == pytest.approx(2.0) and geomean([None]) is None


def test_a_slow_variant_gets_a_capped_number_of_calls() -> None:
    assert samples_cap(0.01, budget_s=60, wanted=25) is None
    assert samples_cap(10.0, budget_s=60, wanted=25) == 6 and samples_cap(100.0, budget_s=60, wanted=25) == 2
    plan = steady_schedule(count=2, rounds=3, block=2, caps=[None, 3])
    assert Counter(v for v, timed in plan if timed) == {0: 6, 1: 3}
    assert [t for v, t in plan if v == 1] == [True, True, True]  # no untimed calls for a capped variant
    plan = interleaved_schedule(count=2, rounds=2, block=2, warmup=1, caps=[None, 2])
    assert Counter(v for v, timed in plan if timed) == {0: 4, 1: 2}
