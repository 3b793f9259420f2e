"""The benchmark end to end, cheaply: files exist and are well-formed, every
variant matches PyTorch, both thread counts are timed. No timing assertions:
the machine is shared and noisy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from torch_grouped_conv.bench import run
from torch_grouped_conv.bench.output import BEGIN_MARK, END_MARK, JSON_NAME, MD_NAME, PNG_NAME, splice

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_timed(data: dict, samples: int) -> None:
    assert "error" not in data, data
    assert len(data["times_ms"]) == samples and 0 < data["min_ms"] <= data["median_ms"]


def test_bench_smoke_prints_and_writes_json_markdown_png(tmp_path: Path) -> None:
    # Through the CLI, as the README shows it: `torch-grouped-conv bench ...`, in a
    # process of its own: IREE fixes its local-task worker count once per process,
    # and this run times 2 threads whatever the test process loaded before.
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Perf\n\n{BEGIN_MARK}\nold tables\n{END_MARK}\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "torch_grouped_conv.cli", "bench", "--smoke", "--out-dir", str(tmp_path),
                           "--update-doc", str(doc)], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / JSON_NAME).read_text())
    assert results["config"]["mode"] == "steady" and results["config"]["threads"] == [1, 2]
    assert results["config"]["iree_drivers"] == {"1": "local-sync", "2": "local-task"}
    assert results["config"]["peers"] == ["ort"]  # --smoke leaves inductor out (minutes of compiling)
    assert results["config"]["compile_threads"] is None  # IREE's default codegen thread count
    assert "--iree-llvmcpu-number-of-threads" not in results["config"]["iree_flags"]
    for threads in ("1", "2"):  # the ceiling, measured per thread count, and the CPU named
        machine = results["machine"][threads]
        assert machine["ceiling_gflops"] > 0 and machine["ceiling"]["threads"] == int(threads)
        assert "torch.mm 512x512x512 f32" in machine["ceiling"]["method"] and machine["cpu_family"]
    (row,) = results["rows"]
    assert row["section"] == "core" and row["flops"] > 0
    assert row["build"]["ort"]["exporter"] in ("dynamo", "torchscript")
    for threads in ("1", "2"):
        timings = row["threads"][threads]
        assert set(timings) == {"pytorch", "ort", "upstream", "auto"}
        for name, data in timings.items():
            _check_timed(data, samples=2)
            if name != "pytorch":
                assert data["matches_pytorch"], (threads, name, data["max_abs_err"])
        assert results["summary"][threads]["core"]["auto/pytorch"]["geomean_median"] > 0
    table = (tmp_path / MD_NAME).read_text()
    assert table.strip() in done.stdout  # printed as well as written
    assert "### Core shapes, 1 thread" in table and "### Core shapes, 2 threads" in table
    assert row["name"] in table and "| ORT ms |" in table.replace("| row | PyTorch ms ", "| ")
    assert "Ceiling (GFLOP/s, torch.mm 512x512x512 f32" in table and results["machine"]["1"]["cpu"] in table
    for threads in ("1", "2"):  # a shape row's auto GFLOP/s as a fraction of that thread count's ceiling
        e = row["efficiency"][threads]
        assert e["ceiling_gflops"] == results["machine"][threads]["ceiling_gflops"] and e["auto_fraction"] > 0
    assert (tmp_path / PNG_NAME).read_bytes()[:8] == PNG_MAGIC
    assert not (tmp_path / run.PARTIAL_NAME).exists()  # only there while a run is under way
    updated = doc.read_text()  # the tables, spliced between the markers, the rest kept
    assert "old tables" not in updated and table.strip() in updated and updated.endswith("\nafter\n")


def test_bench_inductor_column(tmp_path: Path) -> None:
    """torch.compile (inductor, freezing) beside PyTorch: checked against it, its compile time
    in the JSON, its ratios in the summary and the tables."""
    assert run.main(["--smoke", "--peers", "inductor", "--threads", "1", "--ceiling-size", "0",
                     "--out-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / JSON_NAME).read_text())
    (row,) = results["rows"]
    timings = row["threads"]["1"]
    assert set(timings) == {"pytorch", "inductor", "upstream", "auto"}
    _check_timed(timings["inductor"], samples=2)
    assert timings["inductor"]["matches_pytorch"], timings["inductor"]["max_abs_err"]
    build = row["build"]["inductor"]
    assert build["compile_s"]["1"] > 0 and build["build_s"] >= build["compile_s"]["1"]
    core = results["summary"]["1"]["core"]
    assert core["inductor/pytorch"]["geomean_median"] > 0 and core["auto/inductor"]["geomean_median"] > 0
    assert results["machine"]["1"]["ceiling_gflops"] is None and row["efficiency"] == {}  # --ceiling-size 0
    table = (tmp_path / MD_NAME).read_text()
    assert "| Inductor ms |" in table and "Inductor ×PT" in table and "auto ×Inductor" in table


def test_bench_tuning_variants(tmp_path: Path) -> None:
    """`--strategies auto:TUNING`: auto picking for another CPU family, beside the host's."""
    assert run.main(["--smoke", "--peers", "none", "--only", "resnext50_s1_512g32_14", "--threads", "1",
                     "--ceiling-size", "0", "--strategies", "auto:default,auto:intel-avx512",
                     "--out-dir", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / JSON_NAME).read_text())["rows"]
    for name, picked in (("auto:default", "im2col/grouped"), ("auto:intel-avx512", "taps/grouped")):
        assert row["build"][name]["strategies_used"] == {picked: 1}, row["build"][name]
        assert row["threads"]["1"][name]["matches_pytorch"], row["threads"]["1"][name]


def test_bench_dtype_and_dynamic_rows(tmp_path: Path) -> None:
    """bf16 auto vs PyTorch bf16 and auto f32; a dynamic-batch module at batch 1 and 8,
    and a module with dynamic batch and spatial dims at 14x14 and 7x7, vs the
    same strategy compiled static."""
    shape = "shufflenetv2_dw_116_14"
    assert run.main(["--set", "none", "--no-models", "--dtypes", "bf16", "--dtype-shapes", shape,
                     "--dynamic-shapes", shape, "--dynamic-spatial-shapes", shape, "--threads", "1", "--rounds", "1",
                     "--block", "2", "--out-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / JSON_NAME).read_text())
    rows = {r["name"]: r for r in results["rows"]}
    assert set(rows) == {f"{shape}_bf16", f"{shape}_b1", f"{shape}_b8", f"{shape}_s14x14", f"{shape}_s7x7"}
    for spatial in ("s14x14", "s7x7"):
        timings = rows[f"{shape}_{spatial}"]["threads"]["1"]
        assert set(timings) == {"pytorch", "auto", "auto-dynamic"}
        assert all(timings[n]["matches_pytorch"] for n in ("auto", "auto-dynamic"))
    dtype_row = rows[f"{shape}_bf16"]["threads"]["1"]
    assert set(dtype_row) == {"pytorch", "auto", "auto-f32"}
    for name in ("auto", "auto-f32"):
        _check_timed(dtype_row[name], samples=2)
        assert dtype_row[name]["matches_pytorch"], (name, dtype_row[name]["max_abs_err"])
    for batch in ("b1", "b8"):
        timings = rows[f"{shape}_{batch}"]["threads"]["1"]
        assert set(timings) == {"pytorch", "auto", "auto-dynamic"}
        assert all(timings[n]["matches_pytorch"] for n in ("auto", "auto-dynamic"))
    table = (tmp_path / MD_NAME).read_text()
    assert "### f16 / bf16, 1 thread" in table and "### Dynamic batch and spatial dims, 1 thread" in table
    assert "auto-dynamic ×auto" in table and "auto ×auto-f32" in table


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "nope"], "unknown strategies ['nope']"),
    (["--set", "nope"], "argument --set: invalid choice: 'nope'"),
    (["--threads", "0"], "--threads '0'"),
    (["--threads", "2,4"], "at most one count above 1"),
    (["--models", "no_such_net"], "unknown models ['no_such_net']"),
    (["--dtypes", "f8"], "unknown dtypes ['f8']"),
    (["--peers", "ort,tvm"], "unknown peers ['tvm']"),
    (["--strategies", "auto+nope=1"], "unknown strategies ['auto+nope=1']"),
    (["--dtypes", "f16", "--dtype-shapes", "nope"], "--dtype-shapes: no shape 'nope'"),
])
def test_bench_usage_errors_exit_2_and_write_nothing(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    assert run.main(["--smoke", *argv, "--out-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / JSON_NAME).exists()


def test_splice_needs_both_markers() -> None:
    assert splice(f"a {BEGIN_MARK} x {END_MARK} b", "T") == f"a {BEGIN_MARK}\n\nT\n\n{END_MARK} b"
    with pytest.raises(ValueError, match="block to replace"):
        splice("no markers", "T")


def test_update_doc_without_markers_is_a_usage_error(tmp_path: Path, capsys) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# no markers\n")
    assert run.main(["--smoke", "--update-doc", str(doc), "--out-dir", str(tmp_path)]) == 2
    assert "--update-doc" in capsys.readouterr().err and not (tmp_path / JSON_NAME).exists()
    assert doc.read_text() == "# no markers\n"


def test_bench_reports_missing_shapes_file(tmp_path: Path, capsys) -> None:
    assert run.main(["--smoke", "--shapes", str(tmp_path / "missing.json"), "--out-dir", str(tmp_path)]) == 2
    assert "cannot read shapes" in capsys.readouterr().err
