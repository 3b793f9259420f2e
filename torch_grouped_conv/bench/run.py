"""`torch-grouped-conv bench`: time PyTorch eager, ONNX Runtime, Inductor,
torch-mlir's own lowering + IREE and the plugin's strategies + IREE, steady
state, at 1 and 2 threads; whole networks first. Writes JSON, Markdown and a PNG.

Before the rows it measures the machine's ceiling at each thread count
(ceiling.py); after them, auto's fraction of it per net (efficiency.py).

Per row every variant is built once (export, compile) and timed at each
thread count in one process: torch.set_num_threads(T), ORT intra-op threads
T, IREE `local-sync` for T = 1 and `local-task` with T workers otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from rich.progress import Progress

from torch_grouped_conv.bench import breakdown, ceiling, efficiency, knobs, machine, output
from torch_grouped_conv.bench.shapes import DEFAULT_SHAPES, SETS, Shape, load_shapes
from torch_grouped_conv.bench.timing import MODES, run_schedule, samples_cap, schedule, stats_ms
from torch_grouped_conv.bench.variants import AUTO, PYTORCH, UPSTREAM, Variant
from torch_grouped_conv.bench.workloads import (
    DTYPE_SHAPES,
    DTYPES,
    DYNAMIC_SHAPES,
    DYNAMIC_SPATIAL_SHAPES,
    IMAGE_NETS,
    MEDIA_MODELS,
    PEERS,
    VariantSpec,
    Workload,
    dtype_workload,
    dynamic_spatial_workloads,
    dynamic_workloads,
    model_workload,
    shape_workload,
)
from torch_grouped_conv.errors import InputError
from torch_grouped_conv.files import write_atomically
from torch_grouped_conv.rewrite.strategies import STRATEGIES
from torch_grouped_conv.rewrite.tuning import TUNINGS
from torch_grouped_conv.runners.blas import runtime_flags as blas_runtime_flags
from torch_grouped_conv.runners.iree import IREE_TARGET_FLAGS, trim_device_caches
from torch_grouped_conv.runners.iree_flags import (
    FLAG_SETS,
    TUNED,
    compile_thread_flags,
    flag_set,
    runtime_driver,
    set_runtime_threads,
)
from torch_grouped_conv.verify import compare


class BenchUsageError(ValueError):
    """Bad options: one line, exit 2, nothing written."""


PLUGIN_STRATEGIES = STRATEGIES  # every registered grouped_conv strategy
MODELS = IMAGE_NETS + MEDIA_MODELS
BREAKDOWN_SECTIONS = ("networks", "media")
PARTIAL_NAME = "bench_results.partial.json"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise BenchUsageError(f"{message} (see {self.prog} --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(prog="torch-grouped-conv bench",
                description="Time PyTorch eager, ONNX Runtime, torch-mlir's own lowering + IREE and the "
                            "plugin's strategies + IREE, steady state, at 1 and 2 threads; whole networks first.")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated whole models, or `none` (default: %(default)s)")
    p.add_argument("--no-models", dest="models", action="store_const", const="none", help="same as --models none")
    p.add_argument("--model-input", type=int, default=None,
                   help="spatial size of the image/video model inputs (default 224 / 112; smaller for smoke runs)")
    p.add_argument("--model-variants", default="",
                   help="extra comma-separated variants for the model rows (same syntax as --strategies)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="engines timed beside PyTorch eager on the network and shape rows, or `none`: `ort` "
                        "(ONNX Runtime), `inductor` (torch.compile, freezing; compiles once per thread count, "
                        "minutes per net) (default: %(default)s)")
    p.add_argument("--ceiling-size", type=int, default=ceiling.SIZE,
                   help="the ceiling GEMM's size (torch.mm N x N x N f32, measured once per thread count; "
                        "0: not measured) (default: %(default)s)")
    p.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True,
                   help="profile auto's conv vs other dispatch time on the model rows")
    p.add_argument("--shapes", type=Path, default=DEFAULT_SHAPES, help="shape suite JSON (default: the packaged one)")
    p.add_argument("--set", dest="shape_set", choices=(*SETS, "none"), default="all")
    p.add_argument("--only", default="", help="comma-separated shape names to keep")
    p.add_argument("--strategies", default=AUTO,
                   help="comma-separated plugin strategies for the shape rows (default: auto); `STRATEGY@FLAGSET` "
                        "(STRATEGY may be `upstream`) times that variant with another IREE flag set; "
                        "`auto:TUNING` picks for that CPU family (default, intel-avx512; rewrite/tuning.py) "
                        "instead of the host's; `+KNOB=VALUE` adds an IREE knob: "
                        + ", ".join(f"{k.name} ({k.flag})" for k in knobs.KNOBS.values()))
    p.add_argument("--dtypes", default=",".join(DTYPES), help="f16/bf16 rows: comma-separated dtypes, or `none`")
    p.add_argument("--dtype-shapes", default=",".join(DTYPE_SHAPES), help="core shapes for the dtype rows")
    p.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=True,
                   help="dynamic rows (batch 1 and 8; full and half spatial size; dynamic vs static)")
    p.add_argument("--dynamic-shapes", default=",".join(DYNAMIC_SHAPES), help="core shapes for the dynamic-batch rows")
    p.add_argument("--dynamic-spatial-shapes", default=",".join(DYNAMIC_SPATIAL_SHAPES),
                   help="core shapes for the rows with dynamic batch and spatial dims (`none`: no such rows)")
    p.add_argument("--flags", default=TUNED, choices=sorted(FLAG_SETS), help="IREE flag set for every IREE variant")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default: %(default)s)")
    p.add_argument("--compile-threads", type=int, default=0,
                   help="the thread count IREE codegen splits dispatches for, for every IREE variant "
                        "(--iree-llvmcpu-number-of-threads; 0: IREE's own default, 8, which measured no "
                        "slower: docs/performance.md, \"Tried and not kept\") (default: %(default)s)")
    p.add_argument("--mode", choices=MODES, default="steady",
                   help="steady: rounds of back-to-back blocks per variant (default); interleaved: the old "
                        "one-call-per-variant rotation")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default: %(default)s)")
    p.add_argument("--block", type=int, default=5, help="timed calls per variant per round (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls per variant (interleaved mode only)")
    p.add_argument("--max-variant-s", type=float, default=60.0,
                   help="time budget per variant, row and thread count: a variant whose first call says it "
                        "would take longer gets fewer timed calls (at least 2; default: %(default)s s)")
    p.add_argument("--out-dir", type=Path, default=Path("bench-results"),
                   help="where the results go (an ignored folder; default: %(default)s)")
    p.add_argument("--update-doc", type=Path, default=None,
                   help="also replace the marked results block of this Markdown file (docs/performance.md) "
                        "with the tables of this run")
    p.add_argument("--smoke", action="store_true",
                   help="defaults for a quick check: first shape of the chosen set only, 2 rounds of 1 call, "
                        "--set core, no model/dtype/dynamic rows, ORT as the only peer, a 512 ceiling GEMM "
                        "(options given explicitly still apply)")
    if "--smoke" in (argv or []):
        p.set_defaults(rounds=2, block=1, warmup=1, models="none", dtypes="none", dynamic=False, shape_set="core",
                       peers="ort", ceiling_size=512)
    return p.parse_args(argv)


def known_variant(name: str) -> bool:
    """`STRATEGY`, `STRATEGY@FLAGSET` (STRATEGY may be upstream, or `auto:TUNING`) or either with
    `+KNOB=VALUE`s (upstream too: the baseline with a knob is a variant)."""
    head, _, knob_text = name.partition("+")
    strategy, _, flags = head.partition("@")
    strategy, colon, tuning_name = strategy.partition(":")
    if colon and (strategy != AUTO or tuning_name not in TUNINGS):
        return False
    if knob_text and knobs.parse(knob_text) is None:
        return False
    if flags or knob_text:
        return strategy in (*PLUGIN_STRATEGIES, UPSTREAM) and (not flags or flags in FLAG_SETS)
    return strategy in PLUGIN_STRATEGIES


def variant_spec(name: str, flags: list[str], thread_flags: list[str] | None = None) -> VariantSpec:
    """(label, grouped_conv strategy or None for upstream, IREE flags) of a `--strategies` entry:
    the run's flags, or FLAGSET's plus the run's `thread_flags`, then the knobs (a knob replaces
    the same flag)."""
    head, _, knob_text = name.partition("+")
    strategy, _, flag_name = head.partition("@")
    base = flag_set(flag_name) + list(thread_flags or []) if flag_name else flags
    return name, None if strategy == UPSTREAM else strategy, knobs.merge(base, knobs.parse(knob_text) or [])


def _names(text: str) -> list[str]:
    return [] if text in ("", "none") else [n for n in text.split(",") if n]


def parse_threads(text: str) -> list[int]:
    try:
        threads = [int(t) for t in text.split(",") if t]
    except ValueError:
        threads = []
    if not threads or any(t < 1 for t in threads):
        raise BenchUsageError(f"--threads {text!r}: give positive thread counts separated by commas, e.g. 1,2")
    if len({t for t in threads if t > 1}) > 1:
        raise BenchUsageError(f"--threads {text!r}: at most one count above 1 per run (IREE's local-task topology "
                              "is fixed per process); run the others separately")
    return threads


def plan_workloads(args: argparse.Namespace, flags: list[str], thread_flags: list[str] | None = None
                   ) -> list[Workload]:
    """Every row of the run, in report order; raises BenchUsageError for bad names."""
    strategies = _names(args.strategies)
    extra_model_variants = _names(args.model_variants)
    unknown = [s for s in strategies + extra_model_variants if not known_variant(s)]
    if unknown:
        raise BenchUsageError(f"unknown strategies {unknown}; choose from {', '.join(PLUGIN_STRATEGIES)}"
                              f" (optionally @ one of {', '.join(FLAG_SETS)})")
    models = _names(args.models)
    if bad := [m for m in models if m not in MODELS and not _is_torchvision(m)]:
        raise BenchUsageError(f"unknown models {bad}; choose from {', '.join(MODELS)} or a torchvision model name")
    dtypes = _names(args.dtypes)
    if bad := [d for d in dtypes if d not in DTYPES]:
        raise BenchUsageError(f"unknown dtypes {bad}; choose from {', '.join(DTYPES)}")
    peers = _names(args.peers)
    if bad := [p for p in peers if p not in PEERS]:
        raise BenchUsageError(f"unknown peers {bad}; choose from {', '.join(PEERS)} or `none`")
    by_name, sets = _load_suite(args)
    model_specs = [(UPSTREAM, None, flags), (AUTO, AUTO, flags)] + [variant_spec(s, flags, thread_flags)
                                                                   for s in extra_model_variants]
    shape_specs = [(UPSTREAM, None, flags)] + [variant_spec(s, flags, thread_flags) for s in strategies]
    rows = [model_workload(m, model_specs, args.model_input, peers) for m in models]
    rows.sort(key=lambda w: w.section != "networks")  # whole networks first
    for set_name, shapes in sets:
        rows += [shape_workload(s, set_name, shape_specs, peers) for s in shapes]
    for dtype in dtypes:
        rows += [dtype_workload(_shape(by_name, n, "--dtype-shapes"), dtype, flags) for n in _names(args.dtype_shapes)]
    if args.dynamic:
        for n in _names(args.dynamic_shapes):
            rows += dynamic_workloads(_shape(by_name, n, "--dynamic-shapes"), flags)
        for n in _names(args.dynamic_spatial_shapes):
            rows += dynamic_spatial_workloads(_shape(by_name, n, "--dynamic-spatial-shapes"), flags)
    return rows


def _is_torchvision(name: str) -> bool:
    import torchvision

    return name in torchvision.models.list_models()


def _load_suite(args: argparse.Namespace) -> tuple[dict[str, Shape], list[tuple[str, list[Shape]]]]:
    try:
        every = load_shapes(args.shapes, "all")
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise BenchUsageError(f"cannot read shapes from {args.shapes}: {type(e).__name__}: {e}") from None
    by_name = {s.name: s for s in every}
    sets: list[tuple[str, list[Shape]]] = []
    for set_name in ("core", "extra"):
        if args.shape_set not in (set_name, "all"):
            continue
        shapes = load_shapes(args.shapes, set_name)
        if args.only:
            keep = set(args.only.split(","))
            shapes = [s for s in shapes if s.name in keep]
        sets.append((set_name, shapes[:1] if args.smoke else shapes))
    return by_name, sets


def _shape(by_name: dict[str, Shape], name: str, option: str) -> Shape:
    if name not in by_name:
        raise BenchUsageError(f"{option}: no shape {name!r} in the suite")
    return by_name[name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
        threads = parse_threads(args.threads)
        thread_flags = compile_thread_flags(compile_threads(args.compile_threads))
        flags = flag_set(args.flags) + thread_flags
        workloads = plan_workloads(args, flags, thread_flags)
        if not args.out_dir.resolve().parent.is_dir():
            raise BenchUsageError(f"--out-dir {str(args.out_dir)!r}: its parent folder does not exist")
        if args.update_doc is not None:
            try:
                output.splice(args.update_doc.read_text(encoding="utf-8"), "")
            except (OSError, ValueError) as e:
                raise BenchUsageError(f"--update-doc {str(args.update_doc)!r}: {e}") from None
        claim_workers(threads)
    except BenchUsageError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    ceilings = measure_ceilings(threads, args.ceiling_size)
    rows = []
    args.out_dir.mkdir(parents=True, exist_ok=True)
    partial = args.out_dir / PARTIAL_NAME  # every finished row, in case a long run is interrupted
    with Progress(transient=True) as progress:
        bar = progress.add_task("rows", total=len(workloads))
        for workload in workloads:
            progress.update(bar, description=f"rows ({workload.name})")
            rows.append(bench_workload(workload, threads, args, progress))
            partial.write_text(json.dumps({"command": " ".join(argv), "rows": rows}))
            progress.advance(bar)
    gflops = {t: c["ceiling_gflops"] for t, c in ceilings.items()}
    for row in rows:
        row["efficiency"] = efficiency.of_row(row, gflops)
    results = {
        "machine": {str(t): {**machine.describe(t), "ceiling": ceilings.get(str(t)),
                             "ceiling_gflops": gflops.get(str(t))} for t in threads},
        "config": {
            "command": "torch-grouped-conv bench " + " ".join(argv),
            "mode": args.mode, "rounds": args.rounds, "block": args.block, "warmup": args.warmup,
            "threads": threads, "iree_drivers": {str(t): runtime_driver(t) for t in threads},
            "flag_set": args.flags, "peers": _names(args.peers),
            "compile_threads": compile_threads(args.compile_threads), "iree_flags": " ".join(IREE_TARGET_FLAGS + flags),
            "shapes_file": str(args.shapes), "torch": torch.__version__, "onnxruntime": _ort_version(),
            "wall_s": round(time.perf_counter() - started, 1),
        },
        "rows": rows,
    }
    results["summary"] = output.summarize(results)
    print(output.markdown(results))  # the tables, whole networks first
    for path in output.write_all(args.out_dir, results):
        print(f"wrote {path}")
    partial.unlink(missing_ok=True)
    if args.update_doc is not None:
        doc = output.splice(args.update_doc.read_text(encoding="utf-8"), output.markdown(results))
        write_atomically(args.update_doc, doc)
        print(f"updated {args.update_doc}")
    return 0


def claim_workers(threads: list[int]) -> None:
    """local-task's worker count, before its first device exists (1 thread runs on local-sync);
    a process whose local-task driver already runs another count is a usage error."""
    if max(threads) > 1:
        try:
            set_runtime_threads(max(threads))
        except InputError as e:
            raise BenchUsageError(str(e)) from None


def compile_threads(given: int) -> int | None:
    """--compile-threads: None (IREE's default) for 0."""
    if given < 0:
        raise BenchUsageError(f"--compile-threads {given}: give a thread count, or 0 for IREE's default")
    return given or None


def measure_ceilings(threads: list[int], size: int) -> dict[str, dict[str, Any]]:
    """ceiling.measure at each thread count (printed); none when size is 0."""
    if size <= 0:
        return {}
    found = {}
    for t in dict.fromkeys(threads):
        found[str(t)] = ceiling.measure(t, size).to_dict()
        print(f"ceiling, {t} thread(s): {found[str(t)]['ceiling_gflops']} GFLOP/s ({found[str(t)]['method']})",
              flush=True)
    return found


def _ort_version() -> str | None:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:
        return None


def bench_workload(workload: Workload, threads: list[int], args: argparse.Namespace,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Build the row's variants once, then time them at each thread count."""
    start = time.perf_counter()
    variants = workload.build()
    row: dict[str, Any] = {"name": workload.name, "section": workload.section, **workload.meta,
                           "flops": workload.flops, "build": {}, "threads": {}, "breakdown": {}}
    for name, error in workload.errors.items():
        row["build"][name] = {"error": error}
    kinds = _conv_kinds(variants, workload, row) if args.breakdown else None
    for t in threads:
        timings = row["threads"][str(t)] = time_variants(variants, workload, t, args, progress)
        if kinds is not None:
            auto_ms = timings.get(AUTO, {}).get("median_ms", 0.0)
            calls = max(1, min(breakdown.PROFILE_CALLS, int(args.max_variant_s / max(auto_ms * 1e-3, 1e-9))))
            row["breakdown"][str(t)] = _profile(variants, workload, t, kinds, calls)
    for v in variants:  # after timing: inductor compiles per thread count (build_s includes those)
        row["build"][v.name] = {"build_s": round(v.build_s, 2),
                                **{k: val for k, val in v.info.items() if k != "build"}}
    row["row_s"] = round(time.perf_counter() - start, 1)
    return row


def time_variants(variants: list[Variant], workload: Workload, threads: int,
                  args: argparse.Namespace, progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """Instantiate at `threads`, check every output against PyTorch's, time the schedule.
    Each starts with empty IREE buffer caches (the previous rows' instances collected)."""
    torch.set_num_threads(threads)
    gc.collect()
    trim_device_caches()
    data: dict[str, dict[str, Any]] = {}
    ready = []
    for v in variants:
        try:
            ready.append((v, v.instantiate(threads, workload.inputs)))
        except Exception as e:  # noqa: BLE001 - reported
            data[v.name] = {"error": f"{type(e).__name__}: {str(e).strip()[:400]}"}
    outputs, caps, first_ok = {}, [], []
    for v, inst in ready:  # the first call: checked, and it tells how slow the variant is
        start = time.perf_counter()
        try:
            outputs[v.name] = inst.output()
        except Exception as e:  # noqa: BLE001 - a variant failing at run time is reported, not fatal
            data[v.name] = {"error": f"{type(e).__name__}: {str(e).strip()[:400]}"}
            continue
        first_ok.append((v, inst))
        caps.append(samples_cap(time.perf_counter() - start, args.max_variant_s, args.rounds * args.block))
    ready = first_ok
    expected = outputs[PYTORCH]
    for v, _ in ready:  # the project's metric (verify.py): max |actual - expected| / max |expected|
        data[v.name] = {}
        if v.name != PYTORCH:
            c = compare(outputs[v.name], expected)
            ok = bool(np.isfinite(c.max_rel_error) and c.max_rel_error <= workload.tolerance)
            data[v.name].update(max_abs_err=c.max_abs_error, max_rel_err=c.max_rel_error, matches_pytorch=ok)
    plan = schedule(args.mode, len(ready), args.rounds, args.block, args.warmup, caps)
    progress = progress or Progress(disable=True)
    calls = progress.add_task(f"{workload.name}, {threads} thread(s)", total=sum(timed for _, timed in plan))
    times = run_schedule([inst.call for _, inst in ready], plan, tick=lambda: progress.advance(calls, 1))
    progress.remove_task(calls)
    for (v, _), samples, cap in zip(ready, times, caps, strict=False):
        data[v.name].update(stats_ms(samples))
        data[v.name]["times_ms"] = [round(s * 1e3, 4) for s in samples]
        if cap is not None:
            data[v.name]["capped_samples"] = cap
    return data


def _auto(variants: list[Variant]) -> Variant | None:
    return next((v for v in variants if v.name == AUTO and "build" in v.info), None)


def _conv_kinds(variants: list[Variant], workload: Workload, row: dict[str, Any]) -> dict[str, bool] | None:
    auto = _auto(variants)
    if workload.section not in BREAKDOWN_SECTIONS or auto is None:
        return None
    build = auto.info["build"]
    try:
        return breakdown.conv_dispatches(build.compile_source, build.compile_flags, build.conv_frames)
    except Exception as e:  # noqa: BLE001 - reported
        row["breakdown"]["error"] = f"{type(e).__name__}: {str(e)[:400]}"
        return None


def _profile(variants: list[Variant], workload: Workload, threads: int, kinds: dict[str, bool],
             calls: int) -> dict[str, Any]:
    auto = _auto(variants)
    assert auto is not None
    try:
        inputs = [t.numpy() for t in workload.inputs]
        build = auto.info["build"]
        return breakdown.profile(build.vmfb, inputs, threads, kinds, calls, build.transient_bytes,
                                 blas_runtime_flags() if build.blas_gemms else []).to_dict()
    except Exception as e:  # noqa: BLE001 - reported
        return {"error": f"{type(e).__name__}: {str(e)[:400]}"}


if __name__ == "__main__":
    sys.exit(main())
