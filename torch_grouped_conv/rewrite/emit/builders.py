"""Small IR builders shared by the case emitters.

All of them create ops at the current insertion point and location (the
pattern sets both to the source convolution), and work on builtin tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeAlias

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor
from torch_mlir.dialects.linalg import IteratorType

from torch_grouped_conv.rewrite.read.spec import Dim, TensorInfo, parse_vtensor_type

SizeValue: TypeAlias = int | ir.Value  # a static size, or an index-typed SSA value

DYNAMIC = ir.ShapedType.get_dynamic_size


# A discardable unit attribute on a matmul-like op the plugin wants left out of
# IREE's data tiling; the `iree` runner turns it into data-tiling hints
# (runners/iree.py `hint_data_tiling`). Other consumers may ignore it.
NO_DATA_TILING = "torch_grouped_conv.no_data_tiling"


def builtin_element_type(dtype: str) -> ir.Type:
    """The builtin element type of a vtensor dtype; integers are signless
    (torch-mlir's backend type conversion: ui8/si8 -> i8, qint32 -> i32)."""
    return {
        "f16": ir.F16Type.get,
        "bf16": ir.BF16Type.get,
        "f32": ir.F32Type.get,
        "f64": ir.F64Type.get,
        "ui8": lambda: ir.IntegerType.get_signless(8),
        "si8": lambda: ir.IntegerType.get_signless(8),
        "si32": lambda: ir.IntegerType.get_signless(32),
        "i32": lambda: ir.IntegerType.get_signless(32),
        "!torch.qint32": lambda: ir.IntegerType.get_signless(32),
    }[dtype]()


def tensor_type(shape: Sequence[Dim], elem: ir.Type) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([DYNAMIC() if d is None else d for d in shape], elem)


def to_builtin(value: ir.Value, info: TensorInfo) -> ir.Value:
    """!torch.vtensor -> builtin tensor (torch_c must be loaded in the context)."""
    result_type = tensor_type(info.shape, builtin_element_type(info.dtype))
    return ir.Operation.create("torch_c.to_builtin_tensor", results=[result_type], operands=[value]).result


def from_builtin(value: ir.Value, vtensor_type: ir.Type) -> ir.Value:
    """builtin tensor -> `vtensor_type`, through a `tensor.cast` where the result
    type knows a size the computation does not (e.g. torch.export with Dim.AUTO
    can give dynamic inputs a static result: conv_tbc's [7, 4, 6] from [?, ?, ?])."""
    info = parse_vtensor_type(str(vtensor_type))
    if info is not None:
        want = tensor_type(info.shape, ir.RankedTensorType(value.type).element_type)
        if value.type != want:
            value = tensor.cast(want, value)
    return ir.Operation.create("torch_c.from_builtin_tensor", results=[vtensor_type], operands=[value]).result


def index(n: int) -> ir.Value:
    return arith.constant(ir.IndexType.get(), n)


def torch_int_to_index(value: ir.Value) -> ir.Value:
    """A `!torch.int` as an index value (torch_c.to_i64, then arith.index_cast)."""
    i64 = ir.Operation.create("torch_c.to_i64", results=[ir.IntegerType.get_signless(64)], operands=[value]).result
    return arith.index_cast(ir.IndexType.get(), i64)


def static_dims(value: ir.Value) -> list[Dim]:
    shaped = ir.RankedTensorType(value.type)
    return [None if shaped.is_dynamic_dim(i) else shaped.get_dim_size(i) for i in range(shaped.rank)]


def after_definition(value: ir.Value) -> ir.InsertionPoint:
    """Just after `value` is defined (block start for a block argument).

    Size computations (tensor.dim, divui) are placed there rather than where
    they are needed: upstream linalg-fuse-elementwise-ops moves an
    expand_shape above its source's producer and would otherwise leave the
    expand's dynamic output_shape operands defined after their use.
    """
    owner = value.owner
    if isinstance(owner, ir.Block):
        return ir.InsertionPoint.at_block_begin(owner)
    return ir.InsertionPoint.after(owner)


def size_of(value: ir.Value, axis: int) -> SizeValue:
    """The size of `axis`: an int when static, else a `tensor.dim` right after `value`'s definition."""
    dim = static_dims(value)[axis]
    if dim is not None:
        return dim
    with after_definition(value):
        return tensor.dim(value, index(axis))


def as_dims(sizes: Sequence[SizeValue]) -> list[Dim]:
    return [s if isinstance(s, int) else None for s in sizes]


def dynamic_values(sizes: Sequence[SizeValue]) -> list[ir.Value]:
    return [s for s in sizes if not isinstance(s, int)]


def zero(elem: ir.Type) -> ir.Value:
    return constant(elem, 0)


def constant(elem: ir.Type, value: int) -> ir.Value:
    """A scalar `arith.constant` of a float or integer type."""
    if isinstance(elem, ir.IntegerType):
        return arith.constant(elem, ir.IntegerAttr.get(elem, value))
    return arith.constant(elem, float(value))


def conv_output_size(padded: SizeValue, kernel: SizeValue, stride: int, dilation: int) -> SizeValue:
    """(Hp - d*(k-1) - 1) floordiv s + 1, on ints or on index values (k too may be a value)."""
    if isinstance(kernel, int):
        reach: SizeValue = dilation * (kernel - 1) + 1
    else:
        reach = add_sizes(multiply_size(add_sizes(kernel, -1), dilation), 1)
    if isinstance(padded, int) and isinstance(reach, int):
        return (padded - reach) // stride + 1
    span = subtract_sizes(padded, reach)
    return arith.addi(arith.divui(as_value(span), index(stride)), index(1))


def init_accumulator(sizes: Sequence[SizeValue], elem: ir.Type) -> ir.Value:
    """[N, F, *spatial] (grouped: [N, G, F/G, *spatial]) filled with zeros.

    The bias is never the accumulator's init; `add_bias` adds it after the
    conv. With a bias broadcast as init, IREE 3.13 fails on whole families of
    convs ("write affecting operations on global resources are restricted to
    workgroup distributed contexts"): when every batch/spatial dim is 1 the
    broadcast folds into the bias constant, which becomes the reduction's
    `outs` and is copied into the result buffer outside the distributed loop
    (e.g. a 3D grouped conv with output [1, G, 1, 1, 1]); with a dynamic
    per-group channel dim the broadcast init is not distributed either. A
    zero fill plus an elementwise add, which IREE fuses into the conv's
    dispatch, compiles in both.
    """
    return linalg.fill(zero(elem), outs=[tensor.empty(list(sizes), elem)])


def add_bias(result: ir.Value, bias: ir.Value, sizes: Sequence[SizeValue]) -> ir.Value:
    """result[n, f, *o] + bias[f] (grouped: [n, g, f, *o] + bias[g, f]), one linalg.generic.

    `sizes` are the accumulator's (as given to `init_accumulator`), so that the
    conv's result has this op as its only user (no tensor.dim of it)."""
    rank, bias_rank = ir.RankedTensorType(result.type).rank, ir.RankedTensorType(bias.type).rank
    d = dim_exprs(rank)
    identity = ir.AffineMap.get_identity(rank)
    maps = [identity, affine_map(rank, d[1:1 + bias_rank]), identity]
    elem = ir.RankedTensorType(result.type).element_type
    init = tensor.empty(list(sizes), elem)
    return generic([result, bias], init, maps, [IteratorType.parallel] * rank, lambda r, b, _out: add_scalars(r, b))


def add_scalars(a: ir.Value, b: ir.Value) -> ir.Value:
    """a + b for scalars of one float or integer type (quantized convs accumulate in i32)."""
    return arith.addi(a, b) if isinstance(a.type, ir.IntegerType) else arith.addf(a, b)


def expand(value: ir.Value, axis: int, groups: int, split: SizeValue | None = None) -> ir.Value:
    """Split `axis` of `value` into [groups, size/groups] with tensor.expand_shape.

    A dynamic size becomes [groups, ?]; its runtime size is size/groups, which
    is exact because the planner checked (or assumed, for dynamic channels)
    that groups divides it. `split`, when given, is the size of `axis` taken
    from a value defined earlier than `value` (see `after_definition`).
    """
    rank = ir.RankedTensorType(value.type).rank
    sizes = [size_of(value, i) for i in range(rank)]
    if split is not None and not isinstance(sizes[axis], int):
        sizes[axis] = split
    split = sizes[axis]
    inner: SizeValue
    if isinstance(split, int):
        inner = split // groups
    else:
        with after_definition(split):
            inner = arith.divui(split, index(groups))
    out_sizes = sizes[:axis] + [groups, inner] + sizes[axis + 1:]
    reassociation = [[i] for i in range(axis)] + [[axis, axis + 1]] + [[i + 1] for i in range(axis + 1, rank)]
    elem = ir.RankedTensorType(value.type).element_type
    result_type = tensor_type(as_dims(out_sizes), elem)
    static_shape = [DYNAMIC() if d is None else d for d in as_dims(out_sizes)]
    return tensor.expand_shape(result_type, value, reassociation, dynamic_values(out_sizes), static_shape)


def collapse(value: ir.Value, axis: int) -> ir.Value:
    """Merge dims `axis` and `axis + 1` of `value` (inverse of `expand`)."""
    dims = static_dims(value)
    outer, inner = dims[axis], dims[axis + 1]
    merged = None if outer is None or inner is None else outer * inner
    out_dims = dims[:axis] + [merged] + dims[axis + 2:]
    reassociation = [[i] for i in range(axis)] + [[axis, axis + 1]] + [[i + 1] for i in range(axis + 1, len(dims) - 1)]
    elem = ir.RankedTensorType(value.type).element_type
    return tensor.collapse_shape(tensor_type(out_dims, elem), value, reassociation)


# ----------------------------------------------------------------------------
# Index arithmetic on sizes that may be static ints or index values
# (`*_sizes`/`*_size`; the elementwise ops on tensors are layout.add_tensors
# and add_bias, on scalars add_scalars).


def add_sizes(a: SizeValue, b: SizeValue) -> SizeValue:
    """a + b: an int when both are, else an index value (a constant added as addi/subi of its magnitude)."""
    if isinstance(b, int):
        return a + b if isinstance(a, int) else _offset(a, b)
    if isinstance(a, int):
        return _offset(b, a)
    return arith.addi(a, b)


def _offset(size: ir.Value, n: int) -> ir.Value:
    return size if n == 0 else arith.addi(size, index(n)) if n > 0 else arith.subi(size, index(-n))


def as_value(size: SizeValue) -> ir.Value:
    return index(size) if isinstance(size, int) else size


def subtract_sizes(a: SizeValue, b: SizeValue) -> SizeValue:
    """a - b: an int when both are, else an index value."""
    if isinstance(b, int):
        return add_sizes(a, -b)
    return arith.subi(as_value(a), b)


def multiply_size(size: SizeValue, n: int) -> SizeValue:
    if isinstance(size, int):
        return size * n
    return size if n == 1 else arith.muli(size, index(n))


def ceil_div(size: SizeValue, n: int) -> SizeValue:
    """ceil(size / n) of a non-negative size."""
    if isinstance(size, int):
        return -(-size // n)
    return size if n == 1 else arith.divui(arith.addi(size, index(n - 1)), index(n))


def product(sizes: Sequence[SizeValue]) -> SizeValue:
    """The product of sizes: an int when all are static, else an index value."""
    static = math.prod(s for s in sizes if isinstance(s, int))
    total: SizeValue = static
    for size in sizes:
        if not isinstance(size, int):
            total = size if isinstance(total, int) and total == 1 else arith.muli(as_value(total), size)
    return total


def positive_part(size: SizeValue) -> SizeValue:
    """max(size, 0), signed (a runtime pad amount may be negative: then it crops)."""
    if isinstance(size, int):
        return max(size, 0)
    return arith.maxsi(size, index(0))


def negative_part(size: SizeValue) -> SizeValue:
    """max(-size, 0): how much a (possibly negative) pad amount crops."""
    if isinstance(size, int):
        return max(-size, 0)
    return arith.maxsi(arith.subi(index(0), size), index(0))


def dilated_size(size: SizeValue, factor: int) -> SizeValue:
    """(H - 1) * factor + 1: the length after inserting factor-1 zeros between elements."""
    if isinstance(size, int):
        return (size - 1) * factor + 1
    if factor == 1:
        return size
    return arith.addi(arith.muli(arith.subi(size, index(1)), index(factor)), index(1))


def sizes_of(value: ir.Value) -> list[SizeValue]:
    return [size_of(value, i) for i in range(ir.RankedTensorType(value.type).rank)]


def _mixed(sizes: Sequence[SizeValue]) -> tuple[list[ir.Value], list[int]]:
    """Split sizes into (dynamic values, static list with DYNAMIC markers) for slice ops."""
    return dynamic_values(sizes), [DYNAMIC() if d is None else d for d in as_dims(sizes)]


# ----------------------------------------------------------------------------
# Input preparation: zero insertion, padding and cropping of [N, C, *spatial].


def dilate_and_pad_spatial(x: ir.Value, factors: Sequence[int], low: Sequence[SizeValue],
                           high: Sequence[SizeValue], fill: int = 0) -> ir.Value:
    """Insert factor-1 zeros between the elements of each spatial dim, and
    zero-pad by low/high (all >= 0; ints or index values), in one step (`fill`
    instead of zero: a quantized input's zero point):

        zeros[N, C, low + (H-1)*s+1 + high, ...] with x inserted at offset
        `low`, stride `s` (tensor.insert_slice with strides).

    One insert rather than insert + tensor.pad: with dynamic spatial sizes
    IREE 3.13 miscompiles a tensor.pad of the strided insert (wrong values).
    """
    elem = ir.RankedTensorType(x.type).element_type
    sizes = sizes_of(x)
    lead = len(sizes) - len(factors)  # [N, C] or grouped [N, G, C/G]
    out_sizes = sizes[:lead] + [add_sizes(add_sizes(dilated_size(s, f), lo), hi)
                                for s, f, lo, hi in zip(sizes[lead:], factors, low, high, strict=False)]
    zeros = linalg.fill(constant(elem, fill), outs=[tensor.empty(out_sizes, elem)])
    dyn_sizes, static_sizes = _mixed(sizes)
    dyn_offsets, static_offsets = _mixed([0] * lead + list(low))
    return tensor.insert_slice(x, zeros, dyn_offsets, dyn_sizes, [], static_offsets, static_sizes,
                               [1] * lead + list(factors))


def crop_spatial(x: ir.Value, low: Sequence[SizeValue], high: Sequence[SizeValue]) -> ir.Value:
    """Drop `low[i]` leading and `high[i]` trailing elements of spatial dim i (all >= 0)."""
    if all(isinstance(v, int) and v == 0 for v in (*low, *high)):
        return x
    sizes = sizes_of(x)
    lead = len(sizes) - len(low)
    out_sizes = sizes[:lead] + [subtract_sizes(subtract_sizes(s, lo), hi)
                                for s, lo, hi in zip(sizes[lead:], low, high, strict=False)]
    dyn_sizes, static_sizes = _mixed(out_sizes)
    dyn_offsets, static_offsets = _mixed([0] * lead + list(low))
    elem = ir.RankedTensorType(x.type).element_type
    result_type = tensor_type(as_dims(out_sizes), elem)
    return tensor.extract_slice(result_type, x, dyn_offsets, dyn_sizes, [], static_offsets, static_sizes,
                                [1] * len(sizes))


def pad_spatial(x: ir.Value, low: Sequence[int], high: Sequence[int], fill: int | ir.Value = 0) -> ir.Value:
    """Pad the last len(low) dims (the spatial ones, or every dim) by `low[i]` before and
    `high[i]` after (all >= 0) with `fill`: an int (default zero) or a scalar value."""
    if not any(low) and not any(high):
        return x
    elem = ir.RankedTensorType(x.type).element_type
    pad_value = fill if isinstance(fill, ir.Value) else constant(elem, fill)
    lead = ir.RankedTensorType(x.type).rank - len(low)
    lows, highs = [0] * lead + list(low), [0] * lead + list(high)
    shape = [None if d is None else d + lo + hi for d, lo, hi in zip(static_dims(x), lows, highs, strict=False)]
    pad = tensor.PadOp(tensor_type(shape, elem), x, [], [], lows, highs)
    block = pad.region.blocks.append(*[ir.IndexType.get()] * len(lows))
    with ir.InsertionPoint(block):
        tensor.YieldOp(pad_value)
    return pad.result


def window_input(x: ir.Value, factors: Sequence[int], low: Sequence[SizeValue],
                 high: Sequence[SizeValue], fill: int = 0) -> ir.Value:
    """The forward conv's input: x dilated by `factors`, padded by the positive
    low/high amounts (inserted and padded elements are `fill`), then cropped
    by the negative ones.

    Amounts are ints, or index values whose sign is known only at run time
    (a transposed conv with a dynamic kernel size): then the positive part
    pads (one strided insert into zeros, as for dilation) and the negative
    part crops.
    """
    pad_low, pad_high = [positive_part(v) for v in low], [positive_part(v) for v in high]
    runtime = any(not isinstance(v, int) for v in (*low, *high))
    if runtime or any(f > 1 for f in factors):
        x = dilate_and_pad_spatial(x, factors, pad_low, pad_high, fill)
    else:
        x = pad_spatial(x, [int(v) for v in pad_low], [int(v) for v in pad_high], fill)
    return crop_spatial(x, [negative_part(v) for v in low], [negative_part(v) for v in high])


# ----------------------------------------------------------------------------
# Generic ops built with the linalg Python bindings.


def affine_map(n_dims: int, exprs: Sequence[ir.AffineExpr]) -> ir.AffineMap:
    return ir.AffineMap.get(n_dims, 0, list(exprs))


def dim_exprs(n_dims: int) -> list[ir.AffineExpr]:
    return [ir.AffineDimExpr.get(i) for i in range(n_dims)]


def generic(inputs: Sequence[ir.Value], init: ir.Value, maps: Sequence[ir.AffineMap],
            iterators: Sequence[IteratorType], body: Callable[..., ir.Value]) -> ir.Value:
    """linalg.generic with one output; `body(*block_args)` returns the value to yield."""
    op = linalg.GenericOp_(
        list(inputs), [init],
        ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
        ir.ArrayAttr.get([ir.Attribute.parse(f"#linalg.iterator_type<{t.name.lower()}>") for t in iterators]),
    )
    with ir.InsertionPoint(op.regions[0].blocks[0]):
        linalg.YieldOp([body(*op.regions[0].blocks[0].arguments)])
    return op.result


def convert_elements(value: ir.Value, elem: ir.Type) -> ir.Value:
    """Elementwise arith.extf / arith.truncf of a float tensor to `elem` (a linalg.generic)."""
    source = ir.RankedTensorType(value.type)
    if source.element_type == elem:
        return value
    wider = ir.FloatType(elem).width > ir.FloatType(source.element_type).width
    init = tensor.empty(sizes_of(value), elem)
    identity = ir.AffineMap.get_identity(source.rank)
    convert = arith.extf if wider else arith.truncf
    return generic([value], init, [identity, identity], [IteratorType.parallel] * source.rank,
                   lambda x, _out: convert(elem, x))


def shift_to_signed(value: ir.Value) -> ir.Value:
    """Elementwise q - 128 on an i8 tensor holding ui8 data (wraps: flips the
    top bit), so that sign extension gives q - 128 (see plan.QuantPlan)."""
    source = ir.RankedTensorType(value.type)
    identity = ir.AffineMap.get_identity(source.rank)
    offset = constant(source.element_type, -128)
    return generic([value], tensor.empty(sizes_of(value), source.element_type), [identity, identity],
                   [IteratorType.parallel] * source.rank, lambda q, _out: arith.addi(q, offset))


def centered_i32(value: ir.Value, unsigned: bool, zero_point: int) -> ir.Value:
    """Elementwise ext(q) - zero_point in i32 of an i8 tensor (`unsigned`: ui8
    data, zero-extended): the real value over its scale, exactly. A conv of
    such operands is an ordinary integer conv (zero padding, no zero points)."""
    source = ir.RankedTensorType(value.type)
    i32 = ir.IntegerType.get_signless(32)
    identity = ir.AffineMap.get_identity(source.rank)
    offset = constant(i32, zero_point)
    extend = arith.extui if unsigned else arith.extsi
    return generic([value], tensor.empty(sizes_of(value), i32), [identity, identity],
                   [IteratorType.parallel] * source.rank, lambda q, _out: arith.subi(extend(i32, q), offset))


def transposed_weight(w: ir.Value, groups: int, kernel: Sequence[Dim]) -> ir.Value:
    """A transposed conv's weight as the equivalent forward conv's, grouped.

    Layout: in [C, F/G, *k] -> expand [G, C/G, F/G, *k] -> out [G, F/G, C/G, *k]
    with every spatial index reversed: out[g, f, c, *i] = in[g, c, f, *(K-1-i)].
    A kernel size unknown at compile time (None) is read with tensor.dim.

    One linalg.generic gathering with linalg.index + tensor.extract (as
    torch-mlir lowers aten.flip): an indexing map with a negative coefficient
    (K-1-i) verifies, but IREE's tiling mis-sizes its slices. With every
    kernel size statically 1 there is nothing to flip: a linalg.transpose
    (IREE 3.13 with data tiling fails on the gather feeding a batch-1 conv
    with dynamic channels: "'affine.delinearize_index' op no basis element
    may be statically non-positive"; fuzz seed 302).
    """
    grouped = expand(w, 0, groups)
    sizes = sizes_of(grouped)
    out_sizes = [sizes[0], sizes[2], sizes[1], *sizes[3:]]
    elem = ir.RankedTensorType(w.type).element_type
    rank = len(out_sizes)
    if all(k == 1 for k in kernel):
        return linalg.transpose(grouped, outs=[tensor.empty(out_sizes, elem)], permutation=[0, 2, 1, *range(3, rank)]).results[0]
    identity = ir.AffineMap.get_identity(rank)
    # K-1 per spatial dim: static ones become constants in the body, dynamic ones are computed here.
    last = [k - 1 if k is not None else add_sizes(size, -1) for k, size in zip(kernel, sizes[3:], strict=False)]

    def gather(_out: ir.Value) -> ir.Value:
        g, f, c, *spatial = [linalg.IndexOp(i).result for i in range(rank)]
        flipped = [arith.subi(as_value(k_last), i) for k_last, i in zip(last, spatial, strict=False)]
        return tensor.extract(grouped, [g, c, f, *flipped])

    return generic([], tensor.empty(out_sizes, elem), [identity], [IteratorType.parallel] * rank, gather)
