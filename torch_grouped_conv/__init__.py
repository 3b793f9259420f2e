"""torch-grouped-conv: lower torch.aten.convolution (grouped, depthwise, plain)
to MLIR linalg inside torch-mlir, and verify the result against PyTorch.

    module = torch_grouped_conv.compile(model, x, grouped_conv="grouped")
    report = torch_grouped_conv.last_report()
    [y] = torch_grouped_conv.run(module, x, backend="refbackend")
"""

from .api import compile, last_report, lower
from .errors import CompileError, GroupedConvError, InputError, ModelInputError
from .report import ConvDecision, RewriteReport
from .rewrite.pattern import STRATEGIES
from .runners import BACKENDS, load, run

__all__ = [
    "BACKENDS", "STRATEGIES", "CompileError", "ConvDecision", "GroupedConvError", "InputError",
    "ModelInputError", "RewriteReport", "compile", "last_report", "load", "lower", "run",
]
