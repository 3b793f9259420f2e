"""The plugin as a pass for anyone's MLIR pass pipeline.

    pm = PassManager.parse("builtin.module(torchdynamo-export-to-torch-backend-pipeline)")
    pm.add(tgc.plugin_pass("grouped"))          # name and argument come with it
    pm.add("torch-backend-to-linalg-on-tensors-backend-pipeline")
    pm.run(module.operation)

torch-mlir 20261001's bindings accept `PassManager.add(callable, name=...)`: a
Python-defined pass, called with the op it runs on (here: the module) and the
`ExternalPass`, which can signal failure.
"""

from __future__ import annotations

from typing import Any

from torch_mlir import ir

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.driver import STRATEGIES, apply_plugin
from torch_grouped_conv.runners.signature import record_model_dtypes
from torch_grouped_conv.stages import record_report

PASS_NAME = "TorchGroupedConvPass"
PASS_ARGUMENT = "torch-grouped-conv"


class PluginPass:
    """A callable for `PassManager.add`: `(op, pass_) -> None`.

    Runs the plugin with `grouped_conv` on the module it is given (torch-backend
    form). Each run's report is kept in `report` and is what `last_report()`
    returns. An internal error (an exception from the plugin) is emitted as an
    error diagnostic at the module's location, naming the exception, and fails
    the pipeline; MLIR's usual "pass failed" error follows.
    """

    __name__ = PASS_NAME  # PassManager.add names the pass after run.__name__

    def __init__(self, grouped_conv: str) -> None:
        self.grouped_conv = grouped_conv
        self.report: RewriteReport | None = None

    def __call__(self, op: ir.Operation, pass_: Any) -> None:
        try:
            self.report = record_report(apply_plugin(op, self.grouped_conv))
            record_model_dtypes(op)  # as compile does: the runners give results the model's dtypes
        except Exception as e:  # noqa: BLE001  (any bug in the plugin must fail the pipeline, not crash it)
            op.location.emit_error(
                f"{PASS_ARGUMENT} (grouped_conv={self.grouped_conv}): internal error {type(e).__name__}: {e}"
            )
            pass_.signal_pass_failure()


def plugin_pass(grouped_conv: str = "auto") -> PluginPass:
    """The plugin with strategy `grouped_conv` (default "auto") as a pass: `pm.add(plugin_pass("auto"))`.

    Give it modules in torch-backend form (put it after torch-mlir's
    torch-backend pipeline, before the linalg one). Pass `name=`/`argument=`
    to `PassManager.add` to name it otherwise than `TorchGroupedConvPass`.
    """
    if grouped_conv not in STRATEGIES:
        raise InputError(f"unknown grouped_conv={grouped_conv!r}; choose one of {', '.join(STRATEGIES)}")
    return PluginPass(grouped_conv)
