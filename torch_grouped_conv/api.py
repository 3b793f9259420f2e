"""The public surface: thin re-exports of the frontends (frontends/) and the
shared stages (stages.py).

- `compile(model, *args)`: torch.export frontend (frontends/torch_export.py);
- `compile_onnx(model)`: ONNX frontend (frontends/onnx.py);
- `lower(module)`: torch IR, torch-backend or raw (frontends/torch_ir.py);
- `plugin_pass(...)`: the plugin as a pass (frontends/plugin_pass.py);
- torch.compile: `backend="torch_grouped_conv"` (frontends/dynamo.py).
"""

from __future__ import annotations

from typing import Any

from torch_grouped_conv.frontends.plugin_pass import plugin_pass
from torch_grouped_conv.frontends.torch_export import compile, export_program, import_to_torch
from torch_grouped_conv.frontends.torch_ir import INPUT_FORMS, PRE_BACKEND_CONV_OPS, detect_form, lower
from torch_grouped_conv.stages import OUTPUT_TYPES, PLUGIN_LEGAL_OPS, apply_strategy, last_report, lower_to_linalg


def compile_onnx(model: Any, grouped_conv: str | None = "auto", output_type: str = "linalg-on-tensors") -> Any:
    """See frontends/onnx.py (imported on first use: it needs the `onnx` package, extra `[onnx]`)."""
    from torch_grouped_conv.frontends.onnx import compile_onnx as compile_onnx_

    return compile_onnx_(model, grouped_conv=grouped_conv, output_type=output_type)


__all__ = [
    "INPUT_FORMS", "OUTPUT_TYPES", "PLUGIN_LEGAL_OPS", "PRE_BACKEND_CONV_OPS", "apply_strategy", "compile", "compile_onnx",
    "detect_form", "export_program", "import_to_torch", "last_report", "lower", "lower_to_linalg", "plugin_pass",
]
