"""Small IR builders shared by the case emitters.

All of them create ops at the current insertion point and location (the
pattern sets both to the source convolution), and work on builtin tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from .spec import Dim, TensorInfo

SizeValue = int | ir.Value  # a static size, or an index-typed SSA value

DYNAMIC = ir.ShapedType.get_dynamic_size


def element_type(dtype: str) -> ir.Type:
    return {
        "f16": ir.F16Type.get,
        "bf16": ir.BF16Type.get,
        "f32": ir.F32Type.get,
        "f64": ir.F64Type.get,
    }[dtype]()


def tensor_type(shape: Sequence[Dim], elem: ir.Type) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([DYNAMIC() if d is None else d for d in shape], elem)


def to_builtin(value: ir.Value, info: TensorInfo) -> ir.Value:
    """!torch.vtensor -> builtin tensor (torch_c must be loaded in the context)."""
    result_type = tensor_type(info.shape, element_type(info.dtype))
    return ir.Operation.create("torch_c.to_builtin_tensor", results=[result_type], operands=[value]).result


def from_builtin(value: ir.Value, vtensor_type: ir.Type) -> ir.Value:
    return ir.Operation.create("torch_c.from_builtin_tensor", results=[vtensor_type], operands=[value]).result


def index(n: int) -> ir.Value:
    return arith.constant(ir.IndexType.get(), n)


def static_dims(value: ir.Value) -> list[Dim]:
    shaped = ir.RankedTensorType(value.type)
    return [None if shaped.is_dynamic_dim(i) else shaped.get_dim_size(i) for i in range(shaped.rank)]


def size_of(value: ir.Value, axis: int) -> SizeValue:
    """The size of `axis`: an int when static, else a `tensor.dim`."""
    dim = static_dims(value)[axis]
    return dim if dim is not None else tensor.dim(value, index(axis))


def as_dims(sizes: Sequence[SizeValue]) -> list[Dim]:
    return [s if isinstance(s, int) else None for s in sizes]


def dynamic_values(sizes: Sequence[SizeValue]) -> list[ir.Value]:
    return [s for s in sizes if not isinstance(s, int)]


def zero(elem: ir.Type) -> ir.Value:
    return arith.constant(elem, 0.0)


def pad_spatial(x: ir.Value, padding: Sequence[int]) -> ir.Value:
    """Zero-pad the trailing spatial dims of [N, C, *spatial] by `padding` on both sides."""
    if not any(padding):
        return x
    elem = ir.RankedTensorType(x.type).element_type
    pad_value = zero(elem)
    low = [0, 0, *padding]
    shape = [None if d is None else d + 2 * p for d, p in zip(static_dims(x), low)]
    pad = tensor.PadOp(tensor_type(shape, elem), x, [], [], low, low)
    block = pad.region.blocks.append(*[ir.IndexType.get()] * len(low))
    with ir.InsertionPoint(block):
        tensor.YieldOp(pad_value)
    return pad.result


def conv_output_size(padded: SizeValue, kernel: int, stride: int, dilation: int) -> SizeValue:
    """(Hp - d*(k-1) - 1) floordiv s + 1, on ints or on index values."""
    reach = dilation * (kernel - 1) + 1
    if isinstance(padded, int):
        return (padded - reach) // stride + 1
    span = arith.subi(padded, index(reach))
    return arith.addi(arith.divui(span, index(stride)), index(1))


def init_accumulator(sizes: Sequence[SizeValue], elem: ir.Type, bias: ir.Value | None) -> ir.Value:
    """[N, F, *spatial] filled with bias[F] broadcast along the others, or zeros."""
    empty = tensor.empty(list(sizes), elem)
    if bias is None:
        return linalg.fill(zero(elem), outs=[empty])
    broadcast_dims = [i for i in range(len(sizes)) if i != 1]
    return linalg.broadcast(bias, outs=[empty], dimensions=broadcast_dims).results[0]


def expand(value: ir.Value, axis: int, groups: int) -> ir.Value:
    """Split `axis` of `value` into [groups, size/groups] with tensor.expand_shape.

    A dynamic size becomes [groups, ?]; its runtime size is size/groups, which
    is exact because the planner checked (or assumed, for dynamic channels)
    that groups divides it.
    """
    rank = ir.RankedTensorType(value.type).rank
    sizes = [size_of(value, i) for i in range(rank)]
    split = sizes[axis]
    inner: SizeValue = split // groups if isinstance(split, int) else arith.divui(split, index(groups))
    out_sizes = sizes[:axis] + [groups, inner] + sizes[axis + 1:]
    reassociation = [[i] for i in range(axis)] + [[axis, axis + 1]] + [[i + 1] for i in range(axis + 1, rank)]
    elem = ir.RankedTensorType(value.type).element_type
    result_type = tensor_type(as_dims(out_sizes), elem)
    static_shape = [DYNAMIC() if d is None else d for d in as_dims(out_sizes)]
    return tensor.expand_shape(result_type, value, reassociation, dynamic_values(out_sizes), static_shape)


def collapse(value: ir.Value, axis: int) -> ir.Value:
    """Merge dims `axis` and `axis + 1` of `value` (inverse of `expand`)."""
    dims = static_dims(value)
    merged = None if None in (dims[axis], dims[axis + 1]) else dims[axis] * dims[axis + 1]
    out_dims = dims[:axis] + [merged] + dims[axis + 2:]
    reassociation = [[i] for i in range(axis)] + [[axis, axis + 1]] + [[i + 1] for i in range(axis + 1, len(dims) - 1)]
    elem = ir.RankedTensorType(value.type).element_type
    return tensor.collapse_shape(tensor_type(out_dims, elem), value, reassociation)
