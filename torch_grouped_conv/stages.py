"""The stages every frontend shares: (raw IR ->) torch-backend IR -> the plugin
-> linalg-on-tensors. Frontends (frontends/) only differ in how a model becomes
torch IR; from there on they call these functions, and record the plugin's
report here so that `last_report()` answers for whichever entry point ran last.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from torch_mlir import ir
from torch_mlir.compiler_utils import OutputType, TorchMlirCompilerError, lower_mlir_module

from torch_grouped_conv.errors import CompileError, InputError
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.driver import STRATEGIES, apply_plugin, convolution_ops
from torch_grouped_conv.runners.common import run_pipeline
from torch_grouped_conv.runners.signature import record_model_dtypes

OUTPUT_TYPES = ("torch", "linalg-on-tensors")

# Ops kept out of torch-mlir's decompositions at import, for the plugin to lower:
# its decomposition of aten.conv_tbc returns [B, F, T] unpermuted (rewrite/conv_tbc.py).
PLUGIN_LEGAL_OPS = ("aten.conv_tbc",)

# Raw IR -> torch-backend IR, per producer. One reason per line.
FX_TO_TORCH_BACKEND = [
    # Fuse dequantize/quantize pairs around ops into quantized ops (as torch_mlir.fx does).
    "func.func(torch-match-quantized-custom-ops)",
    # Shape/dtype refinement, decompositions, value semantics: the backend contract
    # (the plugin's own ops kept, as `compile` keeps them).
    f"torchdynamo-export-to-torch-backend-pipeline{{backend-legal-ops={','.join(PLUGIN_LEGAL_OPS)}}}",
]
ONNX_TO_TORCH_BACKEND = [
    # torch.operator "onnx.*" -> torch.aten.*, then the same backend contract
    # (quantized QLinearConv becomes a convolution on quantized tensors here).
    "torch-onnx-to-torch-backend-pipeline",
]

_last = threading.local()


def record_report(report: RewriteReport) -> RewriteReport:
    """Make `report` the answer of `last_report()` in this thread."""
    _last.report = report
    return report


def last_report() -> RewriteReport | None:
    """The RewriteReport of the last `compile`, `compile_onnx`, `lower`, plugin
    pass or torch.compile graph in this thread."""
    return getattr(_last, "report", None)


def apply_strategy(module: ir.Module | ir.Operation, grouped_conv: str | None) -> RewriteReport:
    """The plugin with `grouped_conv`, or nothing (an empty report) for None."""
    return apply_plugin(module, grouped_conv) if grouped_conv is not None else RewriteReport(None)


def to_torch_backend(module: ir.Module, passes: Sequence[str], producer: str) -> None:
    """Raw import output of `producer` -> torch-backend IR, in place (CompileError with a reproducer)."""
    run_pipeline(module, passes, f"torch-mlir's {producer} -> torch-backend pipeline (before the plugin ran)")


def require_convolution(module: ir.Module, name: str) -> None:
    """InputError unless `module` has an op the plugin lowers (checked before the long work)."""
    if not convolution_ops(module):
        raise InputError(f"{name} has no convolution (no torch.aten.convolution after import); give a model with one")


def lower_to_linalg(module: ir.Module) -> None:
    """After the plugin: torch-mlir's torch-backend -> linalg-on-tensors pipeline, in place.

    `@main` keeps the model's dtypes as attributes (linalg's i8 is signless:
    the runners view a ui8 result as uint8, see runners/signature.py)."""
    record_model_dtypes(module)
    try:
        lower_mlir_module(False, OutputType.LINALG_ON_TENSORS, module)
    except TorchMlirCompilerError as e:
        raise CompileError(f"torch-mlir's linalg-on-tensors pipeline failed after the plugin ran:\n{e}") from None


def check_options(grouped_conv: str | None, output_type: str) -> None:
    if grouped_conv is not None and grouped_conv not in STRATEGIES:
        raise InputError(f"unknown grouped_conv={grouped_conv!r}; choose one of {', '.join(STRATEGIES)} or None")
    if output_type not in OUTPUT_TYPES:
        raise InputError(f"unknown output_type={output_type!r}; choose one of {', '.join(OUTPUT_TYPES)}")


def finish(module: ir.Module, grouped_conv: str | None, output_type: str) -> ir.Module:
    """The common tail of every frontend: plugin (report recorded), then linalg unless output_type="torch"."""
    record_report(apply_strategy(module, grouped_conv))
    if output_type == "linalg-on-tensors":
        lower_to_linalg(module)
    return module
