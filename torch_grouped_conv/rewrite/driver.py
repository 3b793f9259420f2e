"""The driver: the rewrite pattern on `torch.aten.convolution` (and
`torch.aten.conv_tbc`), applied to a module, and the report of its decisions.

Flow per op: read (read/spec.py; read/conv_tbc.py for conv_tbc) -> decide
(plan.py; the strategy's emitter: strategies/choice.py) -> emit
(emit/convolution.py). Each op the plugin lowers is an `OpKind` in
`OP_KINDS`: its reader and its emission around the shared
`convolution.emit_builtin`. A refusal leaves the op for torch-mlir's own
lowering and is recorded in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch_mlir import ir, passmanager, rewrite
from torch_mlir.dialects import torch as torch_d

from torch_grouped_conv.report import ConvDecision, RewriteReport, conv_flops
from torch_grouped_conv.rewrite.emit import convolution
from torch_grouped_conv.rewrite.emit.convolution import Emitter
from torch_grouped_conv.rewrite.plan import ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.read import conv_tbc
from torch_grouped_conv.rewrite.read.spec import ConvSpec, Refusal, parse_vtensor_type, read_conv_spec
from torch_grouped_conv.rewrite.strategies import STRATEGIES, choose

__all__ = ["CONVOLUTION_OP", "OP_KINDS", "STRATEGIES", "OpKind", "apply_plugin", "convolution_ops",
           "ensure_torch_conversion_dialect", "ops_named"]

CONVOLUTION_OP = "torch.aten.convolution"
ORDER_ATTR = "torch_grouped_conv.order"  # transient, removed before returning

# In the MLIR Python API a pattern returns a falsy value when it matched.
MATCHED = False
NOT_MATCHED = True


def ensure_torch_conversion_dialect(context: ir.Context) -> None:
    """Load `torch_c` into `context`.

    torch-mlir's Python package registers only the `torch` dialect; `torch_c`
    ops created before their dialect is loaded are unregistered and break
    later. Running a pass that declares torch_c as a dependent dialect, on an
    empty module, loads it through the pass manager's normal mechanism.
    """
    if context.is_registered_operation("torch_c.to_builtin_tensor"):
        return
    with context, ir.Location.unknown():
        empty = ir.Module.create()
        passmanager.PassManager.parse("builtin.module(torch-func-backend-type-conversion)").run(empty.operation)


def ops_named(module: ir.Module, name: str) -> list[ir.Operation]:
    """All ops called `name` (e.g. "linalg.conv_2d_ngchw_gfchw"), in program order."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == name:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


@dataclass(frozen=True)
class OpKind:
    """One op the plugin lowers: how to read it and how to emit a plan for it
    (the plan, the op, the chosen emitter and whether it is a strategy's flat one)."""

    op_class: type[ir.OpView]
    read: Callable[[ir.Operation], ConvSpec | Refusal]
    emit: Callable[[ConvPlan, ir.Operation, Emitter, bool], ir.Value]


def convolution_ops(module: ir.Module) -> list[ir.Operation]:
    """All ops the plugin lowers (`torch.aten.convolution`, `torch.aten.conv_tbc`), in program order."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name in OP_KINDS:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


def apply_plugin(module: ir.Module | ir.Operation, strategy: str = "auto") -> RewriteReport:
    """Rewrite every convolution of `module` (torch backend form) in place."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown grouped_conv strategy {strategy!r}; choose one of {', '.join(STRATEGIES)} or None")
    ensure_torch_conversion_dialect(module.context)
    convolutions = convolution_ops(module)
    # Number the ops up front: Python handles to ops the rewriter erases must
    # not be kept, and the greedy driver may visit a refused op more than once.
    for i, op in enumerate(convolutions):
        op.attributes[ORDER_ATTR] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64, module.context), i)
    decisions: dict[int, ConvDecision] = {}

    def rewrite_convolution(op: ir.OpView, rewriter: rewrite.PatternRewriter) -> bool:
        source = op.operation
        number = ir.IntegerAttr(source.attributes[ORDER_ATTR]).value
        kind = OP_KINDS[source.name]
        spec = kind.read(source)
        plan = spec if isinstance(spec, Refusal) else plan_convolution(spec)
        if isinstance(plan, Refusal):
            decisions[number] = _decision(source, spec, None, plan.reason, strategy)
            return NOT_MATCHED
        choice = choose(strategy, plan)
        with rewriter.ip, source.location:
            result = kind.emit(plan, source, choice.emitter, choice.flat)
        decisions[number] = _decision(source, plan.spec, plan, None, choice.strategy, choice.note)
        rewriter.replace_op(source, [result])
        return MATCHED

    patterns = rewrite.RewritePatternSet(module.context)
    for kind in OP_KINDS.values():
        patterns.add(kind.op_class, rewrite_convolution)
    frozen = patterns.freeze()
    try:
        rewrite.apply_patterns_and_fold_greedily(module, frozen)
    finally:
        for op in convolution_ops(module):  # the refused ones are still there
            if ORDER_ATTR in op.attributes:
                del op.attributes[ORDER_ATTR]
    return RewriteReport(strategy, [decisions[i] for i in sorted(decisions)])


OP_KINDS: dict[str, OpKind] = {
    CONVOLUTION_OP: OpKind(torch_d.AtenConvolutionOp, read_conv_spec, convolution.emit_plan),
    conv_tbc.CONV_TBC_OP: OpKind(torch_d.AtenConvTbcOp, conv_tbc.read_conv_tbc_spec, convolution.emit_conv_tbc),
}


def _decision(op: ir.Operation, spec: ConvSpec | Refusal, plan: ConvPlan | None,
              reason: str | None, strategy: str, note: str | None = None) -> ConvDecision:
    # Shapes as the op has them (conv_tbc's [T, B, C] / [k, C, F], not the spec's layout).
    x_info, w_info, y_info = (parse_vtensor_type(str(v.type)) for v in (op.operands[0], op.operands[1], op.results[0]))
    return ConvDecision(
        location=str(op.location),
        input_shape=list(x_info.shape) if x_info else None,
        weight_shape=list(w_info.shape) if w_info else None,
        groups=None if isinstance(spec, Refusal) else spec.groups,
        case=None if plan is None else plan.label,
        reason=reason,
        strategy=strategy,
        note=note,
        module_path=module_path(op.location),
        output_shape=list(y_info.shape) if y_info else None,
        dtype=x_info.dtype if x_info else None,
        flops=None if isinstance(spec, Refusal) else _flops(spec),
    )


def module_path(location: ir.Location) -> str | None:
    """The name an op's location carries (frontends/torch_export.py names each
    op by its PyTorch module path: `loc("features.1.conv.0.0"(callsite(...)))`)."""
    if isinstance(location, ir.FusedLoc):
        names = [module_path(inner) for inner in location.locations]
        return next((n for n in names if n), None)
    return location.name_str if isinstance(location, ir.NameLoc) else None


def _flops(spec: ConvSpec) -> int | None:
    """FLOPs from the spec's layout (input [N, C, *s], weight, result [N, F, *o])."""
    return conv_flops(spec.input.shape, spec.weight.shape, spec.result.shape, transposed=spec.transposed,
                      stride=spec.stride, padding=spec.padding, dilation=spec.dilation)
