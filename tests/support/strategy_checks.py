"""Shared by the strategy test files: compile a grid config (2D
`Conv2dConfig`, or any `ConvConfig`) once per (strategy, output type), and
check a strategy's numbers against PyTorch eager."""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.tolerances import tolerance
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.runners.common import as_numpy


class ConvConfig(Protocol):
    """A hashable single-convolution config: its module, input, report case label and dtype."""

    @property
    def case(self) -> str: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def make_module(self) -> torch.nn.Module: ...

    def make_input(self) -> torch.Tensor: ...


@functools.cache
def compile_config(config: ConvConfig, strategy: str,
                   output_type: str = "linalg-on-tensors") -> tuple[ir.Module, RewriteReport]:
    module = tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv=strategy,
                         output_type=output_type)
    report = tgc.last_report()
    assert report is not None
    return module, report


def check_matches_eager(config: ConvConfig, strategy: str, backend: str, label: str) -> None:
    """The strategy's report case, a warning-free IREE compile, and allclose to eager."""
    module, report = compile_config(config, strategy)
    assert [d.case for d in report.decisions] == [config.case], report.summary()
    program = tgc.load(module, backend=backend)
    if backend == "iree":
        assert program.program.compile_warnings == ""
    x = config.make_input()
    with torch.no_grad():
        expected = as_numpy(config.make_module().eval()(x))  # bf16 as ml_dtypes.bfloat16
    (actual,) = program(x)
    assert (actual.shape, actual.dtype) == (expected.shape, expected.dtype), label
    rtol, atol = tolerance(config.dtype)
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol,
                               err_msg=f"{strategy} {label}")
