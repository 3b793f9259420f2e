"""One convolution configuration for every test that builds a single conv
from parameters (the e2e grids, the strategy grids, the IR tests, the
registered `cov_*` shape cases), and the helpers around it.

Layout: input [N, C, *spatial], weight [F, C/G, *kernel] (transposed
[C, F/G, *kernel]), result [N, F, *out]. The window fields (kernel, stride,
padding, dilation, output_padding) take one int for every spatial dim or one
value per dim; they are stored per dim (tuples), so configs that mean the
same convolution compare and hash equal and share one compiled module
(tests.support.compiled).

Not a `ConvConfig`: the fuzz campaign's configs (tests/campaigns/fuzz.py:
JSON dicts drawn by hypothesis, with unbatched inputs, weights as runtime
inputs, dynamic dims and `padding="same"`; they are the replay format of
`FUZZ_REGRESSIONS`), quantized convolutions (tests/support/quantized.py
`QConv`: zero points and storage types, built as IR or ONNX, not as a
torch module) and the hand-written torch IR of the refusal tests (operand
types, unranked or non-constant operands).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.export import Dim

Size = int | tuple[int, ...]

MODULE_SEED = 0
INPUT_SEED = 1

CONV_MODULES = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
TRANSPOSED_MODULES = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}

# The linalg op each (rank, case) lowers to under the default strategy;
# transposed cases emit the same op over the prepared input (docs/design.md).
CASE_OPS = {
    (1, "conv"): "linalg.conv_1d_ncw_fcw",
    (2, "conv"): "linalg.conv_2d_nchw_fchw",
    (3, "conv"): "linalg.conv_3d_ncdhw_fcdhw",
    (1, "depthwise"): "linalg.depthwise_conv_1d_ncw_cw",
    (2, "depthwise"): "linalg.depthwise_conv_2d_nchw_chw",
    (3, "depthwise"): "linalg.depthwise_conv_3d_ncdhw_cdhw",
    (1, "grouped"): "linalg.conv_2d_ngchw_gfchw",
    (2, "grouped"): "linalg.conv_2d_ngchw_gfchw",
    (3, "grouped"): "linalg.generic",
}
CASE_OPS.update({(r, "depthwise_multiplier"): CASE_OPS[(r, "grouped")] for r in (1, 2, 3)})

WINDOW_FIELDS = ("kernel", "stride", "padding", "dilation", "output_padding")


@dataclass(frozen=True)
class ConvConfig:
    """One Conv{1,2,3}d or ConvTranspose{1,2,3}d (rank = len(spatial)) and its
    input. `c_out=None` means c_out = c_in. Seeded: the module with
    MODULE_SEED, the input with INPUT_SEED (plus the batch when one is asked for)."""

    c_in: int = 16
    c_out: int | None = None
    groups: int = 4
    kernel: Size = 3
    stride: Size = 1
    padding: Size = 1
    dilation: Size = 1
    output_padding: Size = 0  # transposed only
    transposed: bool = False
    bias: bool = True
    batch: int = 1
    spatial: tuple[int, ...] = (8, 8)
    dtype: torch.dtype = torch.float32

    dynamic_shapes: ClassVar[None] = None  # a config compiles with static shapes (tests.support.compiled)

    def __post_init__(self) -> None:
        for name in WINDOW_FIELDS:
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) * self.rank if isinstance(value, int) else tuple(value))

    @property
    def rank(self) -> int:
        return len(self.spatial)

    @property
    def out_channels(self) -> int:
        return self.c_in if self.c_out is None else self.c_out

    @property
    def forward_case(self) -> str:
        """The lowering case without the transposed prefix (mirrors plan.classify)."""
        if self.groups == 1:
            return "conv"
        if self.groups == self.c_in:
            return "depthwise" if self.out_channels == self.c_in else "depthwise_multiplier"
        return "grouped"

    @property
    def case(self) -> str:
        """The report's case label, e.g. "grouped" or "transposed_depthwise"."""
        return f"transposed_{self.forward_case}" if self.transposed else self.forward_case

    @property
    def linalg_op(self) -> str:
        """The op the default strategy (`grouped`) lowers it to."""
        return CASE_OPS[(self.rank, self.forward_case)]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.spatial)

    def make_module(self) -> torch.nn.Module:
        torch.manual_seed(MODULE_SEED)
        kwargs: dict[str, Any] = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                                      groups=self.groups, bias=self.bias)
        if self.transposed:
            kwargs["output_padding"] = self.output_padding
        modules = TRANSPOSED_MODULES if self.transposed else CONV_MODULES
        return modules[self.rank](self.c_in, self.out_channels, self.kernel, **kwargs).to(self.dtype)

    def make_input(self, batch: int | None = None) -> torch.Tensor:
        torch.manual_seed(INPUT_SEED + (batch or 0))
        shape = self.input_shape if batch is None else (batch, *self.input_shape[1:])
        return torch.randn(shape, dtype=self.dtype)

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        """The export example, as a tuple (what `tgc.compile` takes after the module)."""
        return (self.make_input(),)

    def replace(self, **changes: Any) -> ConvConfig:
        """A copy with `changes`; the window fields are already per dim, so keep the rank."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class DynamicBatch:
    """`config` exported with its batch dim dynamic (1..max); a `Compilable`
    for tests.support.compiled. The example batch must be >= 2 (torch.export
    specializes a dynamic dim whose example size is 1)."""

    config: ConvConfig
    max: int = 8

    @property
    def dynamic_shapes(self) -> tuple[dict[int, Dim]]:
        return ({0: Dim("N", min=1, max=self.max)},)

    def make_module(self) -> torch.nn.Module:
        return self.config.make_module()

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        return self.config.make_inputs()


# --- the strategy grids ------------------------------------------------------------------
# Every strategy on a 2D grid (tests/e2e/test_strategies_2d.py): groups
# 1/2/4/8/C, stride 1/2, padding 0/1, dilation 1/2, bias on/off, batch 1/3,
# non-square inputs and kernels, F != C and a channel multiplier.
STRATEGY_GRID: dict[str, ConvConfig] = {
    "g1": ConvConfig(groups=1),
    "g2_s2_nobias": ConvConfig(groups=2, stride=2, bias=False),
    "g4_p0_d2_b3": ConvConfig(groups=4, padding=0, dilation=2, batch=3),
    "g8_9x13_s12": ConvConfig(groups=8, spatial=(9, 13), stride=(1, 2), padding=(0, 1)),
    "g4_f8_k3x5": ConvConfig(groups=4, c_out=8, kernel=(3, 5), padding=(1, 2), spatial=(7, 10)),
    "dw_s2_b3_9x13": ConvConfig(groups=16, stride=2, batch=3, spatial=(9, 13)),
    "dw_d2_nobias": ConvConfig(groups=16, dilation=2, padding=2, bias=False),
    "dw_k7": ConvConfig(groups=16, kernel=7, padding=3, spatial=(10, 9)),
    "multiplier_c8_f16": ConvConfig(c_in=8, groups=8, c_out=16, stride=2),
    # output [1, 3, 1, 1] with a bias: the IREE "global resources" class (cases_shapes UNIT_OUTPUT)
    "g3_f3_unit_out": ConvConfig(c_in=9, groups=3, c_out=3, padding=0, spatial=(3, 3)),
}


def _taps_matmul_grid() -> dict[str, ConvConfig]:
    """2D configs for `taps` (depthwise, grouped), `matmul` (groups == 1) and
    `auto` (tests/e2e/test_taps_matmul_2d.py)."""
    grid: dict[str, ConvConfig] = {}
    for k in (3, 5, 7):  # depthwise: kernel x stride, bias and batch alternating
        for s in (1, 2):
            bias, batch = (k + s) % 2 == 0, 3 if s == 2 else 1
            grid[f"dw{k}_s{s}_{'bias' if bias else 'nobias'}_b{batch}"] = ConvConfig(
                c_in=8, groups=8, kernel=k, stride=s, padding=k // 2, bias=bias, batch=batch, spatial=(11, 9))
    grid["dw3_d2_p0"] = ConvConfig(c_in=8, groups=8, dilation=2, padding=0, spatial=(10, 12))
    for k, p in ((1, 0), (3, 1)):  # groups == 1
        for s in (1, 2):
            for batch in (1, 3):
                grid[f"conv{k}_s{s}_b{batch}"] = ConvConfig(
                    c_in=16, c_out=24, groups=1, kernel=k, stride=s, padding=p, bias=batch == 1, batch=batch,
                    spatial=(9, 11))
    grid["conv1_p1"] = ConvConfig(c_in=8, c_out=8, groups=1, kernel=1, padding=1, spatial=(5, 6))
    grid["grouped_g4_s2"] = ConvConfig(groups=4, c_out=8, stride=2, batch=3)
    grid["grouped_g2_d2_nobias"] = ConvConfig(c_in=8, groups=2, dilation=2, padding=2, bias=False, spatial=(9, 10))
    grid["grouped_g4_k5"] = ConvConfig(groups=4, c_out=12, kernel=5, padding=2, spatial=(7, 9))
    grid["grouped_cg16_im2col"] = ConvConfig(c_in=64, groups=4, spatial=(6, 6))  # auto: im2col
    return grid


TAPS_MATMUL_GRID = _taps_matmul_grid()

# Spatial sizes of the N-D strategy grid, per rank.
ND_SPATIAL = {1: (13,), 2: (7, 9), 3: (5, 6, 4)}


def nd(rank: int, c_in: int, c_out: int, groups: int, kernel: int, *, padding: Size = 0, batch: int = 2,
       **kwargs: Any) -> ConvConfig:
    """A config of the N-D grid: `rank` picks the spatial sizes (ND_SPATIAL); no padding, batch 2 by default."""
    return ConvConfig(c_in=c_in, c_out=c_out, groups=groups, kernel=kernel, padding=padding, batch=batch,
                      spatial=ND_SPATIAL[rank], **kwargs)


# The fast strategies beyond 2D forward f32 (tests/e2e/test_strategies_nd.py).
ND_GRID: dict[str, ConvConfig] = {
    # 1D and 3D forward.
    "1d_dw_k5_s2": nd(1, 6, 6, 6, 5, stride=2, padding=2),
    "1d_grouped_g2_d2": nd(1, 8, 6, 2, 3, dilation=2, padding=2, bias=False),
    "1d_grouped_long_k16": nd(1, 16, 16, 2, 16, padding=8, batch=1),  # wav2vec2-like: K = C/G*k = 128
    "1d_multiplier_m2": nd(1, 4, 8, 4, 3, padding=1),
    "1d_conv1x1_s2": nd(1, 6, 8, 1, 1, stride=2),
    "1d_conv_k3_few": nd(1, 3, 8, 1, 3, padding=1, batch=1),
    "3d_dw_k3": nd(3, 4, 4, 4, 3, padding=1),
    "3d_dw_k3_s2": nd(3, 4, 4, 4, 3, stride=2, padding=1, batch=1, bias=False),
    # Column stride 3 over 9 + 2 padded columns: the de-interleave cuts the input to 3 x 3 columns.
    "2d_grouped_k3_s3_cut": nd(2, 8, 8, 4, 3, stride=3, padding=1, batch=1),
    "3d_grouped_g2": nd(3, 8, 8, 2, 3, padding=1, batch=1),
    "3d_multiplier_m2": nd(3, 3, 6, 3, 3, padding=1, batch=1),
    "3d_conv1x1": nd(3, 6, 4, 1, 1),
    # Transposed (taps, im2col and matmul: the phase decomposition).
    "t1d_dw_k4_s2": nd(1, 6, 6, 6, 4, stride=2, padding=1, transposed=True),
    "t2d_dw_k3_s2_op1": nd(2, 4, 4, 4, 3, stride=2, padding=1, output_padding=1, transposed=True),
    "t2d_dw_k3_s3_d2": nd(2, 4, 4, 4, 3, stride=3, padding=2, dilation=2, output_padding=1, transposed=True,
                          bias=False),
    "t2d_dw_k2_s3": nd(2, 4, 4, 4, 2, stride=3, transposed=True, batch=1),
    "t2d_grouped_g4_s2": nd(2, 8, 8, 4, 3, stride=2, padding=1, output_padding=1, transposed=True),
    "t3d_multiplier_s2": nd(3, 3, 6, 3, 2, stride=2, transposed=True, batch=1),
    "t2d_conv1x1_s2": nd(2, 4, 6, 1, 1, stride=2, transposed=True),
    # Transposed KxK through im2col/matmul: one GEMM per output phase.
    "t2d_conv_k3_s2_op1": nd(2, 6, 4, 1, 3, stride=2, padding=1, output_padding=1, transposed=True),
    "t1d_conv_k4_s2": nd(1, 5, 3, 1, 4, stride=2, padding=1, transposed=True, batch=1),
    "t3d_conv_k3_s2": nd(3, 3, 4, 1, 3, stride=2, padding=1, transposed=True, batch=1, bias=False),
    "t2d_grouped_s3_d2": nd(2, 8, 4, 2, 3, stride=3, padding=2, dilation=2, output_padding=1, transposed=True),
    # F*C = 8192: the one-tap phase's weight slice must not be data-tiled (IREE packs it on the stack)
    "t2d_conv_wide_k3_s2": nd(2, 128, 64, 1, 3, stride=2, padding=1, output_padding=1, transposed=True, batch=1),
    # Half precision and f64 (f32 accumulation for f16/bf16, one rounding at the end).
    "f16_1d_grouped_g2": nd(1, 8, 8, 2, 3, padding=1, dtype=torch.float16),
    "bf16_3d_dw_k3": nd(3, 4, 4, 4, 3, padding=1, batch=1, dtype=torch.bfloat16),
    "f16_2d_grouped_cg16": nd(2, 32, 16, 2, 3, padding=1, batch=1, dtype=torch.float16),
    "bf16_2d_conv1x1_b2": nd(2, 8, 6, 1, 1, dtype=torch.bfloat16),
    "f16_t2d_dw_s2": nd(2, 4, 4, 4, 3, stride=2, padding=1, output_padding=1, transposed=True, dtype=torch.float16),
    "f64_3d_grouped_g2": nd(3, 4, 4, 2, 3, padding=1, batch=1, dtype=torch.float64),
}
