"""Run torch-mlir's own e2e convolution tests with dynamic shapes through the plugin.

    python -m tests.campaigns.upstream_conv_suite PATH/TO/torch-mlir/projects/pt1/python/\
torch_mlir_e2e_test/test_suite/conv.py [--out result.json] [NAME ...]

torch-mlir's suite declares each input's dims with `annotate_args` (-1 = dynamic);
its FX config exports them static. Here every -1 dim becomes `Dim.AUTO` (export
keeps it dynamic where the program allows), the module is compiled with the
plugin (`grouped_conv="grouped"`), run on both runners and compared with
PyTorch eager (rtol 1e-4, atol 1e-4). Where the plugin does not pass on both,
the same is done with the plugin off (torch-mlir's own lowering) for comparison.
Prints one JSON line per test and a summary: passes per runner, refusals.

The suite's modules import `torch_mlir_e2e_test` (framework, registry,
annotations), which the torch-mlir wheel does not ship: a minimal stand-in is
installed in `sys.modules` first. A measurement tool, not part of `make test`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.export import Dim

import torch_grouped_conv as tgc

TESTS: list[tuple[str, Callable[[], torch.nn.Module], Callable[..., None]]] = []


class TestUtils:
    """torch_mlir_e2e_test.framework.TestUtils: seeded random inputs."""

    def __init__(self) -> None:
        torch.manual_seed(0)

    def rand(self, *sizes: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return torch.empty(sizes).uniform_(low, high)

    def randint(self, *sizes: int, low: int = 0, high: int = 10, dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return torch.randint(low, high, sizes, dtype=dtype)


def _register_test_case(module_factory: Callable[[], torch.nn.Module]) -> Callable:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        TESTS.append((fn.__name__, module_factory, fn))
        return fn
    return register


def _annotate_args(args: list[Any]) -> Callable:
    def annotate(fn: Callable) -> Callable:
        fn.__dict__["_annotations"] = args  # read back by getattr below (module.forward._annotations)
        return fn
    return annotate


def install_stand_in() -> None:
    """Minimal `torch_mlir_e2e_test.{framework,registry,annotations}` in sys.modules."""
    package = types.ModuleType("torch_mlir_e2e_test")
    modules = {
        "framework": {"TestUtils": TestUtils},
        "registry": {"register_test_case": _register_test_case},
        "annotations": {"annotate_args": _annotate_args, "export": lambda fn: fn},
    }
    sys.modules["torch_mlir_e2e_test"] = package
    for name, attrs in modules.items():
        module = types.ModuleType(f"torch_mlir_e2e_test.{name}")
        module.__dict__.update(attrs)
        sys.modules[module.__name__] = module
        setattr(package, name, module)


class _Recorder:
    """Stands in for the compiled module: records the inputs the test passes to forward."""

    args: tuple[Any, ...] = ()

    def forward(self, *args: Any) -> None:
        self.args = args


def dynamic_shapes(module: torch.nn.Module) -> tuple[Any, ...] | None:
    """Dim.AUTO for every dim annotated -1, per forward argument."""
    annotations = getattr(type(module).forward, "_annotations", None)
    if not annotations:
        return None
    return tuple({d: Dim.AUTO for d, size in enumerate(a[0]) if size == -1} if a else None for a in annotations[1:])


def run_test(factory: Callable[[], torch.nn.Module], fn: Callable[..., None], strategy: str | None) -> dict[str, Any]:
    recorder = _Recorder()
    fn(recorder, TestUtils())
    module = factory().eval()
    with torch.no_grad():
        expected = module(*recorder.args).numpy().astype(np.float64)
    compiled = tgc.compile(module, *recorder.args, grouped_conv=strategy, dynamic_shapes=dynamic_shapes(module))
    report = tgc.last_report()
    assert report is not None
    result: dict[str, Any] = {"counts": report.counts(), "refused": [d.reason for d in report.refused], "backends": {}}
    for backend in tgc.BACKENDS:
        try:
            [actual] = tgc.load(compiled, backend=backend)(*recorder.args)
            ok = np.allclose(actual.astype(np.float64), expected, rtol=1e-4, atol=1e-4)
            result["backends"][backend] = "pass" if ok else "mismatch"
        except Exception as e:  # a measurement: record and go on
            result["backends"][backend] = "error: " + (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return result


def run_guarded(factory: Callable[[], torch.nn.Module], fn: Callable[..., None], strategy: str | None) -> dict[str, Any]:
    try:
        return run_test(factory, fn, strategy)
    except Exception as e:  # export/import/pipeline failures are results here
        return {"error": (str(e).strip().splitlines() or [type(e).__name__])[0][:300], "backends": {}}


def passes(result: dict[str, Any], backend: str) -> bool:
    return result.get("backends", {}).get(backend) == "pass"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("conv_py", type=Path, help="torch-mlir's test_suite/conv.py")
    parser.add_argument("names", nargs="*", help="only these tests")
    parser.add_argument("--out", type=Path, help="write every result as JSON")
    args = parser.parse_args(argv)
    install_stand_in()
    spec = importlib.util.spec_from_file_location("upstream_conv_suite_tests", args.conv_py)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    results: dict[str, dict[str, Any]] = {}
    for name, factory, fn in TESTS:
        if args.names and name not in args.names:
            continue
        entry = {"plugin": run_guarded(factory, fn, "grouped")}
        if not all(passes(entry["plugin"], b) for b in tgc.BACKENDS):
            entry["upstream"] = run_guarded(factory, fn, None)
        results[name] = entry
        print(name, json.dumps(entry), flush=True)
    summary = {
        "tests": len(results),
        "plugin_pass": {b: sum(passes(e["plugin"], b) for e in results.values()) for b in tgc.BACKENDS},
        "plugin_refused": sorted(n for n, e in results.items() if e["plugin"].get("refused")),
        "not_passing": {n: e for n, e in results.items() if "upstream" in e},
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
