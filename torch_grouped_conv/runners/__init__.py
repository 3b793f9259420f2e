"""Execute linalg-on-tensors modules: `load` compiles once, `run` calls once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch_mlir import ir

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.runners.common import as_numpy

BACKENDS = ("refbackend", "iree")

Program = Callable[..., list[np.ndarray]]


def load(module: ir.Module, backend: str = "refbackend") -> Callable[..., list[np.ndarray]]:
    """Compile `module` (linalg-on-tensors, entry `@main`) for `backend` once.

    Returns a callable taking torch tensors or numpy arrays and returning a
    list of numpy arrays, one per result, with the model's dtypes (uint8
    stays uint8, bool stays bool). Each call checks its inputs against the
    module's signature first (count, dtype, rank, static dims): anything the
    module was not compiled for is an InputError. The callable may be called
    from several threads at once. The module itself is not modified.

    InputError also for a backend not in BACKENDS and for a module that is
    not linalg-on-tensors with an `@main` taking and returning tensors.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "refbackend":
        from torch_grouped_conv.runners.refbackend import RefBackendProgram

        program: Program = RefBackendProgram(module)
    elif backend == "iree":
        from torch_grouped_conv.runners.iree import IreeProgram

        program = IreeProgram(module)
    else:
        raise AssertionError(backend)  # every name in BACKENDS has a branch above

    def call(*inputs: object) -> list[np.ndarray]:
        return program(*[as_numpy(x) for x in inputs])

    call.program = program  # type: ignore[attr-defined]  # e.g. IREE's compile_warnings
    return call


def run(module: ir.Module, *inputs: object, backend: str = "refbackend") -> list[np.ndarray]:
    """Execute `module` once on `inputs`: `load(module, backend)(*inputs)`."""
    return load(module, backend)(*inputs)
