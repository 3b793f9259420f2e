"""Execute linalg-on-tensors modules: `load` compiles once, `run` calls once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch_mlir import ir

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.runners.common import as_numpy
from torch_grouped_conv.runners.target import Target

BACKENDS = ("refbackend", "iree")

Program = Callable[..., list[np.ndarray]]


def load(module: ir.Module | str | os.PathLike[str], backend: str | None = None, threads: int | None = None,
         target: Target | None = None) -> Callable[..., list[np.ndarray]]:
    """Compile `module` (linalg-on-tensors, entry `@main`) for `backend`
    (default refbackend) once; or load a saved IREE module, `module` being its
    path (`tgc.save`, `compile -o X.vmfb`; its sidecar's signature checks the
    calls).

    IREE only: `threads` (1: local-sync, on the calling thread; N: local-task
    with N workers, one count per process; None: IREE's default, or the count
    a saved module was compiled for) and `target` (a `Target` of this
    machine's architecture, e.g. `Target(cpu="x86-64-v3")`; default the host).

    Returns a callable taking torch tensors or numpy arrays and returning a
    list of numpy arrays, one per result, with the model's dtypes (uint8
    stays uint8, bool stays bool). Each call checks its inputs against the
    module's signature first (count, dtype, rank, static dims): anything the
    module was not compiled for is an InputError. The callable may be called
    from several threads at once. The module itself is not modified.

    InputError also for a backend not in BACKENDS and for a module that is
    not linalg-on-tensors with an `@main` taking and returning tensors.
    """
    if backend is not None and backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if isinstance(module, (str, os.PathLike)):
        program = _saved(Path(module), backend, threads, target)
    else:
        program = _compiled(module, backend or "refbackend", threads, target)

    def call(*inputs: object) -> list[np.ndarray]:
        return program(*[as_numpy(x) for x in inputs])

    call.program = program  # type: ignore[attr-defined]  # e.g. IREE's compile_warnings
    return call


def _compiled(module: ir.Module, backend: str, threads: int | None, target: Target | None) -> Program:
    if backend == "refbackend":
        from torch_grouped_conv.runners.refbackend import RefBackendProgram

        if threads is not None or target is not None:
            raise InputError("threads= and target= are options of backend='iree'; the embedded runner "
                             "(refbackend) runs on the calling thread, for the host")
        return RefBackendProgram(module)
    from torch_grouped_conv.runners.iree import IreeProgram

    return IreeProgram(module, threads=threads, target=target if target is not None else Target())


def _saved(path: Path, backend: str | None, threads: int | None, target: Target | None) -> Program:
    from torch_grouped_conv.runners.artifact import load_saved

    if not path.is_file():
        raise InputError(f"{str(path)!r} does not exist; load/run take a linalg-on-tensors module (from tgc.compile "
                         "or tgc.compile_onnx) or the path of a module saved by tgc.save")
    if backend not in (None, "iree"):
        raise InputError(f"{str(path)!r} is a saved IREE module; load it with backend='iree' (the default for a path)")
    if target is not None:
        raise InputError("a saved module was compiled for its target already (see its .json sidecar); "
                         "load it without target=, or save it again for another target")
    return load_saved(path, threads)


def run(module: ir.Module | str | os.PathLike[str], *inputs: object, backend: str | None = None) -> list[np.ndarray]:
    """Execute `module` once on `inputs`: `load(module, backend)(*inputs)`
    (backend None: refbackend for a module, iree for a saved module's path)."""
    return load(module, backend)(*inputs)
