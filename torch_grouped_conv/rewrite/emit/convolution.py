"""The core emission of one planned convolution: cross into builtin tensors,
prepare input and weight (zero insertion, padding, the transposed weight, the
group split), run the chosen emitter into a zero accumulator, add the bias,
round to the result type and cross back.

An `Emitter` computes the convolution itself: (plan, prepared input, forward
weight, accumulator) -> result, builtin tensors. A strategy's own emitter
(`flat`) takes the flat layout: input [N,C,*s], weight [F,C/G,*k],
accumulator [N,F,*o], and for a quantized plan i32 operands centered on
their zero points. The default emitter of a case takes the grouped layout
where `plan.grouped_layout` (see `emit_builtin`) and a quantized plan's
stored i8 operands (`*_q` ops with zero points).
"""

from __future__ import annotations

from collections.abc import Callable

from torch_mlir import ir

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.plan import ConvPlan
from torch_grouped_conv.rewrite.read import conv_tbc
from torch_grouped_conv.rewrite.read.spec import TensorInfo, parse_vtensor_type, quantized_storage, runtime_int_list

Emitter = Callable[[ConvPlan, ir.Value, ir.Value, ir.Value], ir.Value]


def emit_plan(plan: ConvPlan, op: ir.Operation, emitter: Emitter, flat: bool) -> ir.Value:
    """Cross into builtin tensors, emit the convolution (`emit_builtin`), cross back.

    Quantized plans (`plan.quant`) read input and weight from the i8 storage
    their quantized operands are made from. For the default (`*_q`) emitters
    ui8 data is shifted to signed and padding is the input's zero point (see
    plan.QuantPlan); a strategy emitter gets them centered instead, i32
    q - zero point, an ordinary integer conv with zero padding.
    """
    centered = plan.quant is not None and flat
    x, w = _builtin_operands(plan, op, centered)
    b_in = op.operands[2]
    bias = builders.to_builtin(b_in, _bias_info(b_in)) if plan.spec.has_bias else None
    padding = _padding_sizes(plan, op.operands[4])
    fill = plan.quant.input_zero_point if plan.quant is not None and not centered else 0
    result = emit_builtin(plan, x, w, bias, emitter, flat, padding, fill)
    return builders.from_builtin(result, op.results[0].type)


def _builtin_operands(plan: ConvPlan, op: ir.Operation, centered: bool) -> tuple[ir.Value, ir.Value]:
    """Input and weight as builtin tensors: the operands themselves, or for a
    quantized plan their i8 storage, ui8 shifted to signed (or, `centered`,
    i32 q - zero point)."""
    spec, quant = plan.spec, plan.quant
    x_in, w_in = op.operands[0], op.operands[1]
    if quant is None or spec.input_quant is None or spec.weight_quant is None:
        return builders.to_builtin(x_in, spec.input), builders.to_builtin(w_in, spec.weight)
    x = builders.to_builtin(quantized_storage(x_in), TensorInfo(spec.input.shape, spec.input_quant.storage))
    w = builders.to_builtin(quantized_storage(w_in), TensorInfo(spec.weight.shape, spec.weight_quant.storage))
    if centered:
        return (builders.centered_i32(x, quant.shift_input, spec.input_quant.zero_point),
                builders.centered_i32(w, quant.shift_weight, spec.weight_quant.zero_point))
    return (builders.shift_to_signed(x) if quant.shift_input else x,
            builders.shift_to_signed(w) if quant.shift_weight else w)


def _padding_sizes(plan: ConvPlan, padding_list: ir.Value) -> list[builders.SizeValue]:
    """`aten.convolution`'s padding: the plan's ints, and the runtime !torch.int
    items (None in the spec) as index values (torch_c.to_i64, arith.index_cast)."""
    if None not in plan.spec.padding:
        return [p for p in plan.spec.padding if p is not None]  # no None: every item is an int
    items = runtime_int_list(padding_list)
    return [p if p is not None else builders.torch_int_to_index(items[i]) for i, p in enumerate(plan.spec.padding)]


def emit_conv_tbc(plan: ConvPlan, op: ir.Operation, emitter: Emitter, flat: bool) -> ir.Value:
    """`torch.aten.conv_tbc`: [T, B, C] -> [B, C, T] (and the weight [k, C, F] ->
    [F, C, k]), the conv, then [B, F, T'] -> [T', B, F] (see conv_tbc.py)."""
    x, w, bias = conv_tbc.builtin_operands(plan.spec, op)
    result = conv_tbc.result_layout(emit_builtin(plan, x, w, bias, emitter, flat))
    return builders.from_builtin(result, op.results[0].type)


def emit_builtin(plan: ConvPlan, x: ir.Value, w: ir.Value, bias: ir.Value | None,
                 emitter: Emitter, flat: bool, padding: list[builders.SizeValue] | None = None,
                 fill: int = 0) -> ir.Value:
    """Prepare input and weight, build the accumulator, run `emitter`, round
    to the result type; builtin tensors in PyTorch's layout (input [N,C,*s],
    weight as `aten.convolution` has it, bias [F]) in and out.

    A strategy's own emitter (`flat`) takes the flat layout: input [N,C,*s],
    weight [F,C/G,*k], accumulator [N,F,*o].

    For the default emitter (not `flat`), cases with `plan.grouped_layout`
    get every operand split by group right
    where it enters (input [N,G,C/G,*s], weight [G,F/G,C/G,*k], bias [G,F/G],
    accumulator [N,G,F/G,*o]) and the result is merged back at the end: padding
    and bias broadcasting then happen on grouped tensors, so no expand_shape
    of a padded or broadcast tensor is left for fusion to move (with dynamic
    channels that trips upstream elementwise fusion and IREE 3.13).

    Kernel sizes unknown at compile time are read from the weight
    (`tensor.dim`): the transposed window's pads and the output sizes.
    `padding` holds the padding where the spec has a runtime item (None):
    an index value (default: the spec's ints). `fill` is the value padding
    and inserted zeros take (a quantized input's zero point; default 0).
    """
    spec, window = plan.spec, plan.window
    grouped, groups = plan.grouped_layout and not flat, spec.groups
    kernel = _kernel_sizes(plan, w)
    if grouped:
        x = builders.expand(x, 1, groups)
    pad_low, pad_high = _window_pads(plan, kernel, padding if padding is not None else list(spec.padding))
    x = builders.window_input(x, window.input_dilation, pad_low, pad_high, fill)
    if spec.transposed:
        w = builders.transposed_weight(w, groups, plan.kernel)  # [G, F/G, C/G, *k]
        if not grouped:
            w = builders.collapse(w, 0)
    elif grouped:
        w = builders.expand(w, 0, groups)
    acc_elem = builders.builtin_element_type(plan.accumulator_dtype)
    if bias is not None:
        bias = builders.convert_elements(builders.expand(bias, 0, groups) if grouped else bias, acc_elem)
    sizes = _result_sizes(plan, grouped, x, w, kernel)
    result = emitter(plan, x, w, builders.init_accumulator(sizes, acc_elem))
    if bias is not None:  # after the conv, not as its init: see builders.init_accumulator
        result = builders.add_bias(result, bias, sizes)
    if grouped:
        result = builders.collapse(result, 1)
    return builders.convert_elements(result, builders.builtin_element_type(spec.result.dtype))


def _kernel_sizes(plan: ConvPlan, w: ir.Value) -> list[builders.SizeValue]:
    """The kernel sizes: the plan's, or `tensor.dim` of the weight (axes 2.. in
    both the forward [F,C/G,*k] and the transposed [C,F/G,*k] layout)."""
    return [k if k is not None else builders.size_of(w, 2 + i) for i, k in enumerate(plan.kernel)]


def _window_pads(plan: ConvPlan, kernel: list[builders.SizeValue], padding: list[builders.SizeValue]
                 ) -> tuple[list[builders.SizeValue], list[builders.SizeValue]]:
    """The window's pads; those the plan left to run time (None) computed with
    plan.py's formulas on index values: forward p on both sides; transposed
    d*(k-1)-p low and d*(k-1)-p+op high."""
    spec = plan.spec
    low: list[builders.SizeValue] = []
    high: list[builders.SizeValue] = []
    for i, (lo, hi) in enumerate(zip(plan.window.pad_low, plan.window.pad_high, strict=False)):
        if lo is not None and hi is not None:
            low.append(lo)
            high.append(hi)
        elif not spec.transposed:
            low.append(padding[i])
            high.append(padding[i])
        else:
            reach = builders.multiply_size(builders.add_sizes(kernel[i], -1), spec.dilation[i])
            low.append(builders.subtract_sizes(reach, padding[i]))
            high.append(builders.add_sizes(low[-1], spec.output_padding[i]))
    return low, high


def _result_sizes(plan: ConvPlan, grouped: bool, x: ir.Value, w: ir.Value,
                  kernel: list[builders.SizeValue]) -> list[builders.SizeValue]:
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
            builders.size_of(x, lead + i), kernel[i], window.stride[i], window.dilation[i]
        ))
    return sizes


def _bias_info(bias: ir.Value) -> TensorInfo:
    info = parse_vtensor_type(str(bias.type))
    assert info is not None, "aten.convolution's bias is a ranked vtensor or none"
    return info


