"""Decide how a convolution is lowered: a pure function from `ConvSpec` to a
`ConvPlan` or a `Refusal`. Emitters (emit/convolution.py and the strategies'
emitters under strategies/) only turn plans into IR.

Every plan is a *forward* convolution over a prepared input:

    input  --(insert stride-1 zeros, transposed only)--> dilated
           --(pad low/high; a negative amount crops)-->   windowed
    weight --(transposed only: swap in/out per group, flip spatially)--> [F, C/G, *k]
    result = conv(windowed, weight, stride, dilation) into zeros, + bias (elementwise, after)

A transposed convolution with stride s, padding p, output_padding op and
dilation d is the forward convolution with stride 1 and dilation d over the
input dilated by s, padded by d*(k-1)-p low and d*(k-1)-p+op high, with the
flipped, per-group-transposed weight (the adjoint of the strided conv).

Kernel sizes unknown at compile time (a weight passed as an input with
dynamic dims) are `None` in `ConvPlan.kernel`. The plan says so explicitly:
a transposed conv's padding along such a dim depends on k, so its
`Window.pad_low`/`pad_high` entry is `None` too and the emitter computes
d*(k-1)-p (+op) from `tensor.dim` of the weight at run time; output sizes
are computed at run time as well. Padding itself may be a runtime value
(`None` in `ConvSpec.padding`): then the window's pads on that dim are None too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from torch_grouped_conv.rewrite.read.spec import FLOAT_DTYPES, QUANTIZED_RESULT, ConvSpec, Dim, QuantOperand, Refusal

# Spatial ranks with a lowering for every case (see strategies/grouped.py's tables).
SUPPORTED_SPATIAL_RANKS = (1, 2, 3)

# Element types whose products are accumulated in a wider type, as PyTorch's
# CPU kernels do; the result is rounded once at the end.
ACCUMULATOR_DTYPE = {"f16": "f32", "bf16": "f32", "f32": "f32", "f64": "f64"}
# Quantized convolutions (8-bit input and weight) accumulate in i32, exactly.
QUANTIZED_ACCUMULATOR = "i32"
QUANTIZED_BIAS_DTYPES = ("si32",)  # the bias is already in accumulator units (scale_x * scale_w)
STORAGE_RANGE = {"ui8": (0, 255), "si8": (-128, 127)}
SIGNED_SHIFT = 128  # ui8 q -> i8 q - 128 (flip the top bit); differences q - zp are unchanged


class Case(StrEnum):
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
    pad_low: tuple[Dim, ...]  # None: depends on a kernel size known only at run time
    pad_high: tuple[Dim, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]

    @property
    def static_padding(self) -> bool:
        return None not in self.pad_low and None not in self.pad_high


@dataclass(frozen=True)
class QuantPlan:
    """An integer convolution: out = bias + sum (x - input_zp) * (w - weight_zp), in i32.

    Operands enter as signed i8 (linalg's `*_q` convolutions sign-extend): a
    ui8 operand is shifted by -128 (`shift_*`) and its zero point with it, so
    every difference q - zp, and the result, is unchanged. Padding and the
    transposed conv's inserted zeros use `input_zero_point`: they then add
    nothing, like a real 0.0.
    """

    input_zero_point: int  # signed domain
    weight_zero_point: int
    shift_input: bool
    shift_weight: bool


@dataclass(frozen=True)
class ConvPlan:
    spec: ConvSpec
    case: Case
    window: Window
    kernel: tuple[Dim, ...]  # None: known only at run time (tensor.dim of the weight)
    accumulator_dtype: str
    quant: QuantPlan | None = None

    @property
    def static_kernel(self) -> bool:
        return None not in self.kernel

    @property
    def kernel_sizes(self) -> tuple[int, ...]:
        """The kernel sizes of a plan with a static kernel: what every strategy
        emitter gets (strategies/choice.py leaves the others to the default)."""
        sizes = tuple(k for k in self.kernel if k is not None)
        assert len(sizes) == len(self.kernel), f"kernel {list(self.kernel)} is known only at run time"
        return sizes

    @property
    def label(self) -> str:
        """The case as reported: [`quantized_`][`transposed_`] + case; `conv_tbc` for that op."""
        if self.spec.entry != "convolution":
            return self.spec.entry
        prefix = ("quantized_" if self.quant else "") + ("transposed_" if self.spec.transposed else "")
        return f"{prefix}{self.case}"

    @property
    def grouped_layout(self) -> bool:
        """Whether operands are split by group ([N, G, C/G, ...]) before the emitter sees them.

        Quantized depthwise convs too: linalg has no NCHW depthwise `_q` op,
        the grouped one with C/G = F/G = 1 is it.
        """
        grouped = (Case.GROUPED, Case.DEPTHWISE_MULTIPLIER) + ((Case.DEPTHWISE,) if self.quant else ())
        return self.case in grouped

    @property
    def needs_padding(self) -> bool:
        pads = (*self.window.pad_low, *self.window.pad_high)
        return any(p is None or p != 0 for p in pads)


def plan_convolution(spec: ConvSpec) -> ConvPlan | Refusal:
    """Classify `spec`, or say why it cannot be lowered correctly."""
    refusal = _check_supported(spec) or _check_consistent(spec)
    if refusal is not None:
        return refusal
    kernel = spec.kernel
    window = transposed_window(spec, kernel) if spec.transposed else forward_window(spec)
    window = trim_unread_input(window, spec.input.shape[2:], kernel)
    if spec.input_quant is not None and spec.weight_quant is not None:
        quant = quant_plan(spec.input_quant, spec.weight_quant)
        return ConvPlan(spec, classify(spec), window, kernel, QUANTIZED_ACCUMULATOR, quant)
    return ConvPlan(spec, classify(spec), window, kernel, ACCUMULATOR_DTYPE[spec.input.dtype])


def quant_plan(x: QuantOperand, w: QuantOperand) -> QuantPlan:
    """Zero points in the signed i8 domain the integer convolution works in."""
    shift_x, shift_w = x.storage == "ui8", w.storage == "ui8"
    return QuantPlan(x.zero_point - SIGNED_SHIFT * shift_x, w.zero_point - SIGNED_SHIFT * shift_w, shift_x, shift_w)


def forward_window(spec: ConvSpec) -> Window:
    ones = (1,) * spec.spatial_rank
    return Window(ones, spec.padding, spec.padding, spec.stride, spec.dilation)


def trim_unread_input(window: Window, in_sizes: tuple[Dim, ...], kernel: tuple[Dim, ...]) -> Window:
    """Crop the trailing input no output reads, along dims whose output size is 1.

    Same numbers, and IREE 3.13 needs it: a conv with a unit output dim and an
    input longer than its window fails to compile there (after unit-dim
    folding, "inferred input/output operand #1 has shape's dimension ... to
    be 4, but found 3"; torch-mlir's own lowering fails alike). Dynamic
    sizes (input, kernel or padding) are left alone.
    """
    high = list(window.pad_high)
    for i, size in enumerate(in_sizes):
        k, low, hi = kernel[i], window.pad_low[i], high[i]
        if size is None or k is None or low is None or hi is None:
            continue
        extent = (size - 1) * window.input_dilation[i] + 1 + low + hi
        reach = window.dilation[i] * (k - 1) + 1
        if extent >= reach and (extent - reach) // window.stride[i] == 0 and extent > reach:
            high[i] = hi - (extent - reach)  # output size 1: only the first `reach` elements are read
    return dataclasses.replace(window, pad_high=tuple(high))


def transposed_window(spec: ConvSpec, kernel: tuple[Dim, ...]) -> Window:
    """Low pad d*(k-1)-p, high pad d*(k-1)-p+op, stride 1, input dilated by s.

    Where k or p is unknown at compile time both pads are None: the emitter
    computes the same formula on index values.
    """
    low: list[Dim] = []
    high: list[Dim] = []
    for k, d, p, op in zip(kernel, spec.dilation, spec.padding, spec.output_padding, strict=False):
        pad = None if k is None or p is None else d * (k - 1) - p
        low.append(pad)
        high.append(None if pad is None else pad + op)
    return Window(spec.stride, tuple(low), tuple(high), (1,) * spec.spatial_rank, spec.dilation)


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
    refusal = _check_quantized(spec) if spec.quantized else None
    if refusal is not None:
        return refusal
    for name, info in (("input", spec.input), ("weight", spec.weight), ("result", spec.result)):
        if info.dtype not in FLOAT_DTYPES and not spec.quantized:
            return Refusal(f"{name} dtype {info.dtype} is not a float type {FLOAT_DTYPES}; PyTorch's CPU conv has none")
    if len({spec.input.dtype, spec.weight.dtype, spec.result.dtype}) != 1 and not spec.quantized:
        return Refusal(
            f"mixed dtypes input={spec.input.dtype} weight={spec.weight.dtype} result={spec.result.dtype}"
        )
    return None


def _check_quantized(spec: ConvSpec) -> Refusal | None:
    """Per-tensor quantized 8-bit input and weight, an i32 (qint32) result, an si32 bias."""
    if spec.input_quant is None or spec.weight_quant is None:
        return Refusal(f"input {spec.input.dtype} and weight {spec.weight.dtype}: a quantized convolution "
                       "needs both quantized")
    if spec.result.dtype != QUANTIZED_RESULT:
        return Refusal(f"quantized convolution with result dtype {spec.result.dtype}; expected {QUANTIZED_RESULT}")
    if spec.bias_dtype is not None and spec.bias_dtype not in QUANTIZED_BIAS_DTYPES:
        return Refusal(f"quantized convolution with a {spec.bias_dtype} bias; expected {QUANTIZED_BIAS_DTYPES}")
    for name, operand in (("input", spec.input_quant), ("weight", spec.weight_quant)):
        low, high = STORAGE_RANGE[operand.storage]
        if not low <= operand.zero_point <= high:
            return Refusal(f"{name} zero point {operand.zero_point} is outside {operand.storage}'s [{low}, {high}]")
    return None


def malformed(spec: ConvSpec) -> Refusal | None:
    """Why `spec` is not a convolution at all (parameters that contradict each
    other, which PyTorch rejects: groups=3 with C_in=8), or None. A frontend
    treats this as bad input; any other refusal is a valid conv left to torch-mlir."""
    return _check_consistent(spec)


def _check_consistent(spec: ConvSpec) -> Refusal | None:
    rank = spec.spatial_rank
    # A forward conv ignores output_padding; torch-mlir's decomposition of
    # conv2d(padding="valid"/"same") passes a 1-entry [0] for it.
    names = ("stride", "padding", "dilation") + (("output_padding",) if spec.transposed else ())
    for name in names:
        values = getattr(spec, name)
        if len(values) != rank:
            return Refusal(f"{name}={list(values)} has {len(values)} entries for a {rank}D convolution")
    if any(s < 1 for s in spec.stride) or any(d < 1 for d in spec.dilation) or any(p is not None and p < 0 for p in spec.padding):
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
    for i, (op, s, d) in enumerate(zip(spec.output_padding, spec.stride, spec.dilation, strict=False)):
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
