"""The sub-pixel (phase) decomposition of transposed convolutions, shared by
`taps` (one taps generic per phase) and `im2col`/`matmul` (one GEMM per
phase): a stride-s transposed conv is s^d stride-1 forward convs over the
undilated input, one per output phase, with only the kernel taps that land
on its nonzeros; their blocks are interleaved into the output. Also the
tap list of a window (`tap_offsets`, `TapSet`), which the taps emitters use
for forward convs too. Sizes may be SSA values (a dynamic batch or spatial
dim): block sizes, the undilated size and the read padding come from
tensor.dim; the tap sets depend only on kernel, stride, dilation and padding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from torch_grouped_conv.rewrite.emit.builders import (
    SizeValue,
    add_sizes,
    ceil_div,
    dilate_and_pad_spatial,
    multiply_size,
    pad_spatial,
    positive_part,
    subtract_sizes,
)
from torch_grouped_conv.rewrite.emit.layout import add_tensors, element_type_of, extract, parallel_generic, reshape, sizes
from torch_grouped_conv.rewrite.plan import ConvPlan

Tap = tuple[tuple[int, ...], tuple[int, ...]]  # (kernel index, input offset) per spatial dim


def tap_offsets(kernel: Sequence[int], dilation: Sequence[int]) -> list[Tap]:
    """(kernel index, input offset k_i*r_i) of every tap, row-major."""
    return [(k, tuple(i * r for i, r in zip(k, dilation, strict=False))) for k in itertools.product(*(range(n) for n in kernel))]


@dataclass(frozen=True)
class TapSet:
    """The taps one generic sums: kernel indices, the input offsets they read
    and the view stride, for an output block of `out_sizes`."""

    taps: list[Tap]
    stride: tuple[int, ...]
    out_sizes: tuple[SizeValue, ...]


def is_phased(plan: ConvPlan) -> bool:
    """A transposed conv with a stride > 1: split into output phases."""
    return plan.spec.transposed and any(s > 1 for s in plan.spec.stride)


def output_phases(plan: ConvPlan, out_sizes: Sequence[SizeValue]) -> list[tuple[tuple[int, ...], TapSet]]:
    """The tap sets that cover the output, each with its output phase.

    Forward conv: one set, every tap, the window's stride, phase 0.

    Transposed conv with stride s (the sub-pixel / phase decomposition): the
    prepared input x is the original one with s-1 zeros inserted, its nonzeros
    at positions j == b (mod s), b = pad_low mod s; `undilate` reads them back
    as u[i] = x[b + i*s]. Output o = q*s + r (phase r) reads x[o + k*d]
    through tap k, a nonzero for every q exactly when (r + k*d - b) % s == 0,
    and then it is u[q + (r + k*d - b) // s]. So phase r is a stride-1
    forward conv over u with the taps that pass, for q < ceil(O / s) (the
    last block may run past O; `by_phase` crops it); the taps that would hit
    inserted zeros are never emitted.
    """
    every = tap_offsets(plan.kernel_sizes, plan.window.dilation)
    if not is_phased(plan):
        return [((0,) * len(out_sizes), TapSet(every, plan.window.stride, tuple(out_sizes)))]
    stride, base = plan.spec.stride, nonzero_base(plan)
    blocks = tuple(ceil_div(o, s) for o, s in zip(out_sizes, stride, strict=False))
    ones = (1,) * len(stride)
    found = []
    for r in itertools.product(*(range(s) for s in stride)):
        reads = [(k, tuple(ri + oi for ri, oi in zip(r, off, strict=False))) for k, off in every]
        taps = [(k, tuple((t - b) // si for t, b, si in zip(at, base, stride, strict=False))) for k, at in reads
                if all((t - b) % si == 0 for t, b, si in zip(at, base, stride, strict=False))]
        found.append((r, TapSet(taps, ones, blocks)))
    return found


def nonzero_base(plan: ConvPlan) -> tuple[int, ...]:
    """Where the prepared input's first nonzero sits modulo the stride, per dim
    (static pads: the phase split runs on static kernels and padding)."""
    pads = [lo for lo in plan.window.pad_low if lo is not None]
    assert len(pads) == len(plan.window.pad_low), f"pads {list(plan.window.pad_low)} are known only at run time"
    return tuple(lo % s for lo, s in zip(pads, plan.spec.stride, strict=False))


def undilate(x: ir.Value, base: Sequence[int], stride: Sequence[int]) -> ir.Value:
    """x[:, :, b_i::s_i ...]: the nonzeros of the zero-inserted input (a strided
    tensor.extract_slice, which folds with the insert that made x)."""
    n, c, *spatial = sizes(x)
    kept = [ceil_div(subtract_sizes(size, b), si) for size, b, si in zip(spatial, base, stride, strict=False)]
    # a static dim holding no nonzero (the crop kept only inserted zeros): an empty
    # slice at offset 0 (offset b would be out of bounds); pad_for_reads zero-fills it
    offsets = [0 if k == 0 else b for k, b in zip(kept, base, strict=False)]
    return extract(x, [0, 0, *offsets], [n, c, *kept], [1, 1, *stride])


def pad_for_reads(x: ir.Value, tap_sets: Sequence[TapSet]) -> ir.Value:
    """x zero-padded at the end of each spatial dim so that every view of
    every tap set is in bounds (the phase blocks may read past the input).
    Every phase block has the same size Q and reads with stride 1, so a view
    at offset `off` reaches off + Q; the pad is max(reach - size, 0), computed
    when a size is dynamic (then an insert into zeros, `dilate_and_pad_spatial`
    with factor 1)."""
    spatial = sizes(x)[2:]
    (q_sizes,) = {ts.out_sizes for ts in tap_sets}
    assert all(s == 1 for ts in tap_sets for s in ts.stride)
    reach = [add_sizes(q, max(off[i] for ts in tap_sets for _, off in ts.taps)) for i, q in enumerate(q_sizes)]
    high = [positive_part(subtract_sizes(r, size)) for r, size in zip(reach, spatial, strict=False)]
    if all(isinstance(h, int) for h in high):
        return pad_spatial(x, [0] * len(spatial), [int(h) for h in high])
    return dilate_and_pad_spatial(x, [1] * len(spatial), [0] * len(spatial), high)


def interleave(blocks: dict[tuple[int, ...], ir.Value | None], stride: Sequence[int],
               block_sizes: Sequence[SizeValue], elem: ir.Type) -> ir.Value:
    """Phase blocks [N,F,*Q] (keyed by phase r; None: all zeros) ->
    [N,F,Q_1*s_1, ...] with out[..., q_i*s_i + r_i ...] = blocks[r][..., q_i ...].

    One all-parallel generic over [N,F,Q_1,s_1,Q_2,s_2,...] reading every
    block through (n,f,q_1,r_1,...) -> (n,f,q_1,...) and selecting by the
    phase (linalg.index), then a collapse. Concatenating the blocks instead
    (tensor.concat along unit dims) fails in IREE 3.13 llvm-cpu when a block
    is a constant fill ("write affecting operations on global resources are
    restricted to workgroup distributed contexts").
    """
    present = [(r, b) for r, b in blocks.items() if b is not None]
    n, f = sizes(present[0][1])[:2]
    d = len(stride)
    out_rank = 2 + 2 * d
    dims = [ir.AffineDimExpr.get(i) for i in range(out_rank)]
    read = ir.AffineMap.get(out_rank, 0, [dims[0], dims[1], *(dims[2 + 2 * i] for i in range(d))])
    init = tensor.empty([n, f, *itertools.chain.from_iterable(zip(block_sizes, stride, strict=False))], elem)
    index_type = ir.IndexType.get()

    def select(args: list[ir.Value]) -> ir.Value:
        phase = [linalg.IndexOp(3 + 2 * i).result for i in range(d)]
        result = arith.constant(elem, 0.0)
        for (r, _), value in zip(present, args, strict=False):
            hit = None
            for i, ri in enumerate(r):
                eq = arith.cmpi(arith.CmpIPredicate.eq, phase[i], arith.constant(index_type, ri))
                hit = eq if hit is None else arith.andi(hit, eq)
            result = arith.select(hit, value, result)
        return result

    out = parallel_generic([b for _, b in present], init, [read] * len(present) + [ir.AffineMap.get_identity(out_rank)],
                           select)
    pairs = [[0], [1], *([2 + 2 * i, 3 + 2 * i] for i in range(d))]
    return reshape(out, pairs, [n, f, *(multiply_size(qi, si) for qi, si in zip(block_sizes, stride, strict=False))])


def by_phase(plan: ConvPlan, x: ir.Value, acc: ir.Value,
             emit: Callable[[TapSet, ir.Value], ir.Value]) -> ir.Value:
    """A transposed conv with stride > 1, per output phase: `emit(tap_set, u)`
    computes each phase's block [N, F, *Q] over the undilated, end-padded
    input u as a plain sum (into a tensor.empty or a fresh fill; reading a
    shared zero-filled init instead gave wrong numbers after fusion), the
    blocks are interleaved (`interleave`), cropped to the output and the
    accumulator (bias) added. Writing the blocks into strided slices of the accumulator
    instead (tensor.insert_slice with strides) verifies but IREE 3.13
    llvm-cpu computes wrong values for it."""
    n, f, *out = sizes(acc)
    phased = output_phases(plan, out)
    assert len(phased) > 1, "by_phase is for transposed convs with stride > 1"
    active = [ts for _, ts in phased if ts.taps]
    u = pad_for_reads(undilate(x, nonzero_base(plan), plan.spec.stride), active)
    block_sizes = phased[0][1].out_sizes
    blocks = {r: emit(ts, u) if ts.taps else None for r, ts in phased}
    full = interleave(blocks, plan.spec.stride, block_sizes, element_type_of(acc))
    rank = len(sizes(acc))
    cropped = extract(full, [0] * rank, sizes(acc), [1] * rank)
    return add_tensors(cropped, acc)
