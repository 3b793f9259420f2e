"""Test-side ONNX import: an ONNX model to torch-backend IR with torch-mlir's
ONNX importer and its `torch-onnx-to-torch-backend-pipeline` (as torch-mlir's
`import_onnx` tool and its ONNX e2e config do), entry renamed to `@main` for
the runners. The plugin and torch-mlir's linalg pipeline are then applied
with the package's own stages (`apply_strategy`, `lower_to_linalg`).

(The package's `compile_onnx` frontend does the same; these tests use this
helper so that they depend on nothing but torch-mlir's importer.)
"""

from __future__ import annotations

import onnx
from torch_mlir import ir, passmanager
from torch_mlir.dialects import torch as torch_d
from torch_mlir.extras import onnx_importer

ONNX_TO_TORCH_BACKEND = "builtin.module(torch-onnx-to-torch-backend-pipeline)"


def import_onnx(model: onnx.ModelProto) -> ir.Module:
    """`model` (shape-inferred here) as torch-backend IR with entry `@main`, in a fresh context."""
    model = onnx.shape_inference.infer_shapes(model)
    context = ir.Context()
    torch_d.register_dialect(context)
    info = onnx_importer.ModelInfo(model)
    module = info.create_module(context=context)
    onnx_importer.NodeImporter.define_function(info.main_graph, module.operation).import_all()
    with context:
        passmanager.PassManager.parse(ONNX_TO_TORCH_BACKEND).run(module.operation)
        for op in module.body.operations:
            if op.operation.name == "func.func":
                op.attributes["sym_name"] = ir.StringAttr.get("main")
    return module
