"""The torch.export frontend: `compile(model, *example_args)`.

torch.export (non-strict) -> torch-mlir's FX importer and torch-backend
pipeline -> the shared stages (plugin, linalg).
"""

from __future__ import annotations

from typing import Any

import torch
from torch_mlir import fx, ir
from torch_mlir.compiler_utils import TorchMlirCompilerError

from torch_grouped_conv.errors import CompileError, ModelInputError
from torch_grouped_conv.importer import FastLiteralHooks, fx_importer
from torch_grouped_conv.stages import PLUGIN_LEGAL_OPS, check_options, finish


def compile(
    model: torch.nn.Module,
    *example_args: Any,
    grouped_conv: str | None = "grouped",
    output_type: str = "linalg-on-tensors",
    dynamic_shapes: Any = None,
    **export_kwargs: Any,
) -> ir.Module:
    """Export `model` with torch-mlir and lower its convolutions with the plugin.

    Same meaning as `torch_mlir.fx.export_and_import(model, *example_args,
    dynamic_shapes=..., **export_kwargs)`, plus:

    - `grouped_conv`: the plugin's strategy ("grouped"), or None to leave every
      convolution to torch-mlir's own lowering (for comparison).
    - `output_type`: "linalg-on-tensors" (default) or "torch" for the IR right
      after our rewrite, before torch-mlir's linalg pipeline.

    The RewriteReport of this call is returned by `last_report()`.
    """
    check_options(grouped_conv, output_type)
    module = import_to_torch(export_program(model, *example_args, dynamic_shapes=dynamic_shapes, **export_kwargs))
    return finish(module, grouped_conv, output_type)


def export_program(model: torch.nn.Module, *example_args: Any, dynamic_shapes: Any = None,
                   **export_kwargs: Any) -> torch.export.ExportedProgram:
    """Stage 1: torch.export (non-strict, as torch_mlir.fx does).

    Any error raised while tracing the user's model (e.g. it rejects the
    example input's shape) becomes a one-line `ModelInputError`.
    """
    strict = export_kwargs.pop("strict", False)
    try:
        return torch.export.export(model, example_args, export_kwargs or None, dynamic_shapes=dynamic_shapes,
                                   strict=strict)
    except Exception as e:  # noqa: BLE001 - whatever the model raises is the user's input problem
        raise ModelInputError.from_exception(type(model).__name__, input_shapes(example_args), "torch.export", e) from e


def input_shapes(args: tuple[Any, ...]) -> list[list[int]]:
    """The shapes of the tensor arguments, for messages."""
    return [list(a.shape) for a in args if isinstance(a, torch.Tensor)]


def import_to_torch(program: torch.export.ExportedProgram) -> ir.Module:
    """Stage 2: torch-mlir's FX import and torch-backend pipeline (decompositions included).

    Weights are imported by `FastLiteralHooks` (see importer.py): same IR, without
    torch-mlir's per-element Python conversion. `PLUGIN_LEGAL_OPS` stay as they are.
    Each op's location is named by the PyTorch module it came from (importer.py
    `ModulePathLocations`), for the report's `module_path`.
    """
    try:
        hooks = FastLiteralHooks()
        return fx.export_and_import(program, output_type="torch", hooks=hooks, fx_importer=fx_importer(hooks),
                                    backend_legal_ops=list(PLUGIN_LEGAL_OPS))
    except TorchMlirCompilerError as e:
        raise CompileError(f"torch-mlir's import to torch-backend IR failed (before the plugin ran):\n{e}") from None
