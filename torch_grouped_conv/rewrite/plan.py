"""Decide how a convolution is lowered: a pure function from `ConvSpec` to a
`ConvPlan` or a `Refusal`. Emitters (see `emit.py`) only turn plans into IR.

Every plan is a *forward* convolution over a prepared input:

    input  --(insert stride-1 zeros, transposed only)--> dilated
           --(pad low/high; a negative amount crops)-->   windowed
    weight --(transposed only: swap in/out per group, flip spatially)--> [F, C/G, *k]
    result = conv(windowed, weight, stride, dilation) into zeros, + bias (elementwise, after)

A transposed convolution with stride s, padding p, output_padding op and
dilation d is the forward convolution with stride 1 and dilation d over the
input dilated by s, padded by d*(k-1)-p low and d*(k-1)-p+op high, with the
flipped, per-group-transposed weight (the adjoint of the strided conv).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum

from .spec import FLOAT_DTYPES, ConvSpec, Dim, Refusal

# Spatial ranks with a lowering for every case (see emit.py's tables).
SUPPORTED_SPATIAL_RANKS = (1, 2, 3)

# Element types whose products are accumulated in a wider type, as PyTorch's
# CPU kernels do; the result is rounded once at the end.
ACCUMULATOR_DTYPE = {"f16": "f32", "bf16": "f32", "f32": "f32", "f64": "f64"}


class Case(str, Enum):
    """Which shape of (forward) convolution this is; one emitter per case."""

    CONV = "conv"  # groups == 1
    DEPTHWISE = "depthwise"  # groups == C_in == C_out
    DEPTHWISE_MULTIPLIER = "depthwise_multiplier"  # groups == C_in, C_out = m*C_in, m > 1
    GROUPED = "grouped"  # anything else with a constant group count

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Window:
    """The forward convolution's window, per spatial dim.

    `input_dilation` is the zero-insertion factor (the transposed conv's
    stride; 1 for a forward conv). `pad_low`/`pad_high` may be negative:
    then that many elements are cropped from that side.
    """

    input_dilation: tuple[int, ...]
    pad_low: tuple[int, ...]
    pad_high: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]


@dataclass(frozen=True)
class ConvPlan:
    spec: ConvSpec
    case: Case
    window: Window
    kernel: tuple[int, ...]
    accumulator_dtype: str

    @property
    def label(self) -> str:
        """The case as reported: `transposed_` + case for transposed convs."""
        return f"transposed_{self.case}" if self.spec.transposed else str(self.case)

    @property
    def grouped_layout(self) -> bool:
        """Whether operands are split by group ([N, G, C/G, ...]) before the emitter sees them."""
        return self.case in (Case.GROUPED, Case.DEPTHWISE_MULTIPLIER)

    @property
    def needs_padding(self) -> bool:
        return any(self.window.pad_low) or any(self.window.pad_high)


def plan_convolution(spec: ConvSpec) -> ConvPlan | Refusal:
    """Classify `spec`, or say why it cannot be lowered correctly."""
    refusal = _check_supported(spec) or _check_consistent(spec)
    if refusal is not None:
        return refusal
    kernel = tuple(k for k in spec.kernel if k is not None)
    window = transposed_window(spec, kernel) if spec.transposed else forward_window(spec)
    window = trim_unread_input(window, spec.input.shape[2:], kernel)
    return ConvPlan(spec, classify(spec), window, kernel, ACCUMULATOR_DTYPE[spec.input.dtype])


def forward_window(spec: ConvSpec) -> Window:
    ones = (1,) * spec.spatial_rank
    return Window(ones, spec.padding, spec.padding, spec.stride, spec.dilation)


def trim_unread_input(window: Window, in_sizes: tuple[Dim, ...], kernel: tuple[int, ...]) -> Window:
    """Crop the trailing input no output reads, along dims whose output size is 1.

    Same numbers, and IREE 3.13 needs it: a conv with a unit output dim and an
    input longer than its window fails to compile there (after unit-dim
    folding, "inferred input/output operand #1 has shape's dimension ... to
    be 4, but found 3"; torch-mlir's own lowering fails alike). Dynamic
    sizes are left alone.
    """
    high = list(window.pad_high)
    for i, size in enumerate(in_sizes):
        if size is None:
            continue
        extent = (size - 1) * window.input_dilation[i] + 1 + window.pad_low[i] + window.pad_high[i]
        reach = window.dilation[i] * (kernel[i] - 1) + 1
        if extent >= reach and (extent - reach) // window.stride[i] == 0 and extent > reach:
            high[i] -= extent - reach  # output size 1: only the first `reach` elements are read
    return dataclasses.replace(window, pad_high=tuple(high))


def transposed_window(spec: ConvSpec, kernel: tuple[int, ...]) -> Window:
    """Low pad d*(k-1)-p, high pad d*(k-1)-p+op, stride 1, input dilated by s."""
    reach = [d * (k - 1) for d, k in zip(spec.dilation, kernel)]
    low = tuple(r - p for r, p in zip(reach, spec.padding))
    high = tuple(lo + op for lo, op in zip(low, spec.output_padding))
    return Window(spec.stride, low, high, (1,) * spec.spatial_rank, spec.dilation)


def group_channels(spec: ConvSpec) -> tuple[Dim, Dim]:
    """(C_in/G, C_out/G) of the forward convolution, None where dynamic.

    Weight layout: forward [F, C/G, *k]; transposed [C, F/G, *k].
    """
    groups, w0, w1 = spec.groups, spec.weight.shape[0], spec.weight.shape[1]
    if not spec.transposed:
        return w1, None if w0 is None else w0 // groups
    c_in = spec.in_channels if spec.in_channels is not None else w0
    return None if c_in is None else c_in // groups, w1


def classify(spec: ConvSpec) -> Case:
    if spec.groups == 1:
        return Case.CONV
    per_group_in, per_group_out = group_channels(spec)
    if per_group_in == 1 and per_group_out == 1:
        return Case.DEPTHWISE
    if per_group_in == 1 and per_group_out is not None:
        return Case.DEPTHWISE_MULTIPLIER
    return Case.GROUPED


def _check_supported(spec: ConvSpec) -> Refusal | None:
    if spec.spatial_rank not in SUPPORTED_SPATIAL_RANKS:
        return Refusal(f"{spec.spatial_rank}D convolution is not lowered (input rank {spec.spatial_rank + 2}; "
                       f"supported spatial ranks: {list(SUPPORTED_SPATIAL_RANKS)})")
    for name, info in (("input", spec.input), ("weight", spec.weight), ("result", spec.result)):
        if info.dtype not in FLOAT_DTYPES:
            return Refusal(f"{name} dtype {info.dtype} is not a float type {FLOAT_DTYPES}; PyTorch's CPU conv has none")
    if len({spec.input.dtype, spec.weight.dtype, spec.result.dtype}) != 1:
        return Refusal(
            f"mixed dtypes input={spec.input.dtype} weight={spec.weight.dtype} result={spec.result.dtype}"
        )
    if any(k is None for k in spec.kernel):
        return Refusal(f"kernel size {list(spec.kernel)} must be static (window and flip need it)")
    return None


def _check_consistent(spec: ConvSpec) -> Refusal | None:
    rank = spec.spatial_rank
    # A forward conv ignores output_padding; torch-mlir's decomposition of
    # conv2d(padding="valid"/"same") passes a 1-entry [0] for it.
    names = ("stride", "padding", "dilation") + (("output_padding",) if spec.transposed else ())
    for name in names:
        values = getattr(spec, name)
        if len(values) != rank:
            return Refusal(f"{name}={list(values)} has {len(values)} entries for a {rank}D convolution")
    if any(s < 1 for s in spec.stride) or any(d < 1 for d in spec.dilation) or any(p < 0 for p in spec.padding):
        return Refusal(f"stride={list(spec.stride)} dilation={list(spec.dilation)} padding={list(spec.padding)} out of range")
    refusal = _check_output_padding(spec)
    if refusal is not None:
        return refusal
    groups = spec.groups
    if groups < 1:
        return Refusal(f"groups={groups} must be positive")
    c_in, f_out = spec.in_channels, spec.out_channels
    w_in_axis = 0 if spec.transposed else 1  # weight axis holding input channels (all, or per group)
    if c_in is not None and c_in % groups:
        return Refusal(f"groups={groups} does not divide C_in={c_in}")
    if f_out is not None and f_out % groups:
        return Refusal(f"groups={groups} does not divide C_out={f_out}")
    w_in = spec.weight.shape[w_in_axis]
    expected = c_in if spec.transposed else (None if c_in is None else c_in // groups)
    if w_in is not None and expected is not None and w_in != expected:
        return Refusal(f"weight dim {w_in_axis} is {w_in}, expected {expected} for C_in={c_in}, groups={groups}")
    if spec.transposed and spec.weight.shape[0] is not None and spec.weight.shape[0] % groups:
        return Refusal(f"groups={groups} does not divide the transposed weight's C_in={spec.weight.shape[0]}")
    return None


def _check_output_padding(spec: ConvSpec) -> Refusal | None:
    if not spec.transposed:
        if any(spec.output_padding):
            return Refusal(f"output_padding={list(spec.output_padding)} on a non-transposed convolution")
        return None
    for i, (op, s, d) in enumerate(zip(spec.output_padding, spec.stride, spec.dilation)):
        if not 0 <= op < max(s, d):
            return Refusal(f"output_padding[{i}]={op} must be in [0, max(stride={s}, dilation={d}))")
    return None


def output_spatial_size(in_size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((H + 2p - d*(k-1) - 1) / s) + 1, PyTorch's Conv output size."""
    return (in_size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def transposed_output_size(in_size: int, kernel: int, stride: int, padding: int, dilation: int,
                           output_padding: int) -> int:
    """(H-1)*s - 2p + d*(k-1) + op + 1, PyTorch's ConvTranspose output size."""
    return (in_size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def group_split(dims: tuple[Dim, ...], axis: int, groups: int) -> tuple[Dim, ...]:
    """Shape after splitting `axis` into [groups, size/groups]; dynamic stays dynamic."""
    size = dims[axis]
    inner = None if size is None else size // groups
    return dims[:axis] + (groups, inner) + dims[axis + 1:]
