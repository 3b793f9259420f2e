"""Public entry points: `compile` (PyTorch -> linalg with the plugin) and
`lower` (apply the plugin to torch-backend IR)."""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch_mlir import fx, ir
from torch_mlir.compiler_utils import OutputType, TorchMlirCompilerError, lower_mlir_module

from .errors import CompileError, InputError, ModelInputError
from .importer import FastLiteralHooks
from .report import RewriteReport
from .rewrite.pattern import STRATEGIES, apply_plugin, convolution_ops

OUTPUT_TYPES = ("torch", "linalg-on-tensors")

_last = threading.local()

# Ops that only exist before torch-mlir's torch-backend pipeline has run: a
# module holding one is raw import output, not torch-backend IR.
PRE_BACKEND_CONV_OPS = (
    "torch.aten.conv1d", "torch.aten.conv2d", "torch.aten.conv3d", "torch.aten._convolution",
    "torch.aten.conv_transpose1d", "torch.aten.conv_transpose2d", "torch.aten.conv_transpose3d",
)


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
    _check_options(grouped_conv, output_type)
    module = import_to_torch(export_program(model, *example_args, dynamic_shapes=dynamic_shapes, **export_kwargs))
    _last.report = apply_strategy(module, grouped_conv)
    if output_type == "torch":
        return module
    lower_to_linalg(module)
    return module


def apply_strategy(module: ir.Module, grouped_conv: str | None) -> RewriteReport:
    """Stage 3: the plugin with `grouped_conv`, or nothing (an empty report) for None."""
    return apply_plugin(module, grouped_conv) if grouped_conv is not None else RewriteReport(None)


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
    torch-mlir's per-element Python conversion.
    """
    try:
        return fx.export_and_import(program, output_type="torch", hooks=FastLiteralHooks())
    except TorchMlirCompilerError as e:
        raise CompileError(f"torch-mlir's import to torch-backend IR failed (before the plugin ran):\n{e}") from None


def lower_to_linalg(module: ir.Module) -> None:
    """Stage 4 (after the plugin): torch-mlir's torch-backend -> linalg-on-tensors pipeline, in place."""
    try:
        lower_mlir_module(False, OutputType.LINALG_ON_TENSORS, module)
    except TorchMlirCompilerError as e:
        raise CompileError(f"torch-mlir's linalg-on-tensors pipeline failed after the plugin ran:\n{e}") from None


def lower(module: ir.Module, grouped_conv: str = "grouped") -> RewriteReport:
    """Apply the plugin in place to `module` in torch-backend form (e.g. parsed
    from a file, or `compile(..., output_type="torch", grouped_conv=None)`).

    Raises InputError when the module is not torch-backend IR or has no
    convolution to lower.
    """
    _check_options(grouped_conv, "torch")
    check_torch_backend_form(module)
    report = apply_plugin(module, grouped_conv)
    _last.report = report
    return report


def last_report() -> RewriteReport | None:
    """The RewriteReport of the last `compile` or `lower` in this thread."""
    return getattr(_last, "report", None)


def check_torch_backend_form(module: ir.Module) -> None:
    """Refuse modules the plugin cannot meaningfully act on, with one clear line."""
    names: set[str] = set()

    def visit(op: ir.Operation) -> ir.WalkResult:
        names.add(op.name)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    raw = sorted(names.intersection(PRE_BACKEND_CONV_OPS))
    if raw:
        raise InputError(
            f"IR is not in torch-backend form (it has {', '.join(raw)}); run torch-mlir's "
            "torchdynamo-export-to-torch-backend-pipeline first, or use `compile`"
        )
    if not convolution_ops(module):
        raise InputError("the module has no torch.aten.convolution to lower; give IR that contains a convolution")


def _check_options(grouped_conv: str | None, output_type: str) -> None:
    if grouped_conv is not None and grouped_conv not in STRATEGIES:
        raise InputError(f"unknown grouped_conv={grouped_conv!r}; choose one of {', '.join(STRATEGIES)} or None")
    if output_type not in OUTPUT_TYPES:
        raise InputError(f"unknown output_type={output_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")
