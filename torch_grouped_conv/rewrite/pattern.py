"""The rewrite pattern on `torch.aten.convolution` and the driver that applies it.

Flow per op: read (spec.py) -> decide (plan.py) -> emit (emit.py). A refusal
leaves the op for torch-mlir's own lowering and is recorded in the report.
"""

from __future__ import annotations

from torch_mlir import ir, passmanager, rewrite
from torch_mlir.dialects import torch as torch_d

from ..report import ConvDecision, RewriteReport
from . import builders
from .emit import EMITTERS, Emitter
from .plan import ConvPlan, plan_convolution
from .spec import ConvSpec, Refusal, TensorInfo, parse_vtensor_type, read_conv_spec
from .strategies import STRATEGIES, choose
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


def convolution_ops(module: ir.Module) -> list[ir.Operation]:
    """All `torch.aten.convolution` ops, in program order."""
    return ops_named(module, CONVOLUTION_OP)


def apply_plugin(module: ir.Module, strategy: str = "grouped") -> RewriteReport:
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
        spec = read_conv_spec(source)
        plan = spec if isinstance(spec, Refusal) else plan_convolution(spec)
        if isinstance(plan, Refusal):
            decisions[number] = _decision(source, spec, None, plan.reason, strategy)
            return NOT_MATCHED
        choice = choose(strategy, plan)
        with rewriter.ip, source.location:
            result = emit_plan(plan, source, choice.emitter)
        decisions[number] = _decision(source, plan.spec, plan, None, choice.strategy, choice.note)
        rewriter.replace_op(source, [result])
        return MATCHED

    patterns = rewrite.RewritePatternSet(module.context)
    patterns.add(torch_d.AtenConvolutionOp, rewrite_convolution)
    frozen = patterns.freeze()
    try:
        rewrite.apply_patterns_and_fold_greedily(module, frozen)
    finally:
        for op in convolution_ops(module):  # the refused ones are still there
            if ORDER_ATTR in op.attributes:
                del op.attributes[ORDER_ATTR]
    return RewriteReport(strategy, [decisions[i] for i in sorted(decisions)])


def emit_plan(plan: ConvPlan, op: ir.Operation, emitter: Emitter | None = None) -> ir.Value:
    """Cross into builtin tensors, prepare input and weight, build the
    accumulator, run `emitter` (default: the case's own), round to the result type.

    Strategy emitters (strategies/) take the flat layout: input [N,C,*s],
    weight [F,C/G,*k], accumulator [N,F,*o].

    Cases with `plan.grouped_layout` get every operand split by group right
    where it enters (input [N,G,C/G,*s], weight [G,F/G,C/G,*k], bias [G,F/G],
    accumulator [N,G,F/G,*o]) and the result is merged back at the end: padding
    and bias broadcasting then happen on grouped tensors, so no expand_shape
    of a padded or broadcast tensor is left for fusion to move (with dynamic
    channels that trips upstream elementwise fusion and IREE 3.13).
    """
    spec, window = plan.spec, plan.window
    x_in, w_in, b_in = op.operands[0], op.operands[1], op.operands[2]
    emitter = emitter or EMITTERS[plan.case]
    grouped, groups = plan.grouped_layout and emitter is EMITTERS[plan.case], spec.groups
    x = builders.to_builtin(x_in, spec.input)
    if grouped:
        x = builders.expand(x, 1, groups)
    x = builders.window_input(x, window.input_dilation, window.pad_low, window.pad_high)
    w = builders.to_builtin(w_in, spec.weight)
    if spec.transposed:
        w = builders.transposed_weight(w, groups, plan.kernel)  # [G, F/G, C/G, *k]
        if not grouped:
            w = builders.collapse(w, 0)
    elif grouped:
        w = builders.expand(w, 0, groups)
    acc_elem = builders.element_type(plan.accumulator_dtype)
    bias = None
    if spec.has_bias:
        bias = builders.to_builtin(b_in, _bias_info(b_in))
        bias = builders.convert_elements(builders.expand(bias, 0, groups) if grouped else bias, acc_elem)
    sizes = _result_sizes(plan, grouped, x, w)
    result = emitter(plan, x, w, builders.init_accumulator(sizes, acc_elem))
    if bias is not None:  # after the conv, not as its init: see builders.init_accumulator
        result = builders.add_bias(result, bias, sizes)
    if grouped:
        result = builders.collapse(result, 1)
    result = builders.convert_elements(result, builders.element_type(spec.result.dtype))
    return builders.from_builtin(result, op.results[0].type)


def _result_sizes(plan: ConvPlan, grouped: bool, x: ir.Value, w: ir.Value) -> list[builders.SizeValue]:
    """The accumulator's sizes, [N, F, *o] or grouped [N, G, F/G, *o], from the
    prepared input `x` and forward weight `w` in the same layout: static dims
    from the result type, dynamic ones computed."""
    spec, window = plan.spec, plan.window
    if grouped:
        channels = [spec.groups, builders.size_of(w, 1)]
    else:
        known = spec.result.shape[1]
        channels = [known if known is not None else builders.size_of(w, 0)]
    sizes: list[builders.SizeValue] = [builders.size_of(x, 0), *channels]
    lead = len(sizes)
    for i, known in enumerate(spec.result.shape[2:]):
        if known is not None:
            sizes.append(known)
            continue
        sizes.append(builders.conv_output_size(
            builders.size_of(x, lead + i), plan.kernel[i], window.stride[i], window.dilation[i]
        ))
    return sizes


def _bias_info(bias: ir.Value) -> TensorInfo:
    info = parse_vtensor_type(str(bias.type))
    assert info is not None, "aten.convolution's bias is a ranked vtensor or none"
    return info


def _decision(op: ir.Operation, spec: ConvSpec | Refusal, plan: ConvPlan | None,
              reason: str | None, strategy: str, note: str | None = None) -> ConvDecision:
    if isinstance(spec, Refusal):
        return ConvDecision(str(op.location), None, None, None, None, reason, strategy)
    return ConvDecision(
        location=spec.location,
        input_shape=list(spec.input.shape),
        weight_shape=list(spec.weight.shape),
        groups=spec.groups,
        case=None if plan is None else plan.label,
        reason=reason,
        strategy=strategy,
        note=note,
    )
