"""The plugin as a pass in a hand-built PassManager, and raw torch IR through
`lower`: same IR and same report as `compile` (and `compile_onnx`)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch
from torch_mlir import fx, ir, passmanager

import torch_grouped_conv as tgc
from torch_grouped_conv.frontends import onnx as onnx_frontend
from torch_grouped_conv.frontends import plugin_pass as plugin_pass_module
from torch_grouped_conv.frontends.torch_ir import detect_form
from torch_grouped_conv.importer import FastLiteralHooks
from torch_grouped_conv.models import DemoNet
from torch_grouped_conv.rewrite.driver import ops_named

X_SHAPE = (1, 3, 32, 32)


def demo() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return DemoNet().eval(), torch.randn(X_SHAPE)


def raw_import(model: torch.nn.Module, x: torch.Tensor) -> ir.Module:
    return fx.export_and_import(model, x, output_type="raw", hooks=FastLiteralHooks())


def decisions(report: tgc.RewriteReport | None) -> list[tgc.ConvDecision]:
    """The decisions without where they point: a user's own import (torch-mlir's
    FX importer, as `raw_import`) has no module-path names in its locations;
    `compile`'s importer adds them."""
    assert report is not None
    return [dataclasses.replace(d, location="", module_path=None) for d in report.decisions]


@pytest.mark.parametrize("strategy", ["grouped", "auto"])
def test_user_pipeline_with_plugin_pass_gives_the_same_ir_as_compile(strategy: str) -> None:
    model, x = demo()
    expected = tgc.compile(model, x, grouped_conv=strategy)
    expected_report = tgc.last_report()

    module = raw_import(model, x)
    plugin = tgc.plugin_pass(strategy)
    with module.context:
        pm = passmanager.PassManager.parse(
            "builtin.module(func.func(torch-match-quantized-custom-ops),torchdynamo-export-to-torch-backend-pipeline)")
        pm.add(plugin)
        pm.add("torch-backend-to-linalg-on-tensors-backend-pipeline")
        pm.run(module.operation)
    assert str(module) == str(expected)
    assert plugin.report is not None and decisions(plugin.report) == decisions(expected_report)
    assert tgc.last_report() is plugin.report


def test_plugin_pass_internal_error_fails_the_pipeline_with_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("emitter bug")

    monkeypatch.setattr(plugin_pass_module, "apply_plugin", broken)
    model, x = demo()
    module = tgc.compile(model, x, grouped_conv=None, output_type="torch")
    messages: list[str] = []
    with module.context:
        handler = module.context.attach_diagnostic_handler(lambda d: messages.append(str(d.message)) or True)
        pm = passmanager.PassManager("builtin.module")
        pm.add(tgc.plugin_pass("grouped"))
        with pytest.raises(ir.MLIRError, match="Failure while executing pass pipeline") as failed:
            pm.run(module.operation)
        handler.detach()
    # MLIR delivers the error diagnostic to the user's handler or, when the pass
    # manager captures it, inside the MLIRError it raises: either way, exactly once.
    captured = [str(d.message) for d in failed.value.error_diagnostics]
    assert messages + captured == ["torch-grouped-conv (grouped_conv=grouped): internal error RuntimeError: emitter bug"]


def test_plugin_pass_unknown_strategy() -> None:
    with pytest.raises(tgc.InputError, match="unknown grouped_conv='fft'"):
        tgc.plugin_pass("fft")


def test_raw_fx_ir_through_lower_gives_the_same_report_and_ir_as_compile() -> None:
    model, x = demo()
    expected = tgc.compile(model, x, output_type="torch")
    expected_report = tgc.last_report()
    module = raw_import(model, x)
    report = tgc.lower(module, input_form="raw")
    assert decisions(report) == decisions(expected_report)
    assert report.input_note is not None and "torchdynamo-export-to-torch-backend-pipeline" in report.input_note
    assert str(module) == str(expected)


def test_onnx_importer_output_through_lower_is_recognised(tmp_path: Path) -> None:
    model, x = demo()
    path = tmp_path / "demo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    expected = tgc.compile_onnx(path, output_type="torch")
    expected_report = tgc.last_report()
    raw = onnx_frontend.import_model(onnx_frontend.load_model(path))
    assert detect_form(raw).form == "onnx"
    report = tgc.lower(raw)
    assert report.input_note is not None and report.input_note.startswith("input is ONNX importer output (it has")
    assert decisions(report) == decisions(expected_report)
    assert str(raw) == str(expected)


def test_torch_backend_ir_is_left_as_it_is() -> None:
    model, x = demo()
    module = tgc.compile(model, x, grouped_conv=None, output_type="torch")
    assert detect_form(module).form == "torch-backend"
    report = tgc.lower(module)
    assert report.input_note is None and report.counts() == {"conv": 3, "depthwise": 1, "grouped": 2}
    assert ops_named(module, "torch.aten.convolution") == []


def test_lower_unknown_input_form() -> None:
    model, x = demo()
    module = tgc.compile(model, x, grouped_conv=None, output_type="torch")
    with pytest.raises(tgc.InputError, match="unknown input_form='tosa'"):
        tgc.lower(module, input_form="tosa")
