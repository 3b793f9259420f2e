"""Cross-conv layout: a depthwise conv whose result is permuted to
channels-last next (ConvNeXt's block: dwconv -> permute(0, 2, 3, 1) ->
LayerNorm -> Linear ... -> permute back) is computed by `taps` in NHWC, so
its transpose back to NCHW cancels against the permute. Numbers on both
backends against PyTorch eager, the op chain, and the NCHW form kept when
the result has another use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from tests.support.compiled import assert_close, compiled, load, op_names, print_ir
from tests.support.configs import ConvConfig
from torch_grouped_conv import BACKENDS


class ConvNeXtLikeBlock(nn.Module):
    """dwconv -> permute to NHWC -> LayerNorm -> Linear -> GELU -> Linear -> permute back (+ residual)."""

    def __init__(self, block: Block) -> None:
        super().__init__()
        c = block.conv.c_in
        self.block = block
        self.dwconv = block.conv.make_module()  # seeds the module RNG first
        self.norm = nn.LayerNorm(c)
        self.fc1, self.fc2 = nn.Linear(c, 2 * c), nn.Linear(2 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x)
        z = self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(y.permute(0, 2, 3, 1))))).permute(0, 3, 1, 2)
        out = z + y if self.block.also_nchw else z
        return out + x if self.block.conv.stride == (1, 1) else out


@dataclass(frozen=True)
class Block:
    """A ConvNeXt-like block around the depthwise `conv` (a `Compilable`, tests.support.compiled)."""

    conv: ConvConfig
    also_nchw: bool = False  # the conv result has a second, NCHW use
    dynamic_shapes: ClassVar[None] = None

    def make_module(self) -> nn.Module:
        return ConvNeXtLikeBlock(self).eval()

    def make_inputs(self) -> tuple[torch.Tensor, ...]:
        return self.conv.make_inputs()


def depthwise(channels: int = 8, kernel: int = 7, dilation: int = 1, **kwargs: Any) -> ConvConfig:
    """The block's depthwise conv: "same" padding d * (k // 2), input 9x11."""
    return ConvConfig(c_in=channels, groups=channels, kernel=kernel, dilation=dilation,
                      padding=dilation * (kernel // 2), spatial=(9, 11), **kwargs)


BLOCKS = {
    "k7": Block(depthwise()),
    "k7_s2_nobias_b2": Block(depthwise(stride=2, bias=False, batch=2)),
    "k3_d2": Block(depthwise(kernel=3, dilation=2, channels=16)),
    "k7_also_nchw": Block(depthwise(), also_nchw=True),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["taps", "auto"])
@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_matches_eager(name: str, strategy: str, backend: str) -> None:
    block = BLOCKS[name]
    module, report = compiled(block, strategy)
    (decision,) = report.decisions
    assert decision.case == "depthwise" and decision.strategy == "taps", decision
    (x,) = block.make_inputs()
    with torch.no_grad():
        expected = block.make_module()(x)
    (actual,) = load(module, backend)(x)
    assert_close(actual, expected, f"{strategy} {name}")


def conv_ops(name: str) -> Counter[str]:
    """The ops of the lowered conv alone: the block's own ops (permute,
    LayerNorm, Linear) are still torch ops right after the plugin."""
    module, _ = compiled(BLOCKS[name], "taps", "torch")
    return Counter(n for n in op_names(module) if n.startswith(("linalg.", "tensor.", "arith.")))


@pytest.mark.parametrize("name", ["k7", "k7_s2_nobias_b2", "k3_d2"])
def test_permuted_result_is_computed_channels_last(name: str) -> None:
    """Input and accumulator transposed to NHWC, one all-parallel generic
    over [N,Ho,Wo,C] reading each tap as a strided view (no column
    de-interleave even at stride 2: the taps are contiguous along C), the
    weight transposed to [1,KH,KW,C] (each tap's [C] weights contiguous), one
    transpose back that cancels against the block's permute."""
    conv = BLOCKS[name].conv
    counts = conv_ops(name)
    taps = conv.kernel[0] * conv.kernel[1]
    module, _ = compiled(BLOCKS[name], "taps", "torch")
    assert counts["linalg.transpose"] == 4, print_ir(module)
    assert counts["linalg.generic"] == 1 + conv.bias and counts["tensor.extract_slice"] == 2 * taps, dict(counts)
    assert counts["arith.mulf"] == taps and counts["linalg.depthwise_conv_2d_nchw_chw"] == 0
    assert "reduction" not in print_ir(module)


def test_result_with_another_use_stays_nchw() -> None:
    """A second (NCHW) use of the result: no layout to share, the NCHW taps form."""
    counts = conv_ops("k7_also_nchw")
    assert counts["linalg.transpose"] == 0 and counts["linalg.generic"] == 1 + BLOCKS["k7_also_nchw"].conv.bias, dict(counts)
