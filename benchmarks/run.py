"""`python -m benchmarks.run`: time PyTorch eager, upstream torch-mlir + IREE
and each plugin strategy + IREE on the shape suite; write JSON, Markdown, PNG.

All variants of one shape are timed interleaved in one process, with the same
thread count (torch.set_num_threads and IREE's task topology).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from torch_grouped_conv.runners.iree_flags import FLAG_SETS, TUNED, flag_set, runtime_driver, set_runtime_threads
from torch_grouped_conv.runners.iree import IREE_TARGET_FLAGS

from . import machine, output
from .measure import PYTORCH, UPSTREAM, Variant, iree_variant, median_ms, pytorch_variant, time_interleaved
from .shapes import SETS, Shape, load_shapes

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHAPES = REPO.parent / "shared" / "bench" / "shapes.json"
PLUGIN_STRATEGIES = ("grouped", "split", "channels-last", "im2col", "taps", "matmul", "auto")
MODELS = ("resnext50_32x4d", "mobilenet_v2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    p.add_argument("--shapes", type=Path, default=DEFAULT_SHAPES, help="shapes.json (default: %(default)s)")
    p.add_argument("--set", dest="shape_set", choices=SETS, default="core")
    p.add_argument("--only", default="", help="comma-separated shape names to keep")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--strategies", default=",".join(PLUGIN_STRATEGIES),
                   help="comma-separated plugin strategies (default: all); `STRATEGY@FLAGSET` (STRATEGY may be "
                        "`upstream`) times that variant with another IREE flag set, interleaved with the others")
    p.add_argument("--flags", default=TUNED, choices=sorted(FLAG_SETS), help="IREE flag set for every IREE variant")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--models", action=argparse.BooleanOptionalAction, default=True,
                   help="also time whole models (resnext50_32x4d, mobilenet_v2)")
    p.add_argument("--model-variants", default="",
                   help="extra comma-separated variants for the model rows (same syntax as --strategies)")
    p.add_argument("--out-dir", type=Path, default=REPO / "docs")
    p.add_argument("--smoke", action="store_true", help="1 shape, 2 repeats, 1 warm-up, no models")
    args = p.parse_args(argv)
    if args.smoke:
        args.repeats, args.warmup, args.models = 2, 1, False
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    set_runtime_threads(args.threads)
    try:
        shapes = select_shapes(args)
    except (OSError, KeyError, ValueError) as e:
        print(f"bench: cannot read shapes: {e}", file=sys.stderr)
        return 2
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if not known_variant(s)]
    if unknown:
        print(f"bench: unknown strategies {unknown}; choose from {', '.join(PLUGIN_STRATEGIES)}"
              f" (optionally @ one of {', '.join(FLAG_SETS)})", file=sys.stderr)
        return 2
    flags = flag_set(args.flags)
    variants = [PYTORCH, UPSTREAM, *strategies]
    rows = [bench_shape(s, strategies, flags, args) for s in tqdm(shapes, desc="shapes", unit="shape")]
    models = [bench_model(m, flags, args) for m in tqdm(MODELS, desc="models")] if args.models else []
    facts = machine.describe(args.threads)
    for row in rows:
        for data in row["variants"].values():
            if "median_ms" in data:
                data["gflops"] = row["flops"] / (data["median_ms"] * 1e-3) / 1e9
                data["percent_of_peak"] = 100 * data["gflops"] / facts["peak_gflops"]
    results = {
        "machine": facts,
        "config": {
            "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
            "shapes_file": str(args.shapes), "set": args.shape_set, "repeats": args.repeats,
            "warmup": args.warmup, "variants": variants, "flag_set": args.flags,
            "iree_flags": " ".join(IREE_TARGET_FLAGS + flags), "threads": args.threads,
            "iree_driver": runtime_driver(args.threads),
        },
        "shapes": rows,
        "models": models,
        "summary": output.summarize(rows, variants, facts["peak_gflops"]),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in (output.write_json(args.out_dir, results), output.write_markdown(args.out_dir, results),
                 output.write_plot(args.out_dir, results)):
        print(f"wrote {path}")
    return 0


def known_variant(name: str) -> bool:
    strategy, _, flags = name.partition("@")
    if flags:
        return strategy in (*PLUGIN_STRATEGIES, UPSTREAM) and flags in FLAG_SETS
    return strategy in PLUGIN_STRATEGIES


def variant_spec(name: str, flags: list[str]) -> tuple[str, str | None, list[str]]:
    """(label, grouped_conv strategy or None for upstream, IREE flags) of a `--strategies` entry."""
    strategy, _, flag_name = name.partition("@")
    return name, None if strategy == UPSTREAM else strategy, flag_set(flag_name) if flag_name else flags


def select_shapes(args: argparse.Namespace) -> list[Shape]:
    shapes = load_shapes(args.shapes, args.shape_set)
    if args.only:
        keep = set(args.only.split(","))
        shapes = [s for s in shapes if s.name in keep]
    return shapes[:1] if args.smoke else shapes


def bench_shape(shape: Shape, strategies: list[str], flags: list[str], args: argparse.Namespace) -> dict:
    model, x = shape.make_module(), shape.make_input()
    row: dict = {"name": shape.name, "source": shape.source, "input": list(shape.input),
                 "groups": shape.groups, "kernel": list(shape.kernel), "variants": {}}
    with torch.inference_mode():
        expected = model(x)
    row["flops"] = shape.flops(tuple(expected.shape))
    specs = [(UPSTREAM, None, flags)] + [variant_spec(s, flags) for s in strategies]
    built = build_variants(model, x, specs, row)
    measure(built, expected.numpy(), args, row)
    return row


def bench_model(name: str, flags: list[str], args: argparse.Namespace) -> dict:
    import torchvision

    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    row: dict = {"name": name, "variants": {}}
    with torch.inference_mode():
        expected = model(x)
    specs = [(UPSTREAM, None, flags), ("auto", "auto", flags)]
    specs += [variant_spec(s, flags) for s in args.model_variants.split(",") if s]
    built = build_variants(model, x, specs, row)
    measure(built, expected.numpy(), args, row, rtol=1e-3, atol=1e-3)
    return row


def build_variants(model: torch.nn.Module, x: torch.Tensor, specs: list[tuple[str, str | None, list[str]]],
                   row: dict) -> list[Variant]:
    built = [pytorch_variant(model, x)]
    for name, strategy, flags in specs:
        try:
            built.append(iree_variant(name, model, x, strategy, flags, runtime_driver(torch.get_num_threads())))
        except Exception as e:  # a variant that fails to build is reported, not fatal
            row["variants"][name] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}
    return built


def measure(built: list[Variant], expected: np.ndarray, args: argparse.Namespace, row: dict,
            rtol: float = 1e-4, atol: float = 1e-4) -> None:
    started = time.perf_counter()
    times = time_interleaved(built, args.repeats, args.warmup)
    for v in built:
        data: dict = {"median_ms": median_ms(times[v.name]), "times_ms": [t * 1e3 for t in times[v.name]],
                      "compile_s": round(v.compile_s, 2)}
        if v.strategies_used:
            data["strategies_used"] = v.strategies_used
        if v.check is not None and v.name != PYTORCH:
            actual = v.check()
            data["max_abs_err"] = float(np.max(np.abs(actual - expected)))
            data["matches_pytorch"] = bool(np.allclose(actual, expected, rtol=rtol, atol=atol))
        row["variants"][v.name] = data
    row["timing_s"] = round(time.perf_counter() - started, 2)


if __name__ == "__main__":
    sys.exit(main())
