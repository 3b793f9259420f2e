"""Write the benchmark results: JSON (every sample), Markdown (the tables, in
the form docs/performance.md includes them), PNG (bars per row).

Every ratio is time / time, by median (headline) and by min (best call: robust
to preemption on a shared machine); ×PT = variant / PyTorch eager, lower is
better.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from torch_grouped_conv.bench.timing import geomean
from torch_grouped_conv.bench.variants import AUTO, INDUCTOR, ORT, PYTORCH, UPSTREAM
from torch_grouped_conv.bench.workloads import AUTO_DYNAMIC, AUTO_F32, IMAGE_NETS, SECTION_TITLES, SECTIONS

JSON_NAME, MD_NAME, PNG_NAME = "bench_results.json", "bench_results.md", "bench_results.png"
ORDER = (PYTORCH, ORT, INDUCTOR, UPSTREAM, AUTO)
# The issues' per-row ceiling for auto ×PT (issue 8: every net ≤ PyTorch, no core shape > 1.5×;
# issue 9: no extra shape > 2.0×, f16/bf16 and r3d_18 / the wav2vec2 block ≤ PyTorch).
ROW_TARGET = {"networks": 1.0, "media": 1.0, "core": 1.5, "extra": 2.0, "dtype": 1.0, "dynamic": 1.2}
LABELS = {PYTORCH: "PyTorch", ORT: "ORT", INDUCTOR: "Inductor", UPSTREAM: "upstream", AUTO: "auto"}


def ratio(timings: dict[str, Any], name: str, base: str, stat: str = "median_ms") -> float | None:
    a, b = timings.get(name, {}), timings.get(base, {})
    if stat not in a or stat not in b or not b[stat]:
        return None
    return a[stat] / b[stat]


def variants_of(rows: list[dict[str, Any]]) -> list[str]:
    """Variant names of these rows (timed, or failed to build), PyTorch/ORT/upstream/auto first."""
    seen: list[str] = []
    for row in rows:
        for timings in [*row["threads"].values(), {n: d for n, d in row["build"].items() if "error" in d}]:
            seen += [n for n in timings if n not in seen]
    return sorted(seen, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), seen.index(n)))


def section_rows(results: dict[str, Any], section: str) -> list[dict[str, Any]]:
    return [r for r in results["rows"] if r["section"] == section]


def baselines(section: str) -> list[tuple[str, str]]:
    """(variant, base) pairs a section's geomeans are computed for, beyond ×PT."""
    if section == "dtype":
        return [(AUTO, AUTO_F32)]
    if section == "dynamic":
        return [(AUTO_DYNAMIC, AUTO)]
    return [(AUTO, ORT), (AUTO, INDUCTOR), (AUTO, UPSTREAM)]


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Per thread count and section: geomean ratios (median and min), worst ×PT."""
    summary: dict[str, Any] = {}
    for t in map(str, results["config"]["threads"]):
        per: dict[str, Any] = {}
        for section in SECTIONS:
            rows = section_rows(results, section)
            if section == "networks":
                rows = [r for r in rows if r["name"] in IMAGE_NETS] or rows
            if not rows:
                continue
            entry: dict[str, Any] = {"rows": [r["name"] for r in rows]}
            pairs = [(v, PYTORCH) for v in variants_of(rows) if v != PYTORCH] + baselines(section)
            for name, base in pairs:
                per_row = {r["name"]: ratio(r["threads"].get(t, {}), name, base) for r in rows}
                kept = {k: v for k, v in per_row.items() if v is not None}
                if not kept:
                    continue
                worst = max(kept, key=kept.__getitem__)
                entry[f"{name}/{base}"] = {
                    "geomean_median": geomean(list(kept.values())),
                    "geomean_min": geomean([ratio(r["threads"].get(t, {}), name, base, "min_ms") for r in rows]),
                    "worst": kept[worst], "worst_row": worst,
                    "rows_over_1_5": sorted(k for k, v in kept.items() if v > 1.5),
                    "rows_over_target": sorted(k for k, v in kept.items() if v > ROW_TARGET[section]),
                }
            per[section] = entry
        summary[t] = per
    return summary


def write_all(out_dir: Path, results: dict[str, Any]) -> list[Path]:
    """The JSON and markdown results, and the plot where matplotlib (extra `[bench]`) is installed."""
    written = [write_json(out_dir, results), write_markdown(out_dir, results)]
    if importlib.util.find_spec("matplotlib") is not None:
        written.append(write_plot(out_dir, results))
    return written


def rerender(out_dir: Path) -> None:
    """Recompute the summary of an existing JSON and rewrite all three files."""
    results = json.loads((out_dir / JSON_NAME).read_text())
    results["summary"] = summarize(results)
    write_all(out_dir, results)


def write_json(out_dir: Path, results: dict[str, Any]) -> Path:
    path = out_dir / JSON_NAME
    path.write_text(json.dumps(results, indent=1))
    return path


def _f(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _ms(data: dict[str, Any]) -> str:
    if "error" in data:
        return "error"
    if "median_ms" not in data:
        return "—"
    mark = "" if data.get("matches_pytorch", True) else " (WRONG)"
    return f"{_ms_value(data['median_ms'])} / {_ms_value(data['min_ms'])}{mark}"


def _ms_value(ms: float) -> str:
    return f"{ms:.3f}" if ms < 1 else (f"{ms:.2f}" if ms < 100 else f"{ms:.0f}")


def _label(name: str) -> str:
    return LABELS.get(name, name)


def method_lines(results: dict[str, Any]) -> list[str]:
    c = results["config"]
    first = next(iter(results["machine"].values()))
    if c["mode"] == "steady":
        how = (f"steady state: {c['rounds']} rounds; per round each variant runs 1 untimed call then "
               f"{c['block']} timed calls back to back, the variant order rotating per round")
    else:
        how = (f"interleaved: {c['warmup']} warm-up calls each, then {c['rounds'] * c['block']} rounds of one "
               "call per variant, rotated")
    drivers = ", ".join(f"{t} thread{'s' if t != '1' else ''}: IREE `{d}`" for t, d in c["iree_drivers"].items())
    ceilings = ", ".join(f"{t} thread{'s' if t != '1' else ''}: {m['ceiling_gflops']:.1f}"
                         for t, m in results["machine"].items() if m.get("ceiling_gflops"))
    gemm = next((m["ceiling"]["method"] for m in results["machine"].values() if m.get("ceiling")), "")
    return [
        f"Machine: {first['cpu']} ({first.get('cpu_family', 'other')}), {first['logical_cpus']} logical CPUs, "
        f"{first['simd']}, {first['ghz']} GHz nominal."
        + (f" Ceiling (GFLOP/s, {gemm}): {ceilings}." if ceilings else ""),
        f"Command: `{c['command']}` (took {c['wall_s']:.0f} s).",
        f"Timing: {how}; {c['rounds'] * c['block']} samples per variant; cells are median / min ms. "
        f"Threads: {drivers}; torch.set_num_threads and ORT intra-op threads alike (ORT "
        f"{c.get('onnxruntime')}, spinning off, all graph optimizations; Inductor: torch.compile with freezing, "
        f"compiled per thread count). IREE flags: `{c['iree_flags']}`.",
        "A ×B = A's time / B's time by median (lower is better; ×PT: over PyTorch eager); geomean rows give "
        "median (min). auto: conv / other dispatches / rest = a separate profiled run of auto's module "
        "(docs/performance.md, \"Method\").",
    ]


def markdown(results: dict[str, Any]) -> str:
    lines = ["### Method of this run", "", *method_lines(results), ""]
    lines += summary_lines(results)
    for section in SECTIONS:
        rows = section_rows(results, section)
        if not rows:
            continue
        for t in map(str, results["config"]["threads"]):
            lines += ["", f"### {SECTION_TITLES[section]}, {t} thread{'s' if t != '1' else ''}", ""]
            lines += table(results, section, rows, t)
            if section in ("networks", "media"):
                lines += ceiling_lines(rows, t)
    return "\n".join(lines) + "\n"


def ceiling_lines(rows: list[dict[str, Any]], t: str) -> list[str]:
    """Per row with efficiency figures at `t` threads: auto's GFLOP/s and fraction of
    the ceiling, then its costliest conv dispatches in a small table."""
    lines: list[str] = []
    for row in rows:
        e = row.get("efficiency", {}).get(t)
        if not e or "auto_gflops" not in e:
            continue
        lines += ["", f"**{row['name']}**, {t} thread{'s' if t != '1' else ''}: auto {e['auto_gflops']:.1f} GFLOP/s "
                      f"= {e['auto_fraction']:.1%} of the ceiling ({e['ceiling_gflops']:.1f} GFLOP/s; "
                      f"{row['flops'] / 1e9:.2f} GFLOP per call, conv + matmul)."]
        if e.get("conv_dispatches"):
            lines += ["", "| costliest conv dispatches | runs per call | ms per call | GFLOP per call | GFLOP/s "
                          "| of the ceiling |",
                      "|---|---|---|---|---|---|"]
            for d in e["conv_dispatches"]:
                flop = "—" if d["flops"] is None else f"{d['flops'] / 1e9:.3g}"
                rate = "—" if d["gflops"] is None else f"{d['gflops']:.1f}"
                frac = f"— ({d['flops_from']})" if d["fraction"] is None else f"{d['fraction']:.1%}"
                lines.append(f"| `{d['name']}` | {d.get('runs', 1):g} | {_ms_value(d['ms'])} | {flop} | {rate} | {frac} |")
    return lines


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = ["### Summary: geomean ratios, median (min)", "",
             "| threads | section | " + " | ".join(["auto ×PT", "auto ×ORT", "auto ×Inductor", "ORT ×PT",
                                                     "Inductor ×PT", "upstream ×PT", "auto worst ×PT (row)",
                                                     "rows over the row target"]) + " |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t, per in results["summary"].items():
        for section, entry in per.items():
            def g(key: str, entry: dict[str, Any] = entry) -> str:
                e = entry.get(key)
                return "—" if e is None else f"{_f(e['geomean_median'])} ({_f(e['geomean_min'])})"

            auto = entry.get(f"{AUTO}/{PYTORCH}")
            worst = "—" if auto is None else f"{_f(auto['worst'])} ({auto['worst_row']})"
            over = "—" if auto is None else \
                f"> {ROW_TARGET[section]}×PT: " + (", ".join(auto["rows_over_target"]) or "none")
            title = SECTION_TITLES[section] + (" (geomean over the 8 image nets)" if section == "networks" else "")
            lines.append(f"| {t} | {title} | {g(f'{AUTO}/{PYTORCH}')} | {g(f'{AUTO}/{ORT}')} | "
                         f"{g(f'{AUTO}/{INDUCTOR}')} | {g(f'{ORT}/{PYTORCH}')} | {g(f'{INDUCTOR}/{PYTORCH}')} | "
                         f"{g(f'{UPSTREAM}/{PYTORCH}')} | {worst} | {over} |")
    extra = []
    for t, per in results["summary"].items():
        if (e := per.get("dtype", {}).get(f"{AUTO}/{AUTO_F32}")) is not None:
            extra.append(f"- {t} thread(s), f16/bf16: auto in the low dtype / auto in f32, geomean "
                         f"{_f(e['geomean_median'])} ({_f(e['geomean_min'])}).")
        if (e := per.get("dynamic", {}).get(f"{AUTO_DYNAMIC}/{AUTO}")) is not None:
            extra.append(f"- {t} thread(s), dynamic batch: auto compiled dynamic / auto compiled static, geomean "
                         f"{_f(e['geomean_median'])} ({_f(e['geomean_min'])}), worst {_f(e['worst'])} "
                         f"({e['worst_row']}).")
    return lines + ([""] + extra if extra else [])


def table(results: dict[str, Any], section: str, rows: list[dict[str, Any]], t: str) -> list[str]:
    names = variants_of(rows)
    others = [n for n in names if n != PYTORCH]
    pairs = [(n, PYTORCH) for n in others if not (section == "dtype" and n == AUTO_F32)]
    pairs += [p for p in baselines(section) if p[0] in names and p[1] in names]
    header = ["row"] + [f"{_label(n)} ms" for n in names] + [f"{_label(a)} ×{'PT' if b == PYTORCH else _label(b)}"
                                                            for a, b in pairs]
    breakdown = section in ("networks", "media")
    if breakdown:
        header.append("auto: conv / other dispatches / rest ms")
    if section in ("core", "extra", "dtype"):
        header.append("auto GFLOP/s")
    header.append("strategies used")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        timings = row["threads"].get(t, {})
        cells = [row["name"]] + [_ms(timings.get(n, row["build"].get(n, {}))) for n in names]
        cells += [_f(ratio(timings, a, b)) for a, b in pairs]
        if breakdown:
            b = row.get("breakdown", {}).get(t, {})
            cells.append("—" if "conv_ms" not in b else
                         f"{_ms_value(b['conv_ms'])} / {_ms_value(b['other_ms'])} / {_ms_value(b['rest_ms'])}")
        if section in ("core", "extra", "dtype"):
            auto = timings.get(AUTO, {})
            cells.append("—" if not row.get("flops") or "median_ms" not in auto else
                         f"{row['flops'] / (auto['median_ms'] * 1e-3) / 1e9:.1f}")
        cells.append(strategies_cell(row, names))
        lines.append("| " + " | ".join(cells) + " |")
    geo = ["geomean" + (" (8 image nets)" if section == "networks" else "")] + [""] * len(names)
    for a, b in pairs:
        vals = [ratio(r["threads"].get(t, {}), a, b) for r in rows if section != "networks" or r["name"] in IMAGE_NETS]
        mins = [ratio(r["threads"].get(t, {}), a, b, "min_ms") for r in rows
                if section != "networks" or r["name"] in IMAGE_NETS]
        geo.append(f"{_f(geomean(vals))} ({_f(geomean(mins))})")
    geo += [""] * (len(header) - len(geo))
    lines.append("| " + " | ".join(geo) + " |")
    return lines


def strategies_cell(row: dict[str, Any], names: list[str]) -> str:
    """What the plugin did in each variant that ran it: `auto: taps/depthwise 1`."""
    parts = []
    for name in names:
        used = row["build"].get(name, {}).get("strategies_used")
        if used:
            parts.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in sorted(used.items())))
    return "; ".join(parts) or "—"


BEGIN_MARK = "<!-- BEGIN bench_results.md (written by torch-grouped-conv bench --update-doc) -->"
END_MARK = "<!-- END bench_results.md -->"


def splice(doc: str, tables: str) -> str:
    """`doc` with the text between BEGIN_MARK and END_MARK replaced by `tables`."""
    start, end = doc.find(BEGIN_MARK), doc.find(END_MARK)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN_MARK!r} ... {END_MARK!r} block to replace")
    return doc[:start + len(BEGIN_MARK)] + "\n\n" + tables.strip() + "\n\n" + doc[end:]


def write_markdown(out_dir: Path, results: dict[str, Any]) -> Path:
    path = out_dir / MD_NAME
    path.write_text(markdown(results))
    return path


def write_plot(out_dir: Path, results: dict[str, Any]) -> Path:
    """One panel per (section group, thread count): bars of time / PyTorch time
    per row for PyTorch, ORT, upstream and auto side by side (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("models", [r for r in results["rows"] if r["section"] in ("networks", "media")]),
              ("shapes", [r for r in results["rows"] if r["section"] in ("core", "extra")])]
    groups = [(g, rows) for g, rows in groups if rows] or [("rows", results["rows"])]
    threads = [str(t) for t in results["config"]["threads"]]
    widest = max(len(rows) for _, rows in groups)
    fig, axes = plt.subplots(len(groups), len(threads), squeeze=False,
                             figsize=(max(6.0, 0.45 * widest + 2) * len(threads), 4.2 * len(groups)))
    for gi, (group, rows) in enumerate(groups):
        names = [n for n in ORDER if n in variants_of(rows)]
        width = 0.8 / max(1, len(names))
        for ti, t in enumerate(threads):
            ax = axes[gi][ti]
            for i, n in enumerate(names):
                ys = [ratio(r["threads"].get(t, {}), n, PYTORCH) or float("nan") for r in rows]
                ax.bar([x + i * width for x in range(len(rows))], ys, width, label=_label(n))
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log")
            ax.set_ylabel("time / PyTorch time (log)")
            ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))])
            ax.set_xticklabels([r["name"] for r in rows], rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{group}, {t} thread{'s' if t != '1' else ''} (lower is better)", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / PNG_NAME
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
