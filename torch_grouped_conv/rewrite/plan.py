"""Decide how a convolution is lowered: a pure function from `ConvSpec` to a
`ConvPlan` or a `Refusal`. Emitters (see `emit.py`) only turn plans into IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .spec import FLOAT_DTYPES, ConvSpec, Dim, Refusal

# Spatial ranks whose cases have a lowering in this version.
SUPPORTED_SPATIAL_RANKS = (2,)


class Case(str, Enum):
    """Which shape of convolution this is; one emitter per case."""

    CONV = "conv"  # groups == 1
    DEPTHWISE = "depthwise"  # groups == C_in == C_out
    GROUPED = "grouped"  # anything else with a constant group count

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ConvPlan:
    spec: ConvSpec
    case: Case

    @property
    def needs_padding(self) -> bool:
        return any(p != 0 for p in self.spec.padding)


def plan_convolution(spec: ConvSpec) -> ConvPlan | Refusal:
    """Classify `spec`, or say why it cannot be lowered correctly."""
    refusal = _check_supported(spec) or _check_consistent(spec)
    if refusal is not None:
        return refusal
    return ConvPlan(spec, classify(spec))


def classify(spec: ConvSpec) -> Case:
    if spec.groups == 1:
        return Case.CONV
    if spec.groups == spec.in_channels and spec.out_channels == spec.in_channels:
        return Case.DEPTHWISE
    return Case.GROUPED


def _check_supported(spec: ConvSpec) -> Refusal | None:
    if spec.spatial_rank not in SUPPORTED_SPATIAL_RANKS:
        return Refusal(f"{spec.spatial_rank}D convolution is not lowered yet (supported: 2D)")
    if spec.transposed:
        return Refusal("transposed convolution is not lowered yet")
    for name, info in (("input", spec.input), ("weight", spec.weight), ("result", spec.result)):
        if info.dtype not in FLOAT_DTYPES:
            return Refusal(f"{name} dtype {info.dtype} is not a float type {FLOAT_DTYPES}; PyTorch's CPU conv has none")
    if len({spec.input.dtype, spec.weight.dtype, spec.result.dtype}) != 1:
        return Refusal(
            f"mixed dtypes input={spec.input.dtype} weight={spec.weight.dtype} result={spec.result.dtype}"
        )
    if spec.input.dtype in ("f16", "bf16"):
        return Refusal(f"{spec.input.dtype} convolution is not lowered yet (supported: f32, f64)")
    if not (spec.weight.is_static and spec.in_channels is not None):
        return Refusal("weight and channel dims must be static in this version")
    return None


def _check_consistent(spec: ConvSpec) -> Refusal | None:
    rank = spec.spatial_rank
    for name in ("stride", "padding", "dilation", "output_padding"):
        values = getattr(spec, name)
        if len(values) != rank:
            return Refusal(f"{name}={list(values)} has {len(values)} entries for a {rank}D convolution")
    if any(s < 1 for s in spec.stride) or any(d < 1 for d in spec.dilation) or any(p < 0 for p in spec.padding):
        return Refusal(f"stride={list(spec.stride)} dilation={list(spec.dilation)} padding={list(spec.padding)} out of range")
    groups, c_in, f_out = spec.groups, spec.in_channels, spec.weight.shape[0]
    if groups < 1:
        return Refusal(f"groups={groups} must be positive")
    if c_in is not None and c_in % groups:
        return Refusal(f"groups={groups} does not divide C_in={c_in}")
    if f_out is not None and f_out % groups:
        return Refusal(f"groups={groups} does not divide C_out={f_out}")
    if c_in is not None and spec.weight.shape[1] != c_in // groups:
        return Refusal(f"weight has {spec.weight.shape[1]} input channels per group, expected C_in/groups={c_in // groups}")
    return None


def output_spatial_size(in_size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((H + 2p - d*(k-1) - 1) / s) + 1, PyTorch's Conv output size."""
    return (in_size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def group_split(dims: tuple[Dim, ...], axis: int, groups: int) -> tuple[Dim, ...]:
    """Shape after splitting `axis` into [groups, size/groups]; dynamic stays dynamic."""
    size = dims[axis]
    inner = None if size is None else size // groups
    return dims[:axis] + (groups, inner) + dims[axis + 1:]
