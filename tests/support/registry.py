"""The e2e case registry: each case is a small torch.nn.Module plus example
inputs, compiled with the plugin, run on both backends and compared with
PyTorch eager. Register cases with `register(E2ECase(...))`, generated from
grids rather than written out one by one.

Expected failures sit on the case: `marks` for every test of the case,
`backend_marks[backend]` for that backend's runs only. An xfail must be strict
and say why, so a fix (or a new failure) is noticed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from torch_grouped_conv.runners import BACKENDS

CaseInputs = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class E2ECase:
    """One end-to-end case.

    - `make_module` builds the module (seeded, eval mode is applied by the runner).
    - `make_inputs` builds the example inputs used for export.
    - `expected_counts`: the RewriteReport counts the plugin must produce,
      e.g. {"grouped": 1}; a refusal counts under "refused".
    - `expected_ops`: linalg op names that must appear in the lowered IR.
    - `dynamic_shapes`: passed to `compile`; `more_inputs` are further input
      tuples of other concrete shapes, run on the same compiled module.
    - `marks`: pytest marks for every test of the case (e.g. a strict xfail
      with a reason when the case cannot even be compiled).
    - `backend_marks`: marks for one backend's runs only, e.g.
      {"iree": (pytest.mark.xfail(reason=..., strict=True),)}; keys are
      names from `torch_grouped_conv.BACKENDS`.
    """

    name: str
    make_module: Callable[[], torch.nn.Module]
    make_inputs: Callable[[], CaseInputs]
    expected_counts: dict[str, int]
    expected_ops: tuple[str, ...] = ()
    dynamic_shapes: Any = None
    more_inputs: Callable[[], list[CaseInputs]] | None = None
    marks: tuple[Any, ...] = field(default_factory=tuple)
    backend_marks: dict[str, tuple[Any, ...]] = field(default_factory=dict)


CASES: dict[str, E2ECase] = {}


def register(case: E2ECase) -> E2ECase:
    """Add `case` to CASES; reject duplicate names, unknown backends and lax xfails."""
    if case.name in CASES:
        raise ValueError(f"duplicate e2e case name {case.name!r}")
    unknown = sorted(set(case.backend_marks) - set(BACKENDS))
    if unknown:
        raise ValueError(f"case {case.name!r}: backend_marks for unknown backend(s) {unknown}; known: {BACKENDS}")
    for mark in (*case.marks, *(m for marks in case.backend_marks.values() for m in marks)):
        _check_xfail(case.name, mark)
    CASES[case.name] = case
    return case


def _check_xfail(name: str, mark: Any) -> None:
    """An xfail on a case is strict and has a reason (see the module docstring)."""
    if getattr(mark, "name", None) != "xfail":
        return
    if mark.kwargs.get("strict") is not True or not mark.kwargs.get("reason"):
        raise ValueError(f"case {name!r}: xfail marks must be strict=True with a reason, got {mark}")
