"""Compile each registered case once per test session, shared by the e2e and
IR tests. Importing this module registers every case module, so the registry
is the same whichever test file is collected first.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support import cases_conv2d, cases_forms  # noqa: F401  (register their cases)
from tests.support.registry import CASES, CaseInputs, E2ECase
from torch_grouped_conv.report import RewriteReport


@dataclass(frozen=True)
class Compiled:
    """A compiled case and the report of the `compile` call that made it.

    `module` is shared between tests: treat it as read-only (the runners copy
    it before lowering further).
    """

    module: ir.Module
    report: RewriteReport


@functools.cache
def compiled(name: str, grouped_conv: str | None = "grouped", output_type: str = "linalg-on-tensors") -> Compiled:
    case = CASES[name]
    module = tgc.compile(
        eval_module(case), *case.make_inputs(), grouped_conv=grouped_conv,
        output_type=output_type, dynamic_shapes=case.dynamic_shapes,
    )
    report = tgc.last_report()
    assert report is not None
    return Compiled(module, report)


def eval_module(case: E2ECase) -> torch.nn.Module:
    return case.make_module().eval()


def all_inputs(case: E2ECase) -> list[CaseInputs]:
    """The export inputs, then any `more_inputs` (other concrete shapes)."""
    return [case.make_inputs(), *(case.more_inputs() if case.more_inputs else [])]


def eager(case: E2ECase, inputs: CaseInputs) -> list[torch.Tensor]:
    """PyTorch's outputs on `inputs`, as a list like the runners return."""
    with torch.no_grad():
        out = eval_module(case)(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def print_ir(module: ir.Module) -> str:
    """The module's text, with large constants elided (for IR assertions and failure messages)."""
    return module.operation.get_asm(large_elements_limit=16)


def op_names(module: ir.Module) -> list[str]:
    """Every op name in `module`, in walk order (pre-order)."""
    names: list[str] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        names.append(op.name)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit, ir.WalkOrder.PRE_ORDER)
    return names


def case_params(names: list[str] | None = None, backend: str | None = None) -> list:
    """`pytest.param(name, marks=..., id=name)` for `names` (default: all cases).

    The case's `marks` always apply; its `backend_marks[backend]` apply too
    when the tests run on `backend` (None: tests that run no backend).
    """
    return [pytest.param(n, marks=case_marks(CASES[n], backend), id=n) for n in (names if names is not None else CASES)]


def case_marks(case: E2ECase, backend: str | None) -> list:
    return [*case.marks, *(case.backend_marks.get(backend, ()) if backend is not None else ())]
