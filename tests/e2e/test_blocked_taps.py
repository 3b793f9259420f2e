"""Depthwise `taps` over 16-channel blocks (taps.blocks_channels: f32/f16/bf16
2D forward, C % 16 == 0, output rows Wo <= 7, or <= 14 with >= 25 taps): the
input packed to [N,C/16,H,W,16] with linalg.pack, one taps generic over the
blocks, linalg.unpack back. On both runners (the embedded one decomposes the
pack and unpack, runners/packs.py) it matches PyTorch eager on the shapes of
the image networks it was measured on and on forms at the rule's edges:
stride and dilation per dim, batch 2, no bias, a non-square kernel, f16 and
bf16 (against an f64 reference). Just
outside the rule the same convs keep the NCHW taps (no pack)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.support.compiled import check_matches_eager, compiled, op_names
from tests.support.configs import ConvConfig
from torch_grouped_conv import BACKENDS


def depthwise(c: int, **window: Any) -> ConvConfig:
    return ConvConfig(c_in=c, groups=c, **window)


BLOCKED = {
    # efficientnet_b0's last stage: 1152 channels at 7², 5x5
    "efficientnet_1152_7_k5": depthwise(1152, kernel=5, padding=2, spatial=(7, 7)),
    # stride 2 to a 7-wide row, batch 2, no bias
    "s2_48_14_b2": depthwise(48, stride=2, batch=2, bias=False, spatial=(14, 14)),
    # 14-wide rows with 25 taps: dilation 2 along H, stride 1
    "dilated_16_14_k5": depthwise(16, kernel=5, padding=(4, 2), dilation=(2, 1), spatial=(14, 14)),
    # ConvNeXt's 7x7 at 14² (NCHW result: no permute after it)
    "convnext_64_14_k7": depthwise(64, kernel=7, padding=3, spatial=(14, 14)),
    # a non-square kernel, stride (2, 1), odd sizes
    "k3x5_s21_32": depthwise(32, kernel=(3, 5), stride=(2, 1), padding=(1, 2), spatial=(11, 7)),
    # f16 and bf16: 16 channels of the input type per block, the products in f32
    "bf16_768_7_k7": depthwise(768, kernel=7, padding=3, spatial=(7, 7), dtype=torch.bfloat16),
    "f16_s2_32_14": depthwise(32, stride=2, spatial=(14, 14), dtype=torch.float16),
    # a unit output row at stride 3 (iree-compile failed on its stride-3 unit slices; found by fuzzing)
    "unit_row_s3_48": depthwise(48, kernel=(1, 3), stride=3, padding=(0, 1), dilation=(1, 2), spatial=(1, 9)),
}

PLAIN = {
    "channels_not_multiple_of_16": depthwise(24, spatial=(7, 7)),
    "wide_14_k3": depthwise(32, spatial=(14, 14)),
    "wide_15_k7": depthwise(16, kernel=7, padding=3, spatial=(15, 15)),
    "f64": depthwise(16, spatial=(7, 7), dtype=torch.float64),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(BLOCKED))
def test_blocked_taps_match_eager(name: str, backend: str) -> None:
    config = BLOCKED[name]
    module, report = compiled(config, "auto")
    (decision,) = report.decisions
    assert decision.strategy == "taps" and "16-channel blocks" in (decision.note or ""), decision
    names = op_names(module)
    assert names.count("linalg.pack") == 1 and names.count("linalg.unpack") == 1, names  # the input; the result
    check_matches_eager(config, "auto", backend, name)


@pytest.mark.parametrize("name", list(PLAIN))
def test_outside_the_rule_the_taps_stay_nchw(name: str) -> None:
    module, report = compiled(PLAIN[name], "auto")
    (decision,) = report.decisions
    assert decision.strategy == "taps" and "blocks" not in (decision.note or ""), decision
    names = op_names(module)
    assert "linalg.pack" not in names and "linalg.unpack" not in names
