"""The verify job: export -> torch IR -> plugin -> linalg -> compile -> run ->
compare with PyTorch eager, timing every stage. The CLI's `verify` and `demo`
commands are thin wrappers around `verify_model`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from torch_grouped_conv import api
from torch_grouped_conv.errors import InputError, ModelInputError
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.driver import convolution_ops
from torch_grouped_conv.runners import load

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


@contextmanager
def _stage(name: str, times: dict[str, float], on_done: StageHook | None) -> Iterator[None]:
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
    grouped_conv: str | None = "grouped",
    on_stage: StageHook | None = None,
) -> VerifyResult:
    """Compile `model` with the plugin, run it on `backend`, compare with eager."""
    times: dict[str, float] = {}
    with _stage("export", times, on_stage):
        program = api.export_program(model, x)
    with _stage("torch IR", times, on_stage):
        module = api.import_to_torch(program)
    if not convolution_ops(module):
        raise InputError(f"{name} has no convolution (no torch.aten.convolution after import); give a model with one")
    with _stage("plugin", times, on_stage):
        report = api.apply_strategy(module, grouped_conv)
    with _stage("linalg", times, on_stage):
        api.lower_to_linalg(module)
    with _stage("compile", times, on_stage):
        compiled = load(module, backend)
    with _stage("run", times, on_stage):
        [actual] = compiled(x)
    with _stage("compare", times, on_stage):
        expected = run_eagerly(model, x)
        comparison = compare(actual, expected, x.dtype)
    return VerifyResult(name, list(x.shape), backend, grouped_conv, report, comparison, times)


def run_eagerly(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """PyTorch's result; an error the model raises becomes a one-line `ModelInputError`."""
    try:
        with torch.no_grad():
            return model(x).numpy()
    except Exception as e:  # noqa: BLE001 - whatever the model raises is the user's input problem
        raise ModelInputError.from_exception(type(model).__name__, [list(x.shape)], "eager run", e) from e
