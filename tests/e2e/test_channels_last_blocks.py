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

import numpy as np
import pytest
import torch
from torch import nn
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.compiled import op_names, print_ir
from tests.support.tolerances import tolerance
from torch_grouped_conv.report import RewriteReport

BACKENDS = ("refbackend", "iree")


@dataclass(frozen=True)
class BlockConfig:
    channels: int = 8
    kernel: int = 7
    stride: int = 1
    dilation: int = 1
    bias: bool = True
    batch: int = 1
    spatial: tuple[int, int] = (9, 11)
    also_nchw: bool = False  # the conv result has a second, NCHW use


class ConvNeXtLikeBlock(nn.Module):
    """dwconv -> permute to NHWC -> LayerNorm -> Linear -> GELU -> Linear -> permute back (+ residual)."""

    def __init__(self, cfg: BlockConfig) -> None:
        super().__init__()
        c, k, d = cfg.channels, cfg.kernel, cfg.dilation
        self.cfg = cfg
        self.dwconv = nn.Conv2d(c, c, k, stride=cfg.stride, padding=d * (k // 2), dilation=d, groups=c,
                                bias=cfg.bias)
        self.norm = nn.LayerNorm(c)
        self.fc1, self.fc2 = nn.Linear(c, 2 * c), nn.Linear(2 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x)
        z = self.fc2(torch.nn.functional.gelu(self.fc1(self.norm(y.permute(0, 2, 3, 1))))).permute(0, 3, 1, 2)
        out = z + y if self.cfg.also_nchw else z
        return out + x if self.cfg.stride == 1 else out


CONFIGS = {
    "k7": BlockConfig(),
    "k7_s2_nobias_b2": BlockConfig(stride=2, bias=False, batch=2),
    "k3_d2": BlockConfig(kernel=3, dilation=2, channels=16),
    "k7_also_nchw": BlockConfig(also_nchw=True),
}


def make_input(cfg: BlockConfig) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(cfg.batch, cfg.channels, *cfg.spatial)


def make_block(cfg: BlockConfig) -> nn.Module:
    torch.manual_seed(0)
    return ConvNeXtLikeBlock(cfg).eval()


_cache: dict[tuple[str, str, str], tuple[ir.Module, RewriteReport]] = {}


def compiled(name: str, strategy: str, output_type: str = "linalg-on-tensors") -> tuple[ir.Module, RewriteReport]:
    key = (name, strategy, output_type)
    if key not in _cache:
        cfg = CONFIGS[name]
        module = tgc.compile(make_block(cfg), make_input(cfg), grouped_conv=strategy, output_type=output_type)
        report = tgc.last_report()
        assert report is not None
        _cache[key] = (module, report)
    return _cache[key]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("strategy", ["taps", "auto"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_block_matches_eager(name: str, strategy: str, backend: str) -> None:
    cfg = CONFIGS[name]
    module, report = compiled(name, strategy)
    (decision,) = report.decisions
    assert decision.case == "depthwise" and decision.strategy == "taps", decision
    program = tgc.load(module, backend=backend)
    if backend == "iree":
        assert program.program.compile_warnings == ""
    x = make_input(cfg)
    with torch.no_grad():
        expected = make_block(cfg)(x).numpy()
    (actual,) = program(x)
    rtol, atol = tolerance(torch.float32)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=f"{strategy} {name}")


def conv_ops(name: str) -> Counter[str]:
    """The ops of the lowered conv alone: the block's own ops (permute,
    LayerNorm, Linear) are still torch ops right after the plugin."""
    module, _ = compiled(name, "taps", "torch")
    return Counter(n for n in op_names(module) if n.startswith(("linalg.", "tensor.", "arith.")))


@pytest.mark.parametrize("name", ["k7", "k7_s2_nobias_b2", "k3_d2"])
def test_permuted_result_is_computed_channels_last(name: str) -> None:
    """Input and accumulator transposed to NHWC, one all-parallel generic
    over [N,Ho,Wo,C] reading each tap as a strided view (no column
    de-interleave even at stride 2: the taps are contiguous along C), one
    transpose back that cancels against the block's permute."""
    cfg = CONFIGS[name]
    counts = conv_ops(name)
    taps = cfg.kernel ** 2
    module, _ = compiled(name, "taps", "torch")
    assert counts["linalg.transpose"] == 3, print_ir(module)
    assert counts["linalg.generic"] == 1 + cfg.bias and counts["tensor.extract_slice"] == 2 * taps, dict(counts)
    assert counts["arith.mulf"] == taps and counts["linalg.depthwise_conv_2d_nchw_chw"] == 0
    assert "reduction" not in print_ir(module)


def test_result_with_another_use_stays_nchw() -> None:
    """A second (NCHW) use of the result: no layout to share, the NCHW taps form."""
    counts = conv_ops("k7_also_nchw")
    assert counts["linalg.transpose"] == 0 and counts["linalg.generic"] == 1 + CONFIGS["k7_also_nchw"].bias, dict(counts)
