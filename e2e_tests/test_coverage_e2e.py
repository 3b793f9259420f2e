"""Run the `cov_` e2e cases (e2e_tests/cases_coverage.py) on both backends.

Each case is compiled once with the plugin; the test checks the report's
counts and the linalg ops, then runs every input tuple (the export example and,
for dynamic cases, `more_inputs`) on refbackend and IREE against PyTorch eager
CPU at the tolerances of e2e_tests/tolerances.py. IREE must compile without
warnings.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import torch_grouped_conv as tgc

from . import cases_coverage
from .registry import CASES, E2ECase
from .tolerances import tolerance

COVERAGE_CASES = sorted(n for n in CASES if n.startswith(cases_coverage.COVERAGE_PREFIX))


@functools.cache
def compiled(name: str) -> tuple[object, tgc.RewriteReport, torch.nn.Module]:
    case = CASES[name]
    model = case.make_module().eval()
    module = tgc.compile(model, *case.make_inputs(), dynamic_shapes=case.dynamic_shapes)
    report = tgc.last_report()
    assert report is not None
    return module, report, model


def params() -> list[object]:
    out = []
    for name in COVERAGE_CASES:
        case = CASES[name]
        for backend in tgc.BACKENDS:
            marks = case.marks + case.backend_marks.get(backend, ())
            out.append(pytest.param(name, backend, marks=marks, id=f"{name}-{backend}"))
    return out


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().numpy() if t.dtype in (torch.float16, torch.bfloat16) else t.detach().numpy()


def check_close(case: E2ECase, got: np.ndarray, expected: torch.Tensor) -> float:
    rtol, atol = tolerance(expected.dtype)
    want = to_numpy(expected)
    got32 = got.astype(want.dtype)
    assert got32.shape == want.shape, f"{case.name}: shape {got32.shape} != PyTorch {want.shape}"
    err = float(np.abs(got32 - want).max()) if want.size else 0.0
    assert np.allclose(got32, want, rtol=rtol, atol=atol), f"{case.name}: max abs error {err}"
    return err


@pytest.mark.parametrize("name", [pytest.param(n, marks=CASES[n].marks) for n in COVERAGE_CASES])
def test_report_and_ops(name: str) -> None:
    case = CASES[name]
    module, report, _ = compiled(name)
    assert report.counts() == case.expected_counts, report.summary()
    text = str(module)
    for op in case.expected_ops:
        assert op in text, f"{name}: {op} not in the lowered IR"


@pytest.mark.parametrize(("name", "backend"), params())
def test_numerics(name: str, backend: str) -> None:
    case = CASES[name]
    module, _, model = compiled(name)
    program = tgc.load(module, backend)
    if backend == "iree":
        assert program.program.compile_warnings == ""  # type: ignore[attr-defined]
    all_inputs = [case.make_inputs()] + (case.more_inputs() if case.more_inputs else [])
    for inputs in all_inputs:
        with torch.no_grad():
            expected = model(*inputs)
        [got] = program(*inputs)
        check_close(case, got, expected)


def test_case_grid_is_complete() -> None:
    """Every (rank, case, transposed) combination has a case."""
    for rank in (1, 2, 3):
        for case in cases_coverage.CHANNELS:
            for prefix in ("", "transposed_"):
                assert f"cov_{rank}d_{prefix}{case}" in CASES
