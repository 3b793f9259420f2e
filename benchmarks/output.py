"""Write the benchmark results: JSON (everything), Markdown tables, PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

from .measure import PYTORCH, UPSTREAM, geomean

JSON_NAME, MD_NAME, PNG_NAME = "bench_results.json", "bench_results.md", "bench_results.png"


def ratio(row: dict, name: str, base: str, stat: str = "median_ms") -> float | None:
    """Time of `name` over time of `base` by `stat`: "median_ms" (headline) or
    "min_ms" (best of the repeats: robust to preemption on a shared machine)."""
    a, b = row["variants"].get(name, {}), row["variants"].get(base, {})
    if "times_ms" not in a or "times_ms" not in b:
        return None
    return _stat(a, stat) / _stat(b, stat)


def _stat(data: dict, stat: str) -> float:
    return min(data["times_ms"]) if stat == "min_ms" else data["median_ms"]


def summarize(rows: list[dict], variants: list[str], peak_gflops: float) -> dict:
    """Geomeans of time ratios per variant (to PyTorch, and upstream's over it)."""
    summary: dict[str, dict] = {}
    for name in variants:
        if name == PYTORCH:
            continue
        to_pt = [r for row in rows if (r := ratio(row, name, PYTORCH)) is not None]
        vs_up = [r for row in rows if (r := ratio(row, UPSTREAM, name)) is not None]
        worst = max(rows, key=lambda row: ratio(row, name, PYTORCH) or 0.0, default=None)
        summary[name] = {
            "geomean_ratio_to_pytorch": geomean(to_pt),
            "geomean_speedup_over_upstream": geomean(vs_up),
            "max_ratio_to_pytorch": max(to_pt, default=None),
            "worst_shape": worst["name"] if worst else None,
            "shapes_over_1_5": [row["name"] for row in rows if (ratio(row, name, PYTORCH) or 0) > 1.5],
            "min_geomean_ratio_to_pytorch": geomean(
                [r for row in rows if (r := ratio(row, name, PYTORCH, "min_ms")) is not None]),
            "min_geomean_speedup_over_upstream": geomean(
                [r for row in rows if (r := ratio(row, UPSTREAM, name, "min_ms")) is not None]),
            "min_shapes_over_1_5": [row["name"] for row in rows if (ratio(row, name, PYTORCH, "min_ms") or 0) > 1.5],
        }
    best = max((v.get("gflops", 0.0), row["name"], n) for row in rows for n, v in row["variants"].items())
    summary["best_gflops"] = {"gflops": best[0], "shape": best[1], "variant": best[2],
                              "percent_of_peak": 100 * best[0] / peak_gflops}
    return summary


def rerender(out_dir: Path) -> None:
    """Recompute the summary of an existing JSON and rewrite all three files."""
    results = json.loads((out_dir / JSON_NAME).read_text())
    results["summary"] = summarize(results["shapes"], results["config"]["variants"],
                                   results["machine"]["peak_gflops"])
    write_json(out_dir, results), write_markdown(out_dir, results), write_plot(out_dir, results)


def write_json(out_dir: Path, results: dict) -> Path:
    path = out_dir / JSON_NAME
    path.write_text(json.dumps(results, indent=1, sort_keys=False))
    return path


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def markdown(results: dict) -> str:
    variants: list[str] = results["config"]["variants"]
    peak = results["machine"]["peak_gflops"]
    lines = [
        f"Machine: {results['machine']['cpu']}, {results['machine']['threads']} threads, "
        f"peak {peak} GFLOP/s ({results['machine']['peak_assumption']}).",
        f"Command: `{results['config']['command']}`",
        f"Median of {results['config']['repeats']} interleaved repeats after {results['config']['warmup']} warm-up calls; "
        f"IREE driver {results['config']['iree_driver']}, flags: {results['config']['iree_flags']}.",
        "",
        "Times in ms; ×PT = time / PyTorch eager time (lower is better); ×up = upstream time / this time (speedup).",
        "",
    ]
    others = [v for v in variants if v not in (PYTORCH,)]
    header = ["shape", "PyTorch ms"] + [f"{v} ms (×PT)" for v in others] + \
             ["auto ×up", "auto GFLOP/s", "auto % peak", "best", "best GFLOP/s (% peak)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in results["shapes"]:
        cells = [row["name"], _fmt(row["variants"].get(PYTORCH, {}).get("median_ms"), ".3f")]
        for v in others:
            data = row["variants"].get(v, {})
            cells.append("error" if "error" in data else
                         f"{_fmt(data.get('median_ms'), '.3f')} ({_fmt(ratio(row, v, PYTORCH))})")
        auto = row["variants"].get("auto", {})
        speed = ratio(row, UPSTREAM, "auto")
        best_name = min((n for n in row["variants"] if "median_ms" in row["variants"][n]),
                        key=lambda n: row["variants"][n]["median_ms"])
        best = row["variants"][best_name]
        cells += [_fmt(speed), _fmt(auto.get("gflops"), ".1f"), _fmt(auto.get("percent_of_peak"), ".1f"),
                  best_name, f"{best['gflops']:.1f} ({best['percent_of_peak']:.1f}%)"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Geomeans over these shapes (by median; and by best-of-repeats, which drops preemption by "
              "other processes on this shared machine):", "",
              "| variant | geomean ×PT (median) | geomean ×up (median) | worst ×PT (shape) | # shapes > 1.5×PT "
              "| geomean ×PT (min) | geomean ×up (min) | shapes > 1.5×PT (min) |",
              "|---|---|---|---|---|---|---|---|"]
    for v, s in results["summary"].items():
        if v == "best_gflops":
            continue
        lines.append(f"| {v} | {_fmt(s['geomean_ratio_to_pytorch'])} | {_fmt(s['geomean_speedup_over_upstream'])} | "
                     f"{_fmt(s['max_ratio_to_pytorch'])} ({s['worst_shape']}) | {len(s['shapes_over_1_5'])} | "
                     f"{_fmt(s.get('min_geomean_ratio_to_pytorch'))} | {_fmt(s.get('min_geomean_speedup_over_upstream'))} | "
                     f"{', '.join(s.get('min_shapes_over_1_5', [])) or 'none'} |")
    best = results["summary"]["best_gflops"]
    lines += ["", f"Best throughput: {best['gflops']:.1f} GFLOP/s = {best['percent_of_peak']:.1f}% of peak "
              f"({best['variant']} on {best['shape']})."]
    if results.get("models"):
        lines += ["", "Whole models (1×3×224×224, eval, weights=None):", "",
                  "| model | PyTorch ms | upstream ms (×PT) | auto ms (×PT) | auto speedup over upstream | auto ×PT (min) |",
                  "|---|---|---|---|---|---|"]
        for row in results["models"]:
            pt = row["variants"].get(PYTORCH, {}).get("median_ms")
            up = row["variants"].get(UPSTREAM, {})
            au = row["variants"].get("auto", {})
            lines.append(f"| {row['name']} | {_fmt(pt, '.2f')} | {_fmt(up.get('median_ms'), '.2f')} "
                         f"({_fmt(ratio(row, UPSTREAM, PYTORCH))}) | {_fmt(au.get('median_ms'), '.2f')} "
                         f"({_fmt(ratio(row, 'auto', PYTORCH))}) | {_fmt(ratio(row, UPSTREAM, 'auto'))} | "
                         f"{_fmt(ratio(row, 'auto', PYTORCH, 'min_ms'))} |")
    return "\n".join(lines) + "\n"


def write_markdown(out_dir: Path, results: dict) -> Path:
    path = out_dir / MD_NAME
    path.write_text(markdown(results))
    return path


def write_plot(out_dir: Path, results: dict) -> Path:
    """Grouped bars: time / PyTorch time per shape and variant, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["shapes"]
    variants = [v for v in results["config"]["variants"] if v != PYTORCH]
    fig, ax = plt.subplots(figsize=(max(8, 0.7 * len(rows) + 3), 5))
    width = 0.8 / max(1, len(variants))
    for i, v in enumerate(variants):
        ys = [ratio(row, v, PYTORCH) or float("nan") for row in rows]
        ax.bar([x + i * width for x in range(len(rows))], ys, width, label=v)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("time / PyTorch eager time (log; lower is better)")
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))])
    ax.set_xticklabels([row["name"] for row in rows], rotation=60, ha="right", fontsize=7)
    ax.set_title(f"Grouped convolutions on IREE llvm-cpu vs PyTorch ({results['machine']['threads']} threads)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / PNG_NAME
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
