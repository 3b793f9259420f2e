"""The embedded runner's weights: large tensor constants of `@main` leave the
module and become trailing arguments, their data kept in numpy.

Why: the LLVM JIT turns every tensor constant into a global of nested LLVM
arrays (one uniqued LLVM constant per innermost row: a 3x3 kernel is one
3-element array per (out, in) channel pair) and compiles it into the object
code; on a whole network that is most of the JIT's time and memory. As an
argument the same data is one numpy array, passed by pointer on every call.

Read -> decide -> emit: `plan_hoist` reads `@main`'s entry block and returns
one `Hoisted` (the op and its data) per constant it takes; `hoist` appends
one block argument per plan, replaces the constant's uses with it, erases the
constant and rewrites `@main`'s function type. A constant stays in the module
when it is small (fewer than `MIN_ELEMENTS` elements: biases, scales, index
tables are cheap to JIT and may fold), a splat (one value, cheap), of an
element type the runner's calling convention does not take, or when its data
cannot be read from Python (a `dense<...>` bf16 constant: numpy has no bf16
buffer format).

Reading the data: a `dense<...>` attribute (DenseElementsAttr) exposes its
elements through the buffer protocol. A `dense_resource<...>` attribute
(torch.export's weights) does not: torch-mlir 20261001's bindings give it
`get_from_buffer` and `attr_name` only, and the C API reads it one element per
call. So its bytes are read from the printed form: the constant alone is
cloned into an empty module, and printing that module appends the blob as
hex (`{-# dialect_resources: { builtin: { name: "0x<alignment:4 bytes><data>" } } #-}`);
the hex after the 4 alignment bytes is the data, row-major, little-endian
(bool: one byte per element).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from torch_grouped_conv.runners.signature import argument_attributes, entry_function

# A tensor constant with at least this many elements becomes an argument.
# 4096 f32 elements are 16 KB: every weight of a net's convs and linears
# except the smallest depthwise kernels (32x1x3x3 is 288) is above it, every
# bias and per-channel scale (at most a few thousand channels) below it.
MIN_ELEMENTS = 4096

# Element types the calling convention passes (bf16: as its int16 bits; the
# runner retypes bf16 arguments to i16 at the boundary), with the numpy dtype
# of their buffer.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "f16": np.dtype(np.float16), "bf16": np.dtype(np.int16), "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64), "i1": np.dtype(np.bool_), "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16), "i32": np.dtype(np.int32), "i64": np.dtype(np.int64),
}


@dataclass(frozen=True)
class Hoisted:
    """One constant to take out: the `arith.constant` op and its data (C-contiguous, the
    tensor's shape, the buffer's dtype)."""

    op: ir.Operation
    data: np.ndarray


def plan_hoist(module: ir.Module, entry: str = "main", min_elements: int = MIN_ELEMENTS) -> list[Hoisted]:
    """The tensor constants of `entry`'s entry block to pass as arguments, in block order."""
    block = entry_function(module, entry).body.blocks[0]
    plans = []
    for op in block.operations:
        data = constant_data(op.operation, min_elements)
        if data is not None:
            data.flags.writeable = False  # shared by every call and thread
            plans.append(Hoisted(op.operation, data))
    return plans


def constant_data(op: ir.Operation, min_elements: int) -> np.ndarray | None:
    """The data of `op` if it is an `arith.constant` to hoist (see the module docstring), else None."""
    if op.name != "arith.constant" or not isinstance(op.result.type, ir.RankedTensorType):
        return None
    shaped = ir.RankedTensorType(op.result.type)
    dtype = STORAGE_DTYPES.get(str(shaped.element_type))
    if dtype is None or not shaped.has_static_shape or int(np.prod(shaped.shape)) < min_elements:
        return None
    value = op.attributes["value"]
    if _cast(ir.DenseResourceElementsAttr, value) is not None:
        return _resource_data(op, dtype, tuple(shaped.shape))
    dense = _cast(ir.DenseElementsAttr, value)
    if dense is not None and not dense.is_splat:
        return _dense_data(dense, dtype)
    return None


def _cast(kind: type[ir.Attribute], value: ir.Attribute) -> ir.Attribute | None:
    """`value` as `kind`, or None (the bindings downcast neither kind on their own)."""
    try:
        return kind(value)
    except ValueError:
        return None


def _dense_data(value: ir.DenseElementsAttr, dtype: np.dtype) -> np.ndarray | None:
    try:
        data = np.array(value.maybe_downcast())  # buffer protocol: a copy, the tensor's shape
    except (TypeError, ValueError):  # no buffer format (bf16)
        return None
    return np.ascontiguousarray(data) if data.dtype == dtype else None


def _resource_data(op: ir.Operation, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray | None:
    holder = ir.Module.create(op.location)
    with ir.InsertionPoint(holder.body):
        op.clone()
    text = holder.operation.get_asm()
    start = text.rfind('"0x')
    end = text.find('"', start + 1)
    if start < 0 or end < 0:
        return None
    raw = bytes.fromhex(text[start + 3:end])[4:]  # after the blob's alignment (4 bytes)
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        return None
    return np.frombuffer(raw, dtype).reshape(shape)


def hoist(module: ir.Module, plans: list[Hoisted], entry: str = "main") -> None:
    """Append one argument to `entry` per plan (after its own), replace the constant with it."""
    main = entry_function(module, entry)
    block = main.body.blocks[0]
    with module.context:
        for plan in plans:
            argument = block.add_argument(plan.op.result.type, plan.op.location)
            plan.op.result.replace_all_uses_with(argument)
            plan.op.erase()
        signature = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        main.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([a.type for a in block.arguments], signature.results))
        if "arg_attrs" in main.attributes:  # one dictionary per argument
            main.attributes["arg_attrs"] = ir.ArrayAttr.get(argument_attributes(main))
