"""torch-grouped-conv: lower torch.aten.convolution (grouped, depthwise, plain)
to MLIR linalg inside torch-mlir, and verify the result against PyTorch.

    module = torch_grouped_conv.compile(model, x, grouped_conv="grouped")
    report = torch_grouped_conv.last_report()
    [y] = torch_grouped_conv.run(module, x, backend="refbackend")

Other entry points: `compile_onnx("model.onnx")`, `torch.compile(model,
backend="torch_grouped_conv")`, `lower(module)` on torch IR, and
`plugin_pass()` for a `PassManager` (see frontends/). Deploy:
`save(module, "model.vmfb", target=Target(...))` writes an IREE module that
runs with IREE's runtime alone; `load("model.vmfb")` runs it here.
"""

import sys as _sys

from torch_grouped_conv.api import compile, compile_onnx, last_report, lower, plugin_pass
from torch_grouped_conv.deploy import save
from torch_grouped_conv.errors import CompileError, GroupedConvError, InputError, ModelInputError
from torch_grouped_conv.frontends.dynamo import backend as dynamo_backend
from torch_grouped_conv.frontends.dynamo import register as register_dynamo_backend
from torch_grouped_conv.report import ConvDecision, RewriteReport
from torch_grouped_conv.rewrite.driver import STRATEGIES
from torch_grouped_conv.rewrite.tuning import TUNINGS, tuned_for
from torch_grouped_conv.runners import BACKENDS, load, run
from torch_grouped_conv.runners.target import Target

# torch.compile finds backend="torch_grouped_conv" through the package's
# `torch_dynamo_backends` entry point once installed. From a source checkout
# on PYTHONPATH there is none, so register here too, but only when dynamo is
# already imported: importing it costs ~2 s, too much for every CLI start.
if "torch._dynamo" in _sys.modules:
    register_dynamo_backend()

__all__ = [
    "BACKENDS", "STRATEGIES", "CompileError", "ConvDecision", "GroupedConvError", "InputError",
    "ModelInputError", "RewriteReport", "compile", "compile_onnx", "dynamo_backend", "last_report", "load", "lower",
    "plugin_pass",
    "register_dynamo_backend", "run", "save", "Target", "TUNINGS", "tuned_for",
]
