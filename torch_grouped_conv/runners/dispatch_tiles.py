"""Vector tile sizes for the `taps` dispatches, set by the `iree` runner
between iree-compile's configuration and its code generation.

IREE 3.13 configures the all-parallel generic of a `taps` convolution like
any elementwise op: vector tiles along the innermost dim only
(`vector_common_parallel = [1, ..., 1, 16]`), so each output vector loads
every tap's input and weight anew. Unrolling an outer dim as well lets one
load serve several accumulators:

- grouped taps, dims (g, f, oh, ow): the input views do not read f, so with
  f unrolled by 4 each input load feeds four output channels, and with the
  rows (oh) unrolled by 2 a row read for tap kh of row oh is the row of tap
  kh - 1 of row oh + 1;
- depthwise taps, dims (c, oh, ow) (and every other row-vectorized taps
  generic): the rows unrolled by 4.

Measured side by side on IREE-compiled conv + BN + ReLU (AMD EPYC Zen 4, 1
thread, ms, IREE's tiles -> these; docs/performance.md "Taps dispatch tiles"):
104g13@28² 0.330 -> 0.153, 208g26@14² 0.321 -> 0.102, 128g32@56² 0.739 ->
0.419, 256g32@56² s2 1.60 -> 0.81, 48g6@112² s2 1.04 -> 0.75; depthwise
96@56² k7 0.748 -> 0.462, 240@28² k5 0.300 -> 0.190, 384@14² 0.065 -> 0.053,
32@112² 0.245 -> 0.217. Channel-blocked taps ([.., 16] channels innermost,
whose weights vary along the vector) gained nothing and are left alone, as is
every dispatch that is not a taps generic.

read (`read_generic`: one configured linalg.generic line of
`iree-compile --compile-to=executable-configurations --mlir-print-local-scope`
output) -> decide (`taps_vector_sizes`, pure) -> emit (`retune_taps`: the
text with the new sizes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch_mlir import ir

from torch_grouped_conv.rewrite.driver import ops_named

# The two iree-compile phases around the edit (runners/iree.py).
CONFIGURE_FLAGS = ["--compile-to=executable-configurations", "--mlir-print-local-scope", "--mlir-print-debuginfo"]
RESUME_FLAGS = ["--compile-from=executable-configurations"]
PHASE_FLAG_PREFIXES = ("--compile-to", "--compile-from")

MIN_INPUTS = 9  # a 3x3 window's taps and weights at least; below that no generic is a taps conv
BROADCAST_UNROLL = 4  # a dim the input views do not read (grouped taps' f)
ROW_UNROLL_WITH_BROADCAST = 2  # the rows, beside that
ROW_UNROLL = 4  # the rows, otherwise (depthwise)

_CONFIG = re.compile(r"#iree_cpu\.lowering_config<distribution = \[([0-9, ]*)\], "
                     r"vector_common_parallel = \[([0-9, ]*)\]>")
_MAP = re.compile(r"affine_map<\(([^)]*)\) -> \(([^)]*)\)>")
_ITERATORS = re.compile(r"iterator_types = \[([^\]]*)\]")


@dataclass(frozen=True)
class ConfiguredGeneric:
    """What `taps_vector_sizes` needs of one configured linalg.generic."""

    distribution: tuple[int, ...]  # workgroup tile per loop (0: not distributed)
    vector: tuple[int, ...]  # vector tile per loop
    input_dims: tuple[tuple[int, ...], ...]  # the loops each input's indexing map reads
    parallel: bool  # every loop parallel


@dataclass(frozen=True)
class Retuned:
    """One dispatch whose vector tiles were changed."""

    before: tuple[int, ...]
    after: tuple[int, ...]

    def describe(self) -> str:
        return f"vector tiles {list(self.before)} -> {list(self.after)}"


def taps_vector_sizes(generic: ConfiguredGeneric) -> tuple[int, ...] | None:
    """The vector tiles for a taps generic, or None to keep IREE's.

    A taps generic: all loops parallel, at least 3 of them, at least
    MIN_INPUTS inputs, IREE's vector tile on the innermost loop alone, and at
    least a third of the inputs (the per-channel weights) not reading the
    innermost loop, i.e. vectorized along an output row. An outer loop that
    at least a third of the row-reading inputs (the views) do not read is a
    broadcast loop (grouped taps' f, the channel multiplier's m): unrolled by
    BROADCAST_UNROLL beside ROW_UNROLL_WITH_BROADCAST rows; otherwise (depthwise,
    any batch, 3D) the rows by ROW_UNROLL."""
    dist, vec, inputs = generic.distribution, generic.vector, generic.input_dims
    rank = len(vec)
    if (not generic.parallel or rank < 3 or len(inputs) < MIN_INPUTS or any(v != 1 for v in vec[:-1])
            or vec[-1] < 8 or len(dist) != rank):
        return None
    if 3 * sum(1 for dims in inputs if rank - 1 not in dims) < len(inputs):
        return None

    def capped(loop: int, unroll: int) -> int:
        return max(1, min(unroll, dist[loop])) if dist[loop] else unroll

    new = list(vec)
    row = rank - 2
    views = [dims for dims in inputs if rank - 1 in dims]  # the inputs read along the row: the taps' views
    broadcast = [j for j in range(row) if dist[j] != 1 and 3 * sum(1 for dims in views if j not in dims) >= len(views)]
    if broadcast:
        new[broadcast[-1]] = capped(broadcast[-1], BROADCAST_UNROLL)
        new[row] = capped(row, ROW_UNROLL_WITH_BROADCAST)
    else:
        new[row] = capped(row, ROW_UNROLL)
    return tuple(new) if tuple(new) != tuple(vec) else None


def read_generic(line: str) -> tuple[ConfiguredGeneric, tuple[int, int]] | None:
    """The configured generic on one printed line (local scope: maps inline)
    and the span of its lowering_config, or None for any other line."""
    config = _CONFIG.search(line)
    if config is None or "linalg.generic {indexing_maps" not in line or " ins(" not in line:
        return None
    iterators = _ITERATORS.search(line)
    if iterators is None:
        return None
    maps: list[tuple[int, ...]] = []
    for found in _MAP.finditer(line[:iterators.start()]):
        loops = [name.strip() for name in found.group(1).split(",")]
        results = [name.strip() for name in found.group(2).split(",") if name.strip()]
        if any(result not in loops for result in results):
            return None  # not a projected permutation (a strided or offset read)
        maps.append(tuple(loops.index(result) for result in results))
    operands = line[line.index(" ins(") + 5:]
    inputs = operands[:operands.index(" : ")].count("%") if " : " in operands else 0
    generic = ConfiguredGeneric(
        tuple(int(v) for v in config.group(1).split(",")), tuple(int(v) for v in config.group(2).split(",")),
        tuple(maps[:inputs]), "reduction" not in iterators.group(1))
    return generic, config.span()


def retune_taps(text: str) -> tuple[str, list[Retuned]]:
    """`text` (configured executables, printed with local scope) with every
    taps generic's vector tiles set by `taps_vector_sizes`."""
    pieces: list[str] = []
    done: list[Retuned] = []
    start = 0
    marker = "#iree_cpu.lowering_config<"
    at = text.find(marker)
    while at >= 0:
        line_start = text.rfind("\n", 0, at) + 1
        line_end = text.find("\n", at)
        line_end = len(text) if line_end < 0 else line_end
        read = read_generic(text[line_start:line_end])
        sizes = taps_vector_sizes(read[0]) if read is not None else None
        if read is not None and sizes is not None:
            generic, (begin, end) = read
            pieces += [text[start:line_start + begin], _config_text(generic.distribution, sizes)]
            start = line_start + end
            done.append(Retuned(generic.vector, sizes))
        at = text.find(marker, line_end)
    pieces.append(text[start:])
    return "".join(pieces), done


def _config_text(distribution: Sequence[int], vector: Sequence[int]) -> str:
    return (f"#iree_cpu.lowering_config<distribution = [{', '.join(map(str, distribution))}], "
            f"vector_common_parallel = [{', '.join(map(str, vector))}]>")


def has_taps_generic(module: ir.Module) -> bool:
    """Whether the linalg module holds an all-parallel linalg.generic with at
    least MIN_INPUTS inputs (what `retune_taps` may change): modules without
    one compile in a single iree-compile run."""
    return any(len(op.operands) - 1 >= MIN_INPUTS and "reduction" not in str(op.attributes["iterator_types"])
               for op in ops_named(module, "linalg.generic"))  # len - 1: one output


def phased(flags: Sequence[str]) -> bool:
    """Whether `flags` already pick iree-compile phases (then nothing is retuned)."""
    return any(flag.startswith(PHASE_FLAG_PREFIXES) for flag in flags)

