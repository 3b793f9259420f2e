"""The report's tables and summary from a results dict (formatting and arithmetic only)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.bench import output


def _timed(median: float, low: float, **extra: object) -> dict:
    return {"median_ms": median, "min_ms": low, "times_ms": [low, median], **extra}


def _results() -> dict:
    rows = [
        {"name": "mobilenet_v2", "section": "networks", "flops": None,
         "build": {"pytorch": {}, "ort": {}, "upstream": {"error": "CompileError: boom"},
                   "auto": {"strategies_used": {"taps/depthwise": 17}}},
         "threads": {"1": {"pytorch": _timed(10.0, 8.0), "ort": _timed(5.0, 4.0, matches_pytorch=True),
                           "auto": _timed(20.0, 16.0, matches_pytorch=False)}},
         "breakdown": {"1": {"conv_ms": 12.0, "other_ms": 6.0, "rest_ms": 2.0}}},
        {"name": "resnet50", "section": "networks", "flops": None, "build": {}, "breakdown": {},
         "threads": {"1": {"pytorch": _timed(10.0, 10.0), "ort": _timed(10.0, 10.0, matches_pytorch=True),
                           "auto": _timed(5.0, 5.0, matches_pytorch=True)}}},
    ]
    results = {"config": {"threads": [1], "mode": "steady", "rounds": 5, "block": 5, "warmup": 3,
                          "iree_drivers": {"1": "local-sync"}, "iree_flags": "-x", "command": "c", "wall_s": 3.0},
               "machine": {"1": {"cpu": "cpu", "logical_cpus": 2, "simd": "avx2+fma", "ghz": 2.0}}, "rows": rows}
    results["summary"] = output.summarize(results)
    return results


def test_summary_geomeans_by_median_and_min() -> None:
    nets = _results()["summary"]["1"]["networks"]
    assert nets["auto/pytorch"]["geomean_median"] == pytest.approx((2.0 * 0.5) ** 0.5)
    assert nets["auto/pytorch"]["geomean_min"] == pytest.approx((2.0 * 0.5) ** 0.5)
    assert nets["auto/ort"]["geomean_median"] == pytest.approx((4.0 * 0.5) ** 0.5)
    assert nets["auto/pytorch"]["worst_row"] == "mobilenet_v2" and nets["auto/pytorch"]["rows_over_1_5"] == ["mobilenet_v2"]
    assert nets["auto/pytorch"]["rows_over_target"] == ["mobilenet_v2"]  # every net ≤ PyTorch is the target
    assert "upstream/pytorch" not in nets  # never timed


def test_tables_mark_errors_mismatches_and_the_breakdown() -> None:
    text = output.markdown(_results())
    row = next(line for line in text.splitlines() if line.startswith("| mobilenet_v2 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["10.00 / 8.00", "5.00 / 4.00", "error", "20.00 / 16.00 (WRONG)"]
    assert "12.00 / 6.00 / 2.00" in cells and "auto: taps/depthwise 17" in cells
    assert "| geomean (8 image nets) |" in text and "### Whole networks, 1 thread" in text
