"""The benchmark harness end to end on one shape (--smoke): files exist and are
well-formed. No timing assertions: the machine is shared and noisy."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import run
from benchmarks.output import JSON_NAME, MD_NAME, PNG_NAME
from torch_grouped_conv.cli import main as cli_main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_smoke_writes_json_markdown_png(tmp_path: Path) -> None:
    # Through the CLI, as the README shows it: `torch-grouped-conv bench ...`.
    assert cli_main(["bench", "--smoke", "--out-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / JSON_NAME).read_text())
    assert results["config"]["repeats"] == 2
    assert results["machine"]["peak_gflops"] > 0
    (row,) = results["shapes"]
    assert set(row["variants"]) == {"pytorch", "upstream", *run.PLUGIN_STRATEGIES}
    for name, data in row["variants"].items():
        assert "error" not in data, (name, data)
        assert len(data["times_ms"]) == 2 and data["median_ms"] > 0
        if name != "pytorch":
            assert data["matches_pytorch"], (name, data["max_abs_err"])
    assert results["summary"]["auto"]["geomean_ratio_to_pytorch"] > 0
    table = (tmp_path / MD_NAME).read_text()
    assert row["name"] in table and "| shape |" in table and "geomean" in table.lower()
    assert (tmp_path / PNG_NAME).read_bytes()[:8] == PNG_MAGIC


def test_bench_rejects_unknown_strategy(tmp_path: Path) -> None:
    assert run.main(["--smoke", "--strategies", "nope", "--out-dir", str(tmp_path)]) == 2
    assert not (tmp_path / JSON_NAME).exists()


def test_bench_reports_missing_shapes_file(tmp_path: Path) -> None:
    assert run.main(["--smoke", "--shapes", str(tmp_path / "missing.json"), "--out-dir", str(tmp_path)]) == 2
