"""`linalg.pack` / `linalg.unpack` as reshapes and transposes, for the
embedded runner.

IREE lowers pack and unpack itself (they are its data-tiling ops); the
refback pipeline of torch-mlir 20261001 bufferizes them but has no pass that
lowers them to loops, and the JIT then fails on the leftover ops. So before
that pipeline (runners/refbackend.py) every pack with static inner tiles becomes

  tensor.pad (only when a tiled dim is not a multiple of its tile; with the
  pack's padding value) -> tensor.expand_shape (dim d -> [d/t, t]) ->
  linalg.transpose (outer dims in `outer_dims_perm` order, then the tiles in
  `inner_dims_pos` order)

and every unpack the inverse: linalg.transpose -> tensor.collapse_shape ->
tensor.extract_slice (when the destination is smaller than the tiles).
The same decomposition as MLIR's `linalg::lowerPack` / `lowerUnPack`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch_mlir import ir

from torch_grouped_conv.errors import CompileError
from torch_grouped_conv.rewrite.driver import ops_named
from torch_grouped_conv.rewrite.emit.builders import pad_spatial
from torch_grouped_conv.rewrite.emit.layout import extract, reshape, shape, transpose

PACK, UNPACK = "linalg.pack", "linalg.unpack"


def tiled_layout(rank: int, inner_dims_pos: Sequence[int], outer_dims_perm: Sequence[int]
                 ) -> tuple[list[list[int]], list[int]]:
    """For a rank-`rank` tensor whose dims `inner_dims_pos` are split into
    [outer, tile]: the expand_shape reassociation (source dim -> expanded dims)
    and the permutation of the expanded dims that gives the packed layout."""
    groups: list[list[int]] = []
    outer: list[int] = []
    tile_at: dict[int, int] = {}
    position = 0
    for dim in range(rank):
        outer.append(position)
        if dim in inner_dims_pos:
            tile_at[dim] = position + 1
            groups.append([position, position + 1])
            position += 2
        else:
            groups.append([position])
            position += 1
    perm = [outer[d] for d in outer_dims_perm] + [tile_at[d] for d in inner_dims_pos]
    return groups, perm


def _attribute_ints(op: ir.Operation, name: str, default: Sequence[int]) -> list[int]:
    if name not in op.attributes:
        return list(default)
    return list(ir.DenseI64ArrayAttr(op.attributes[name]))


def _tiling(op: ir.Operation, rank: int) -> tuple[list[int], list[int], list[int]]:
    """(inner_dims_pos, static inner tiles, outer_dims_perm) of a pack or unpack
    over a rank-`rank` unpacked tensor; CompileError for a dynamic tile or shape."""
    tiles = _attribute_ints(op, "static_inner_tiles", [])
    if any(t < 0 for t in tiles) or not all(ir.RankedTensorType(v.type).has_static_shape for v in op.operands[:2]):
        raise CompileError(f"refbackend: {op.name} with a dynamic tile or shape is not supported: {op}")
    return (_attribute_ints(op, "inner_dims_pos", []), tiles,
            _attribute_ints(op, "outer_dims_perm", range(rank)))


def lower_pack(op: ir.Operation) -> ir.Value:
    """One `linalg.pack` as pad -> expand_shape -> transpose (module docstring)."""
    source = op.operands[0]
    inner, tiles, outer_perm = _tiling(op, ir.RankedTensorType(source.type).rank)
    dims, tile = shape(source), dict(zip(inner, tiles, strict=True))
    padded = [-(-size // tile[d]) * tile[d] if d in tile else size for d, size in enumerate(dims)]
    if padded != dims:
        if len(op.operands) < 3:
            raise CompileError(f"refbackend: {op.name} of an incomplete tile has no padding value: {op}")
        source = pad_spatial(source, [0] * len(dims), [p - size for p, size in zip(padded, dims, strict=True)],
                             op.operands[2])
    groups, perm = tiled_layout(len(dims), inner, outer_perm)
    expanded: list[int] = []
    for d, size in enumerate(padded):
        expanded += [size // tile[d], tile[d]] if d in tile else [size]
    return transpose(reshape(source, groups, expanded), perm)


def lower_unpack(op: ir.Operation) -> ir.Value:
    """One `linalg.unpack` as transpose -> collapse_shape -> extract_slice (module docstring)."""
    source, dest = op.operands[0], op.operands[1]
    inner, tiles, outer_perm = _tiling(op, ir.RankedTensorType(dest.type).rank)
    dims = shape(dest)
    groups, perm = tiled_layout(len(dims), inner, outer_perm)
    inverse = [perm.index(i) for i in range(len(perm))]
    unpermuted = transpose(source, inverse)
    expanded = shape(unpermuted)
    full = [expanded[g[0]] * expanded[g[1]] if len(g) == 2 else expanded[g[0]] for g in groups]
    collapsed = reshape(unpermuted, groups, full)
    if full == dims:
        return collapsed
    return extract(collapsed, [0] * len(dims), dims, [1] * len(dims))


def decompose_packs(module: ir.Module) -> int:
    """Replace every pack and unpack of `module` in place (module docstring); the count replaced."""
    ops = ops_named(module, PACK) + ops_named(module, UNPACK)
    with module.context:
        for op in ops:
            with ir.InsertionPoint(op), op.location:
                value = lower_pack(op) if op.name == PACK else lower_unpack(op)
            op.results[0].replace_all_uses_with(value)
            op.erase()
    return len(ops)

