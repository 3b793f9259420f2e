"""Read a `torch.aten.convolution` op into a plain-Python `ConvSpec`.

Nothing here creates IR. Every way an op can fail to be read is returned as a
`Refusal` whose reason names the operand and what was found, so the report can
say exactly why an op was left to torch-mlir.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch_mlir import ir

Dim = int | None  # None is a dynamic size ("?")

# Element types PyTorch's CPU convolution accepts, and so do we.
FLOAT_DTYPES = ("f16", "bf16", "f32", "f64")

# Quantized element types of a quantized convolution's input and weight, and
# the integer storage type each is made from (`aten._make_per_tensor_quantized_tensor`).
QUANTIZED_STORAGE = {"!torch.quint8": "ui8", "!torch.qint8": "si8"}
# A quantized convolution's result: the i32 accumulator (torch-mlir's QLinearConv
# import and its quantized-op fusion both produce this type).
QUANTIZED_RESULT = "!torch.qint32"
PER_TENSOR_OP = "torch.aten._make_per_tensor_quantized_tensor"
PER_CHANNEL_OP = "torch.aten._make_per_channel_quantized_tensor"

_VTENSOR = re.compile(r"^!torch\.vtensor<\[(?P<shape>[^\]]*)\],(?P<dtype>[^>]+)>$")


@dataclass(frozen=True)
class Refusal:
    """Why a convolution was left untouched. `reason` is one line for humans."""

    reason: str


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[Dim, ...]
    dtype: str

    @property
    def is_static(self) -> bool:
        return all(d is not None for d in self.shape)


@dataclass(frozen=True)
class QuantOperand:
    """How a quantized operand is made: `storage` integers (ui8 or si8) with a
    per-tensor `zero_point`; real value = scale * (q - zero_point). The scale
    does not enter the integer convolution (it is applied after it)."""

    storage: str
    zero_point: int


@dataclass(frozen=True)
class ConvSpec:
    """Everything the planner needs to know about one convolution.

    Layout: input [N, C, *spatial], weight [F, C/G, *kernel] (not transposed)
    or [C, F/G, *kernel] (transposed), result [N, F, *spatial_out].
    `entry` is the op it was read from: "convolution" (`torch.aten.convolution`)
    or "conv_tbc" (`torch.aten.conv_tbc`, read into this layout by conv_tbc.py).
    """

    location: str
    input: TensorInfo
    weight: TensorInfo
    result: TensorInfo
    has_bias: bool
    stride: tuple[int, ...]
    padding: tuple[Dim, ...]  # None: a !torch.int known only at run time (e.g. "same" with a dynamic kernel)
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    transposed: bool
    groups: int
    entry: str = "convolution"
    # The result's only uses are `torch.aten.permute` to channels-last
    # ([0, 2, 3, 1] in 2D): an emitter may compute in NHWC so that its
    # transpose back to NCHW cancels against that permute.
    channels_last_result: bool = False
    bias_dtype: str | None = None  # None: no bias
    # Both set for a quantized convolution (input and weight !torch.quint8/qint8).
    input_quant: QuantOperand | None = None
    weight_quant: QuantOperand | None = None

    @property
    def quantized(self) -> bool:
        return self.input_quant is not None or self.weight_quant is not None

    @property
    def spatial_rank(self) -> int:
        return len(self.input.shape) - 2

    @property
    def in_channels(self) -> Dim:
        return self.input.shape[1]

    @property
    def out_channels(self) -> Dim:
        return self.result.shape[1]

    @property
    def kernel(self) -> tuple[Dim, ...]:
        return self.weight.shape[2:]


def parse_vtensor_type(type_text: str) -> TensorInfo | None:
    """`!torch.vtensor<[1,?,8],f32>` -> TensorInfo((1, None, 8), "f32"); None if unranked."""
    match = _VTENSOR.match(type_text)
    if match is None:
        return None
    dims = match["shape"].split(",") if match["shape"] else []
    shape = tuple(None if d.strip() == "?" else int(d) for d in dims)
    return TensorInfo(shape, match["dtype"].strip())


def constant_int(value: ir.Value) -> int | None:
    op = _defining_op(value)
    if op is None or op.name != "torch.constant.int":
        return None
    return int(ir.IntegerAttr(op.attributes["value"]).value)


def constant_bool(value: ir.Value) -> bool | None:
    op = _defining_op(value)
    if op is None or op.name != "torch.constant.bool":
        return None
    return bool(ir.BoolAttr(op.attributes["value"]).value)


def constant_int_list(value: ir.Value) -> tuple[int, ...] | None:
    op = _defining_op(value)
    if op is None or op.name != "torch.prim.ListConstruct":
        return None
    items = [constant_int(v) for v in op.operands]
    if any(i is None for i in items):
        return None
    return tuple(i for i in items if i is not None)


def int_list_items(value: ir.Value) -> tuple[int | None, ...] | None:
    """The items of a `torch.prim.ListConstruct`: ints where constant, None where
    a runtime !torch.int; None if `value` is not a ListConstruct."""
    op = _defining_op(value)
    if op is None or op.name != "torch.prim.ListConstruct":
        return None
    return tuple(constant_int(v) for v in op.operands)


def runtime_int_list(value: ir.Value) -> list[ir.Value]:
    """The `!torch.int` items of the ListConstruct `value` (see `int_list_items`)."""
    op = _defining_op(value)
    assert op is not None and op.name == "torch.prim.ListConstruct"
    return list(op.operands)


def is_none(value: ir.Value) -> bool:
    op = _defining_op(value)
    return op is not None and op.name == "torch.constant.none"


def _defining_op(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return owner.operation if isinstance(owner, (ir.Operation, ir.OpView)) else None


CHANNELS_LAST_PERMUTE = (0, 2, 3, 1)


def permuted_to_channels_last(result: ir.Value) -> bool:
    """Whether `result` is used, and only by `torch.aten.permute` with dims [0, 2, 3, 1]."""
    users = [use.owner for use in result.uses]
    return bool(users) and all(
        user.name == "torch.aten.permute" and constant_int_list(user.operands[1]) == CHANNELS_LAST_PERMUTE
        for user in users
    )


def read_conv_spec(op: ir.Operation) -> ConvSpec | Refusal:
    """Read the operands of `torch.aten.convolution` (input, weight, bias,
    stride, padding, dilation, transposed, output_padding, groups)."""
    x, w, b, stride, padding, dilation, transposed, output_padding, groups = op.operands
    tensors: dict[str, TensorInfo] = {}
    for name, value in (("input", x), ("weight", w), ("result", op.results[0])):
        info = parse_vtensor_type(str(value.type))
        if info is None:
            return Refusal(f"{name} has type {value.type}; a ranked !torch.vtensor with a known dtype is required")
        tensors[name] = info
    lists: dict[str, tuple[int, ...]] = {}
    for name, value in (("stride", stride), ("dilation", dilation), ("output_padding", output_padding)):
        items = constant_int_list(value)
        if items is None:
            return Refusal(f"{name} is not a list of constant ints")
        lists[name] = items
    # Padding may be computed at run time (torch-mlir's padding="same" with a
    # dynamic kernel: (k-1)//2 from aten.size.int); the emitter reads those items.
    padding_items = int_list_items(padding)
    if padding_items is None:
        return Refusal("padding is not a list of ints (torch.prim.ListConstruct)")
    is_transposed = constant_bool(transposed)
    if is_transposed is None:
        return Refusal("transposed is not a constant bool")
    group_count = constant_int(groups)
    if group_count is None:
        return Refusal("groups is not a compile-time constant int; expand_shape needs a constant group count")
    quant: dict[str, QuantOperand | None] = {}
    for name, value in (("input", x), ("weight", w)):
        operand = read_quant_operand(name, value, tensors[name].dtype)
        if isinstance(operand, Refusal):
            return operand
        quant[f"{name}_quant"] = operand
    bias_info = None if is_none(b) else parse_vtensor_type(str(b.type))
    return ConvSpec(
        location=str(op.location),
        input=tensors["input"],
        weight=tensors["weight"],
        result=tensors["result"],
        has_bias=not is_none(b),
        transposed=is_transposed,
        groups=group_count,
        channels_last_result=permuted_to_channels_last(op.results[0]),
        bias_dtype=None if bias_info is None else bias_info.dtype,
        input_quant=quant["input_quant"],
        weight_quant=quant["weight_quant"],
        stride=lists["stride"],
        padding=padding_items,
        dilation=lists["dilation"],
        output_padding=lists["output_padding"],
    )


def read_quant_operand(name: str, value: ir.Value, dtype: str) -> QuantOperand | Refusal | None:
    """For a `!torch.quint8`/`!torch.qint8` operand, its storage type and zero
    point, read from the `aten._make_per_tensor_quantized_tensor` that makes it
    (None for any other dtype). The zero point must be a constant int."""
    if dtype not in QUANTIZED_STORAGE:
        return None
    op = _defining_op(value)
    found = "a block argument" if op is None else op.name
    if op is not None and op.name == PER_CHANNEL_OP:
        return Refusal(f"{name} is {dtype} quantized per channel ({PER_CHANNEL_OP}); only per-tensor "
                       "quantization is lowered (torch-mlir's ONNX import dequantizes per-channel weights "
                       "to a float convolution instead)")
    if op is None or op.name != PER_TENSOR_OP:
        return Refusal(f"{name} is {dtype} but made by {found}, not {PER_TENSOR_OP}; its zero point is unknown")
    storage = parse_vtensor_type(str(op.operands[0].type))
    zero_point = constant_int(op.operands[2])
    if zero_point is None:
        return Refusal(f"{name}'s zero point ({PER_TENSOR_OP} operand 2) is not a constant int")
    if storage is None or storage.dtype != QUANTIZED_STORAGE[dtype]:
        return Refusal(f"{name} is {dtype} made from {op.operands[0].type}; expected {QUANTIZED_STORAGE[dtype]} storage")
    return QuantOperand(storage.dtype, zero_point)


def quantized_storage(value: ir.Value) -> ir.Value:
    """The integer tensor a per-tensor quantized operand is made from (its
    `aten._make_per_tensor_quantized_tensor`'s first operand); `read_quant_operand`
    checked that it has one."""
    op = _defining_op(value)
    assert op is not None and op.name == PER_TENSOR_OP, f"{value} is not made by {PER_TENSOR_OP}"
    return op.operands[0]
