"""End to end: every registered case compiled once with the plugin, run on
both backends and compared with PyTorch eager (eval mode, no_grad)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torch_grouped_conv as tgc

from .compiled import all_inputs, case_params, compiled, eager, op_names, print_ir
from .registry import CASES
from .tolerances import tolerance

BACKENDS = ("refbackend", "iree")

# Cases compiled again with the plugin off (torch-mlir's own lowering), to check
# that the comparison baseline itself works: one per lowering case, plus the net.
PLUGIN_OFF_CASES = ["conv2d_conv", "conv2d_depthwise_stride2", "conv2d_grouped_in9x13", "conv2d_network_mixed"]


def assert_matches_eager(name: str, program, case_inputs) -> None:
    case = CASES[name]
    actual = program(*case_inputs)
    expected = eager(case, case_inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype
        rtol, atol = tolerance(torch.from_numpy(e).dtype)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"case {name}")


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
    program = tgc.load(compiled(name).module, backend=backend)
    if backend == "iree":
        assert program.program.compile_warnings == ""
    for case_inputs in all_inputs(CASES[name]):
        assert_matches_eager(name, program, case_inputs)


@pytest.mark.parametrize("name", case_params(PLUGIN_OFF_CASES, backend="refbackend"))
def test_plugin_off_matches_eager(name: str) -> None:
    result = compiled(name, grouped_conv=None)
    assert result.report.strategy is None
    assert result.report.decisions == []
    assert result.report.summary().startswith("plugin off")
    program = tgc.load(result.module, backend="refbackend")
    for case_inputs in all_inputs(CASES[name]):
        assert_matches_eager(name, program, case_inputs)
