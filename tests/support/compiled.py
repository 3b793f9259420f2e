"""Compile once per test session, shared by every e2e and IR test: the one
`compiled` helper, and the checks against PyTorch eager. Importing this
module registers every case module, so the registry is the same whichever
test file is collected first.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, NamedTuple, Protocol

import numpy as np
import pytest
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support import cases_conv2d, cases_forms  # noqa: F401  (register their cases)
from tests.support.configs import ConvConfig
from tests.support.registry import CASES, CaseInputs, E2ECase
from tests.support.tolerances import reference, tolerance
from torch_grouped_conv.frontends import torch_export
from torch_grouped_conv.importer import torch_context
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.runners.common import as_numpy, module_bytecode


class Compilable(Protocol):
    """What `compiled` takes besides a registered case's name: a hashable
    source of a module and its export inputs (a `ConvConfig`, a network config)."""

    @property
    def dynamic_shapes(self) -> Any: ...

    def make_module(self) -> torch.nn.Module: ...

    def make_inputs(self) -> tuple[torch.Tensor, ...]: ...


class Compiled(NamedTuple):
    """A compiled module and the report of the `compile` call that made it.

    `module` is shared between tests: treat it as read-only (the runners copy
    it before lowering further).
    """

    module: ir.Module
    report: RewriteReport


Import = tuple[bytes, torch.export.ExportedProgram]

# An import whose weights take at most this many bytes is kept for the session
# (the grids' and cases' convs and blocks); larger ones (real layer shapes, up
# to ~10 MB of weights each, held twice) only while they are among the last four.
# It is kept as bytecode: a live module holds an MLIR context of its own (~2.7 MiB, `compiled`).
KEEP_BYTES = 1 << 20
_kept: dict[str | Compilable, Import] = {}


def imported(subject: str | Compilable) -> Import:
    """`subject` exported and imported to torch-backend IR (tgc.compile's first
    two stages; the module as bytecode, parse it with `in_new_context`), once
    per worker for a small subject: every strategy, output type and test file
    that compiles it shares the import (~0.25 s each). With the last four alone
    kept, a grid's subject was imported again for each of its strategies and
    files: 741 imports of 418 subjects in the four e2e grid and case files."""
    found = _kept.get(subject)
    if found is None:
        found = _recent_import(subject)
        if weight_bytes(found[1]) <= KEEP_BYTES:
            _kept[subject] = found
    return found


def weight_bytes(program: torch.export.ExportedProgram) -> int:
    tensors = [*program.state_dict.values(), *program.constants.values()]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


@functools.lru_cache(maxsize=4)
def _recent_import(subject: str | Compilable) -> Import:
    source: E2ECase | Compilable = CASES[subject] if isinstance(subject, str) else subject
    program = torch_export.export_program(source.make_module().eval(), *source.make_inputs(),
                                          dynamic_shapes=source.dynamic_shapes)
    return module_bytecode(torch_export.import_to_torch(program)), program


def in_new_context(bytecode: bytes) -> ir.Module:
    """The module in a context of its own (as torch-mlir's import makes one):
    its weights keep their resource names, where a copy in the same context
    gets renamed ones, so that strategies emitting the same IR give the same
    bytecode (`load` keys programs by it)."""
    return ir.Module.parse(bytecode, context=torch_context())


@functools.lru_cache(maxsize=64)
def compiled(subject: str | Compilable, grouped_conv: str | None = "grouped",
             output_type: str = "linalg-on-tensors") -> Compiled:
    """`subject` (a registered case's name, or a `Compilable`) compiled with
    `grouped_conv` as `tgc.compile` does (its import shared by the strategies),
    once per session and (subject, strategy, output type): `lowered` keeps a
    linalg module as bytecode, and the last 64 are kept parsed, shared by the
    tests that ask for them in turn (treat them as read-only). A live module
    holds an MLIR context of its own (~2.7 MiB): a worker compiles about a
    thousand, which kept alive took most of its memory. The torch-form modules
    (a few IR tests; their torch_c ops need torch-mlir's own context) stay live."""
    kept, report = lowered(subject, grouped_conv, output_type)
    return Compiled(in_new_context(kept) if isinstance(kept, bytes) else kept, report)


@functools.cache
def lowered(subject: str | Compilable, grouped_conv: str | None,
            output_type: str) -> tuple[bytes | ir.Module, RewriteReport]:
    bytecode, program = imported(subject)
    module = torch_export.lower_imported(in_new_context(bytecode), program, grouped_conv, output_type)
    report = tgc.last_report()
    assert report is not None
    return (module_bytecode(module) if output_type == "linalg-on-tensors" else module), report


def eval_module(case: E2ECase) -> torch.nn.Module:
    return case.make_module().eval()


def all_inputs(case: E2ECase) -> list[CaseInputs]:
    """The export inputs, then any `more_inputs` (other concrete shapes)."""
    return [case.make_inputs(), *(case.more_inputs() if case.more_inputs else [])]


def eager(case: E2ECase, inputs: CaseInputs) -> list[torch.Tensor]:
    """PyTorch's outputs on `inputs` (f16/bf16: the f64 reference, tolerances.py),
    as a list like the runners return."""
    out = reference(eval_module(case), *inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_close(actual: np.ndarray, expected: torch.Tensor, label: str) -> None:
    """A runner's output has PyTorch's shape and element type (bf16 as
    ml_dtypes.bfloat16) and its values within the dtype's tolerance."""
    want = as_numpy(expected)
    assert (actual.shape, actual.dtype) == (want.shape, want.dtype), label
    rtol, atol = tolerance(expected.dtype)
    np.testing.assert_allclose(actual.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                               err_msg=label)


SMALL_KEPT = 24  # programs of modules under BIG_BYTES kept (a subject: 8 strategies x 2 runners)
BIG_KEPT = 1  # programs of larger modules (a whole net's weights) kept
BIG_BYTES = 4 << 20


def load(module: ir.Module, backend: str) -> Any:
    """`tgc.load(module, backend)`; on IREE, the compile must be warning-free.

    Programs are reused by content: a module whose bytecode equals one loaded
    on `backend` before (the same module loaded twice by a test, or two
    strategies that emit the same IR, as `auto` and the one it picks do)
    gets that program (a program takes any number of calls). The last
    `SMALL_KEPT` programs of small modules are kept, and the last `BIG_KEPT`
    of modules over `BIG_BYTES`: keeping 8 of every size held whole nets'
    weights and raised the suite's peak RSS from 4.4 to 4.7 GB."""
    source = module_bytecode(module)
    key = (hashlib.sha256(source).hexdigest(), backend, len(source) >= BIG_BYTES)
    program = _LOADED.pop(key, None)
    if program is None:
        program = tgc.load(module, backend=backend)
        if backend == "iree":
            assert program.program.compile_warnings == ""
    _LOADED[key] = program  # most recently used last
    for big, kept in ((False, SMALL_KEPT), (True, BIG_KEPT)):
        same_size = [k for k in _LOADED if k[2] == big]
        for old in same_size[:max(0, len(same_size) - kept)]:
            del _LOADED[old]
    return program


_LOADED: dict[tuple[str, str, bool], Any] = {}


def check_matches_eager(config: ConvConfig, strategy: str, backend: str, label: str) -> None:
    """A single-conv config under `strategy`:
    the report's case, a warning-free IREE compile, and allclose to eager."""
    module, report = compiled(config, strategy)
    assert [d.case for d in report.decisions] == [config.case], report.summary()
    x = config.make_input()
    expected = reference(config.make_module().eval(), x)
    (actual,) = load(module, backend)(x)
    assert_close(actual, expected, f"{strategy} {label}")


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
