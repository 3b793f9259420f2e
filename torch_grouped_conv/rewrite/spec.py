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
    return ir.IntegerAttr(op.attributes["value"]).value


def constant_bool(value: ir.Value) -> bool | None:
    op = _defining_op(value)
    if op is None or op.name != "torch.constant.bool":
        return None
    return ir.BoolAttr(op.attributes["value"]).value


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


def read_conv_spec(op: ir.Operation) -> ConvSpec | Refusal:
    """Read the operands of `torch.aten.convolution` (input, weight, bias,
    stride, padding, dilation, transposed, output_padding, groups)."""
    x, w, b, stride, padding, dilation, transposed, output_padding, groups = op.operands
    tensors = {}
    for name, value in (("input", x), ("weight", w), ("result", op.results[0])):
        info = parse_vtensor_type(str(value.type))
        if info is None:
            return Refusal(f"{name} has type {value.type}; a ranked !torch.vtensor with a known dtype is required")
        tensors[name] = info
    lists = {}
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
    lists["padding"] = padding_items
    is_transposed = constant_bool(transposed)
    if is_transposed is None:
        return Refusal("transposed is not a constant bool")
    group_count = constant_int(groups)
    if group_count is None:
        return Refusal("groups is not a compile-time constant int; expand_shape needs a constant group count")
    return ConvSpec(
        location=str(op.location),
        input=tensors["input"],
        weight=tensors["weight"],
        result=tensors["result"],
        has_bias=not is_none(b),
        transposed=is_transposed,
        groups=group_count,
        **lists,
    )
