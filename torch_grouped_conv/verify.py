"""The verify job: model -> torch IR -> plugin -> linalg -> compile -> run ->
compare with a reference, timing every stage. `verify_model` (a PyTorch model,
compared with eager PyTorch) and `verify_onnx` (an ONNX model, compared with
onnxruntime) share everything after the torch IR (`_lower_run_compare`). The
CLI's `verify` and `demo` commands are thin wrappers around them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from torch_grouped_conv.errors import ModelInputError
from torch_grouped_conv.frontends.torch_export import export_program, import_to_torch
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.runners import load
from torch_grouped_conv.stages import (
    ONNX_TO_TORCH_BACKEND,
    apply_strategy,
    check_options,
    lower_to_linalg,
    record_report,
    require_convolution,
    to_torch_backend,
)

# The pass/fail metric for whole networks: max |actual - expected| divided by
# max |expected| (errors of deep nets scale with the activations' magnitude).
RELATIVE_TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}


@dataclass
class Comparison:
    max_abs_error: float
    max_rel_error: float  # relative to max |expected|
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_rel_error)) and self.max_rel_error <= self.tolerance


@dataclass
class VerifyResult:
    model: str
    input_shape: list[int]
    backend: str
    grouped_conv: str | None
    report: RewriteReport
    comparison: Comparison
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shape": self.input_shape,
            "backend": self.backend,
            "grouped_conv": self.grouped_conv,
            "report": self.report.to_dict(),
            "comparison": {**asdict(self.comparison), "passed": self.passed},
            "stage_seconds": self.stage_seconds,
            "result": "PASS" if self.passed else "FAIL",
        }


def compare(actual: np.ndarray, expected: np.ndarray, dtype: torch.dtype = torch.float32) -> Comparison:
    actual64, expected64 = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual64.shape != expected64.shape:
        return Comparison(float("inf"), float("inf"), RELATIVE_TOLERANCE[dtype])
    max_abs = float(np.max(np.abs(actual64 - expected64))) if actual64.size else 0.0
    scale = float(np.max(np.abs(expected64))) if expected64.size else 0.0
    return Comparison(max_abs, max_abs / scale if scale > 0 else max_abs, RELATIVE_TOLERANCE[dtype])


StageHook = Callable[[str, float], None]
StartHook = Callable[[str], None]


@contextmanager
def timed_stage(name: str, times: dict[str, float], on_done: StageHook | None,
                on_start: StartHook | None = None) -> Iterator[None]:
    """Time the block as stage `name`: `on_start(name)` before, `on_done(name, seconds)` after."""
    if on_start is not None:
        on_start(name)
    start = time.perf_counter()
    yield
    times[name] = time.perf_counter() - start
    if on_done is not None:
        on_done(name, times[name])


def verify_model(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    name: str,
    backend: str = "refbackend",
    grouped_conv: str | None = "auto",
    on_stage: StageHook | None = None,
    on_start: StartHook | None = None,
    dynamic_shapes: Any = None,
) -> VerifyResult:
    """Run `model` eagerly (the reference; f16/bf16: the model in f64), compile
    it with the plugin, run it on `backend`, compare. `on_start` / `on_stage` are called
    as each stage starts / ends; `dynamic_shapes` as for torch.export."""
    times: dict[str, float] = {}
    with timed_stage("export", times, on_stage, on_start):
        program = export_program(model, x, dynamic_shapes=dynamic_shapes)
    with timed_stage("reference", times, on_stage, on_start):  # before the long work: a model may reject x
        expected = run_eagerly(model, x)
    with timed_stage("torch IR", times, on_stage, on_start):
        module = import_to_torch(program)
    require_convolution(module, name)
    report, [actual] = _lower_run_compare(module, [x], grouped_conv, backend, times, (on_start, on_stage))
    with timed_stage("compare", times, on_stage, on_start):
        comparison = compare(actual, expected, x.dtype)
    return VerifyResult(name, list(x.shape), backend, grouped_conv, report, comparison, times)


def verify_onnx(model: str | Path | Any, *, input_shapes: Any = None, backend: str = "refbackend",
                grouped_conv: str | None = "auto", on_stage: StageHook | None = None, name: str | None = None,
                seed: int = 0, on_start: StartHook | None = None) -> VerifyResult:
    """Compile the ONNX model (path or `onnx.ModelProto`) with the plugin, run it
    on `backend` and onnxruntime on the same random inputs, compare every output."""
    from torch_grouped_conv.frontends import onnx as onnx_frontend  # needs the `onnx` package (extra [onnx])

    check_options(grouped_conv, "linalg-on-tensors")
    times: dict[str, float] = {}
    with timed_stage("import", times, on_stage, on_start):
        proto = onnx_frontend.load_model(model)
        inputs = onnx_frontend.graph_inputs(proto)
        shapes = onnx_frontend.resolve_shapes(inputs, input_shapes)
        module = onnx_frontend.import_model(proto)
    with timed_stage("torch IR", times, on_stage, on_start):
        to_torch_backend(module, ONNX_TO_TORCH_BACKEND, "ONNX")
    require_convolution(module, name or "the ONNX model")
    arrays = onnx_frontend.random_inputs(inputs, shapes, seed)
    report, actual = _lower_run_compare(module, arrays, grouped_conv, backend, times, (on_start, on_stage))
    with timed_stage("onnxruntime", times, on_stage, on_start):
        expected = onnx_frontend.run_onnxruntime(proto, inputs, arrays)
    with timed_stage("compare", times, on_stage, on_start):
        comparisons = [compare(a, e) for a, e in zip(actual, expected, strict=False)]
        if len(actual) != len(expected):
            comparisons.append(compare(np.zeros(0), np.zeros(1)))  # a missing output fails
        worst = max(comparisons, key=lambda c: (not c.passed, c.max_rel_error))
    label = name or (str(model) if isinstance(model, (str, Path)) else "onnx.ModelProto")
    return VerifyResult(label, list(shapes[0]) if shapes else [], backend, grouped_conv, report, worst, times)


def _lower_run_compare(module: Any, inputs: Sequence[object], grouped_conv: str | None, backend: str,
                       times: dict[str, float], hooks: tuple[StartHook | None, StageHook | None]
                       ) -> tuple[RewriteReport, list[np.ndarray]]:
    """The shared tail: plugin (report recorded), linalg, compile for `backend`, one run on `inputs`."""
    on_start, on_stage = hooks
    with timed_stage("plugin", times, on_stage, on_start):
        report = record_report(apply_strategy(module, grouped_conv))
    with timed_stage("linalg", times, on_stage, on_start):
        lower_to_linalg(module)
    with timed_stage("compile", times, on_stage, on_start):
        compiled = load(module, backend)
    with timed_stage("run", times, on_stage, on_start):
        actual = compiled(*inputs)
    return report, actual


def run_eagerly(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """PyTorch's result (for f16/bf16 input: the model run in f64, the
    reference reduced precision is compared with); an error the model raises
    becomes a one-line `ModelInputError`."""
    if x.dtype in (torch.float16, torch.bfloat16):
        model, x = copy.deepcopy(model).double(), x.double()
    try:
        with torch.no_grad():
            return model(x).numpy()
    except Exception as e:  # noqa: BLE001 - whatever the model raises is the user's input problem
        raise ModelInputError.from_exception(type(model).__name__, [list(x.shape)], "eager run", e) from e
