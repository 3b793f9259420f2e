"""Layout helpers for the strategy emitters: transposes, channel slices and
reshapes on builtin tensors. `shape` insists on static dims; `sizes`,
`extract`, `reshape`, `transpose` and `add_tensors` also take SSA sizes (a dynamic
batch or spatial dim, which `taps`, `im2col` and `matmul` support; the
strategy selector falls back to the default emitters for a dynamic channel
dim, see strategies/strategy.py `Coverage`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from torch_grouped_conv.rewrite.emit.builders import (
    DYNAMIC,
    SizeValue,
    as_dims,
    dynamic_values,
    sizes_of,
    static_dims,
    tensor_type,
)

# NCHW <-> NHWC, as linalg.transpose permutations (result dim i = input dim perm[i]).
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


def shape(value: ir.Value) -> list[int]:
    dims = static_dims(value)
    assert all(d is not None for d in dims), "strategy emitters run on static shapes only"
    return [d for d in dims if d is not None]


def sizes(value: ir.Value) -> list[SizeValue]:
    """Every dim of `value`: an int when static, else a tensor.dim (the batch dim of a dynamic-batch conv)."""
    return sizes_of(value)


def static_list(values: Sequence[SizeValue]) -> list[int]:
    """The static-size list of a slice or reshape op: DYNAMIC markers for SSA sizes."""
    return [DYNAMIC() if d is None else d for d in as_dims(values)]


def extract(value: ir.Value, offsets: Sequence[int], slice_sizes: Sequence[SizeValue], strides: Sequence[int],
            result_sizes: Sequence[SizeValue] | None = None) -> ir.Value:
    """tensor.extract_slice with static offsets and strides; sizes may be SSA
    values. `result_sizes` (default `slice_sizes`) may drop unit dims (rank-reducing)."""
    result = tensor_type(as_dims(result_sizes if result_sizes is not None else slice_sizes), element_type_of(value))
    return tensor.extract_slice(result, value, [], dynamic_values(slice_sizes), [], list(offsets),
                                static_list(slice_sizes), list(strides))


def element_type_of(value: ir.Value) -> ir.Type:
    """The element type of a builtin tensor value."""
    return ir.RankedTensorType(value.type).element_type


def transpose(value: ir.Value, perm: Sequence[int]) -> ir.Value:
    """linalg.transpose into a fresh tensor.empty: result[i...] = value[perm-ed]
    (a dynamic dim's size read with tensor.dim)."""
    dims = sizes(value)
    empty = tensor.empty([dims[p] for p in perm], element_type_of(value))
    return linalg.transpose(value, outs=[empty], permutation=list(perm)).results[0]


def slice_axis(value: ir.Value, axis: int, offset: int, size: int) -> ir.Value:
    """value[..., offset:offset+size, ...] along `axis` (tensor.extract_slice)."""
    dims = shape(value)
    offsets = [offset if i == axis else 0 for i in range(len(dims))]
    sizes = [size if i == axis else d for i, d in enumerate(dims)]
    result = tensor_type(sizes, element_type_of(value))
    return tensor.extract_slice(result, value, [], [], [], offsets, sizes, [1] * len(dims))


def insert_axis(part: ir.Value, into: ir.Value, axis: int, offset: int) -> ir.Value:
    """`into` with `part` written at `offset` along `axis` (tensor.insert_slice)."""
    sizes = shape(part)
    offsets = [offset if i == axis else 0 for i in range(len(sizes))]
    return tensor.insert_slice(part, into, [], [], [], offsets, sizes, [1] * len(sizes))


def reshape(value: ir.Value, groups: Sequence[Sequence[int]], out_shape: Sequence[SizeValue]) -> ir.Value:
    """expand_shape (len(out_shape) > rank) or collapse_shape (<) with
    reassociation `groups` (a list of result/source dim lists). A size may be
    an SSA value (a dynamic dim kept whole, e.g. the batch)."""
    rank = ir.RankedTensorType(value.type).rank
    result = tensor_type(as_dims(out_shape), element_type_of(value))
    reassociation = [list(g) for g in groups]
    if len(out_shape) > rank:
        return tensor.expand_shape(result, value, reassociation, dynamic_values(out_shape), static_list(out_shape))
    return tensor.collapse_shape(result, value, reassociation)


def merge_groups(rank: int, first: int, count: int) -> list[list[int]]:
    """Reassociation merging dims first..first+count-1 of a rank-`rank` tensor."""
    before = [[i] for i in range(first)]
    after = [[i] for i in range(first + count, rank)]
    return before + [list(range(first, first + count))] + after


def parallel_generic(inputs: Sequence[ir.Value], init: ir.Value, maps: Sequence[ir.AffineMap],
                     body: Callable[[list[ir.Value]], ir.Value]) -> ir.Value:
    """A linalg.generic with all-parallel iterators over `init`'s shape;
    `body` gets the block arguments (inputs..., init) and returns the yield."""
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    op = linalg.GenericOp(
        [init.type], list(inputs), [init],
        ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
        ir.ArrayAttr.get([parallel] * maps[-1].n_dims),
    )
    block = op.regions[0].blocks.append(*[element_type_of(v) for v in (*inputs, init)])
    with ir.InsertionPoint(block):
        linalg.YieldOp([body(list(block.arguments))])
    return op.result


def add_tensors(a: ir.Value, b: ir.Value) -> ir.Value:
    """a + b elementwise (a linalg.generic: IREE 3.13 has no linalg.add)."""
    identity = ir.AffineMap.get_identity(ir.RankedTensorType(a.type).rank)
    init = tensor.empty(sizes(a), element_type_of(a))
    return parallel_generic([a, b], init, [identity] * 3, lambda args: arith.addf(args[0], args[1]))
