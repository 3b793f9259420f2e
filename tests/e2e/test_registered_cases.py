"""End to end: every registered case (tests/support/cases_conv2d.py and
cases_forms.py) compiled once with the plugin, its report and linalg ops
checked, then every input tuple (the export example and, for dynamic cases,
`more_inputs`) run on both backends and compared with PyTorch eager (eval
mode, no_grad) at the tolerances of tests/support/tolerances.py. IREE must compile
without warnings. Expected failures come from the case (`marks`,
`backend_marks`, see registry.py)."""

from __future__ import annotations

import pytest

from tests.support import cases_forms
from tests.support.compiled import all_inputs, assert_close, case_params, compiled, eager, load, op_names, print_ir
from tests.support.registry import CASES, E2ECase, register
from torch_grouped_conv import BACKENDS

# Cases compiled again with the plugin off (torch-mlir's own lowering), to check
# that the comparison baseline itself works: one per lowering case, plus the net.
PLUGIN_OFF_CASES = ["conv2d_conv", "conv2d_depthwise_stride2", "conv2d_grouped_in9x13", "conv2d_network_mixed"]


def assert_matches_eager(name: str, program, case_inputs) -> None:
    """The runner's outputs match PyTorch's (tests.support.compiled.assert_close)."""
    actual = program(*case_inputs)
    expected = eager(CASES[name], case_inputs)
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert_close(got, want, f"case {name}")


@pytest.mark.parametrize("name", case_params())
def test_report_counts_and_ops(name: str) -> None:
    case = CASES[name]
    result = compiled(name)
    assert result.report.strategy == "grouped"
    assert result.report.counts() == case.expected_counts, result.report.summary()
    names = set(op_names(result.module))
    missing = [op for op in case.expected_ops if op not in names]
    assert not missing, f"{missing} not in the lowered IR:\n{print_ir(result.module)}"
    assert "torch.aten.convolution" not in names


@pytest.mark.parametrize(
    ("name", "backend"),
    [pytest.param(p.values[0], backend, marks=p.marks, id=f"{p.id}-{backend}")
     for backend in BACKENDS for p in case_params(backend=backend)],
)
def test_matches_eager(name: str, backend: str) -> None:
    program = load(compiled(name).module, backend)
    for case_inputs in all_inputs(CASES[name]):
        assert_matches_eager(name, program, case_inputs)


@pytest.mark.parametrize("name", case_params(PLUGIN_OFF_CASES, backend="refbackend"))
def test_plugin_off_matches_eager(name: str) -> None:
    result = compiled(name, grouped_conv=None)
    assert result.report.strategy is None
    assert result.report.decisions == []
    assert result.report.summary().startswith("plugin off")
    program = load(result.module, "refbackend")
    for case_inputs in all_inputs(CASES[name]):
        assert_matches_eager(name, program, case_inputs)


def test_coverage_grid_is_complete() -> None:
    """Every (spatial rank, case, forward/transposed) combination has a case."""
    for rank in (1, 2, 3):
        for case in cases_forms.CHANNELS:
            for prefix in ("", "transposed_"):
                assert f"cov_{rank}d_{prefix}{case}" in CASES


@pytest.mark.parametrize(("marks", "backend_marks", "error"), [
    ((pytest.mark.xfail(reason="flaky"),), {}, "strict=True with a reason"),
    ((), {"iree": (pytest.mark.xfail(strict=True),)}, "strict=True with a reason"),
    ((), {"cuda": ()}, r"unknown backend\(s\) \['cuda'\]"),
])
def test_register_rejects_lax_marks(marks: tuple, backend_marks: dict, error: str) -> None:
    case = E2ECase("lax", lambda: None, lambda: (), {"conv": 1}, marks=marks, backend_marks=backend_marks)
    with pytest.raises(ValueError, match=error):
        register(case)
    assert "lax" not in CASES


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_kernel_under_auto_falls_back_and_matches_eager(backend: str) -> None:
    """`auto` (what users run) on a kernel known only at run time: the default
    emitter, a note saying why, and the same numbers on every kernel size."""
    name = "cov_dynk_2d_grouped"
    result = compiled(name, grouped_conv="auto")
    [decision] = result.report.decisions
    assert decision.strategy == "grouped" and "known only at run time" in (decision.note or "")
    program = load(result.module, backend)
    for case_inputs in all_inputs(CASES[name]):
        assert_matches_eager(name, program, case_inputs)
