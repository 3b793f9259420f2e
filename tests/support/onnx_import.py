"""Test-side ONNX import for the quantized tests: the package's ONNX frontend
(torch_grouped_conv/frontends/onnx.py: torch-mlir's ONNX importer and its
`torch-onnx-to-torch-backend-pipeline`, entry `@main`) up to torch-backend IR.
The plugin and torch-mlir's linalg pipeline are then applied with the
package's own stages (`apply_strategy`, `lower_to_linalg`), so the tests can
also compare with the plugin off (torch-mlir's own lowering)."""

from __future__ import annotations

import onnx
from torch_mlir import ir

from torch_grouped_conv.frontends import onnx as onnx_frontend


def import_onnx(model: onnx.ModelProto) -> ir.Module:
    """`model` (checked and shape-inferred by the frontend) as torch-backend IR with entry `@main`."""
    return onnx_frontend.import_to_torch(onnx_frontend.load_model(model))
