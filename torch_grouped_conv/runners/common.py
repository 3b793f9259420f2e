"""Helpers the runners share: module copies and pass pipelines with reproducers."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence

import ml_dtypes
import numpy as np
from torch_mlir import ir, passmanager

from torch_grouped_conv.errors import CompileError


def module_bytecode(module: ir.Module) -> bytes:
    """MLIR bytecode of `module`: much faster than text for models with weights."""
    buffer = io.BytesIO()
    module.operation.write_bytecode(buffer)
    return buffer.getvalue()


def clone_module(module: ir.Module) -> ir.Module:
    """An independent copy in the same context, so lowering never mutates the caller's module."""
    return ir.Module.parse(module_bytecode(module), context=module.context)


def run_pipeline(module: ir.Module, passes: Sequence[str], stage: str) -> None:
    """Run `builtin.module(passes...)` on `module` in place.

    On failure raise CompileError with the diagnostics and a reproducer: the
    input IR in a file and the torch-mlir-opt command that replays it.
    """
    pipeline = "builtin.module(" + ",".join(passes) + ")"
    diagnostics: list[str] = []

    def collect(diagnostic: ir.Diagnostic) -> bool:
        diagnostics.append(f"{diagnostic.location}: {diagnostic.message}")
        return True  # handled: keep it off stderr

    snapshot = module_bytecode(module)  # cheap; printed only on failure
    with module.context:
        handler = module.context.attach_diagnostic_handler(collect)
        try:
            passmanager.PassManager.parse(pipeline).run(module.operation)
        except Exception as e:
            path = _write_reproducer(snapshot)
            details = "\n".join(diagnostics) or str(e)
            raise CompileError(
                f"{stage} failed:\n{details}\nreproduce with: torch-mlir-opt --pass-pipeline='{pipeline}' {path}"
            ) from None
        finally:
            handler.detach()


def _write_reproducer(bytecode: bytes) -> str:
    with tempfile.NamedTemporaryFile("wb", suffix=".mlirbc", prefix="torch_grouped_conv_", delete=False) as f:
        f.write(bytecode)
        return f.name


def as_numpy(value: object) -> np.ndarray:
    """Accept torch tensors and numpy arrays (and anything numpy can read).

    numpy has no bfloat16: a torch.bfloat16 tensor becomes an array of
    ml_dtypes.bfloat16 (same bits, viewed through uint16).
    """
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        tensor = value.detach().cpu().contiguous()
        if str(tensor.dtype) == "torch.bfloat16":
            import torch

            return tensor.view(torch.uint16).numpy().view(ml_dtypes.bfloat16)
        return tensor.numpy()
    return np.asarray(value)
