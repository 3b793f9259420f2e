"""Execute linalg-on-tensors modules: `load` compiles once, `run` calls once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch_mlir import ir

from torch_grouped_conv.runners.common import as_numpy

BACKENDS = ("refbackend", "iree")

Program = Callable[..., list[np.ndarray]]


def load(module: ir.Module, backend: str = "refbackend") -> Callable[..., list[np.ndarray]]:
    """Compile `module` (linalg-on-tensors, entry `@main`) for `backend` once.

    Returns a callable taking torch tensors or numpy arrays and returning a
    list of numpy arrays, one per result. The module itself is not modified.
    """
    if backend == "refbackend":
        from torch_grouped_conv.runners.refbackend import RefBackendProgram

        program: Program = RefBackendProgram(module)
    elif backend == "iree":
        from torch_grouped_conv.runners.iree import IreeProgram

        program = IreeProgram(module)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")

    def call(*inputs: object) -> list[np.ndarray]:
        return program(*[as_numpy(x) for x in inputs])

    call.program = program  # type: ignore[attr-defined]  # e.g. IREE's compile_warnings
    return call


def run(module: ir.Module, *inputs: object, backend: str = "refbackend") -> list[np.ndarray]:
    """Execute `module` once on `inputs`: `load(module, backend)(*inputs)`."""
    return load(module, backend)(*inputs)
