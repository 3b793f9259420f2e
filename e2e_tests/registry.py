"""The e2e case registry: each case is a small torch.nn.Module plus example
inputs, compiled with the plugin, run on both backends and compared with
PyTorch eager. Register cases with `register(E2ECase(...))`, generated from
grids rather than written out one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

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
    - `marks`: pytest marks for the case (e.g. xfail with a reason, slow).
    - `backend_marks`: marks for one backend only, e.g.
      {"iree": (pytest.mark.xfail(reason=..., strict=True),)}.
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
    if case.name in CASES:
        raise ValueError(f"duplicate e2e case name {case.name!r}")
    CASES[case.name] = case
    return case
