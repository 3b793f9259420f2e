"""The torch-IR frontend: `lower(module)` applies the plugin to torch IR from
anywhere — torch-backend form (a file, `compile(..., output_type="torch")`),
or raw import output (`export_and_import(..., output_type="raw")`, the ONNX
importer's output, other exporters' torch-dialect modules), which first goes
through torch-mlir's torch-backend pipeline, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch_mlir import ir

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.driver import STRATEGIES, apply_plugin, convolution_ops, ensure_torch_conversion_dialect
from torch_grouped_conv.rewrite.plan import malformed
from torch_grouped_conv.rewrite.read.spec import Refusal, read_conv_spec
from torch_grouped_conv.stages import FX_TO_TORCH_BACKEND, ONNX_TO_TORCH_BACKEND, record_report, to_torch_backend

INPUT_FORMS = ("auto", "torch-backend", "raw", "onnx")

# Ops that only exist before torch-mlir's torch-backend pipeline has run: a
# module holding one is raw import output, not torch-backend IR.
PRE_BACKEND_CONV_OPS = (
    "torch.aten.conv1d", "torch.aten.conv2d", "torch.aten.conv3d", "torch.aten._convolution",
    "torch.aten.conv_transpose1d", "torch.aten.conv_transpose2d", "torch.aten.conv_transpose3d",
)
# Op name prefixes the torch-backend pipeline always removes.
PRE_BACKEND_PREFIXES = ("torch.prims.",)
ONNX_OPSET_ATTR = "torch.onnx_meta.opset_version"

PIPELINES = {"raw": FX_TO_TORCH_BACKEND, "onnx": ONNX_TO_TORCH_BACKEND}
PIPELINE_PRODUCERS = {"raw": "raw torch IR", "onnx": "ONNX importer output"}


@dataclass(frozen=True)
class InputForm:
    """What `lower` was given: `form` is one of INPUT_FORMS but "auto"; `evidence` says how we know."""

    form: str
    evidence: str


def detect_form(module: ir.Module) -> InputForm:
    """Recognise raw IR by what only raw IR holds; anything else is taken as torch-backend form.

    Raw FX import output can look exactly like torch-backend IR; when it holds
    none of these, pass `input_form="raw"` explicitly.
    """
    names: set[str] = set()
    onnx: list[str] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        names.add(op.name)
        if op.name == "torch.operator" and "name" in op.attributes:
            onnx_name = ir.StringAttr(op.attributes["name"]).value
            if onnx_name.startswith("onnx."):
                onnx.append(onnx_name)
        if ONNX_OPSET_ATTR in op.attributes:
            onnx.append(ONNX_OPSET_ATTR)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if onnx:
        return InputForm("onnx", f"it has {', '.join(sorted(set(onnx))[:3])}")
    raw = sorted(n for n in names if n in PRE_BACKEND_CONV_OPS or n.startswith(PRE_BACKEND_PREFIXES))
    if raw:
        return InputForm("raw", f"it has {', '.join(raw[:3])}")
    return InputForm("torch-backend", "it holds no op that only raw import output has")


def prepare(module: ir.Module, input_form: str = "auto") -> str | None:
    """Bring `module` to torch-backend form in place; return a note saying what ran, or None."""
    if input_form not in INPUT_FORMS:
        raise InputError(f"unknown input_form={input_form!r}; choose one of {', '.join(INPUT_FORMS)}")
    form = detect_form(module) if input_form == "auto" else InputForm(input_form, "input_form was given")
    if form.form == "torch-backend":
        return None
    ensure_torch_conversion_dialect(module.context)
    passes = PIPELINES[form.form]
    to_torch_backend(module, passes, PIPELINE_PRODUCERS[form.form])
    return (f"input is {PIPELINE_PRODUCERS[form.form]} ({form.evidence}): "
            f"ran torch-mlir's {', '.join(passes)} before the plugin")


def lower(module: ir.Module, grouped_conv: str = "auto", input_form: str = "auto",
          reject_malformed: bool = False) -> RewriteReport:
    """Apply the plugin in place to `module`, torch IR in torch-backend form or
    raw (see `detect_form`; `input_form` overrides the guess: "torch-backend",
    "raw" for FX/torch.export import output, "onnx" for the ONNX importer's).

    Raises InputError for an unknown strategy or a module with no convolution;
    with `reject_malformed` (the CLI's `lower`) also for a malformed one
    (`check_well_formed`), which the plugin otherwise refuses in the report.
    The report's `input_note` says when the torch-backend pipeline ran first.
    """
    if grouped_conv not in STRATEGIES:
        raise InputError(f"unknown grouped_conv={grouped_conv!r}; choose one of {', '.join(STRATEGIES)}")
    note = prepare(module, input_form)
    if not convolution_ops(module):
        raise InputError("the module has no torch.aten.convolution to lower; give IR that contains a convolution")
    if reject_malformed:
        check_well_formed(module)
    report = apply_plugin(module, grouped_conv)
    report.input_note = note
    return record_report(report)


def check_well_formed(module: ir.Module) -> None:
    """InputError for a convolution whose parameters contradict each other
    (`plan.malformed`: groups=3 with C_in=8): no model makes one, so the
    input is wrong; the report's refusals are for valid convs the plugin leaves."""
    for op in convolution_ops(module):
        spec = read_conv_spec(op) if op.name == "torch.aten.convolution" else None
        problem = malformed(spec) if spec is not None and not isinstance(spec, Refusal) else None
        if problem is not None:
            raise InputError(f"malformed convolution at {op.location}: {problem.reason}; PyTorch would reject it, "
                             "fix the IR")
