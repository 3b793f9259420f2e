"""`winograd` (F(4x4, 3x3)) on both runners: every shape it takes matches
PyTorch eager and an f64 computation within the suite's f32 tolerance
(tests/support/tolerances.py), on odd sizes, padding 0/1/2 and asymmetric,
batch 2, groups 1 and grouped, bias and none, f64; and on the resnet50 /
resnext50 3x3 stride-1 shapes it was measured on (docs/shapes_winograd.json).
Layout: input [N,C,H,W], weight [F,C/G,3,3]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.compiled import check_matches_eager, compiled, load
from tests.support.configs import ConvConfig
from tests.support.tolerances import tolerance
from torch_grouped_conv import BACKENDS
from torch_grouped_conv.bench.shapes import load_shapes

SHAPES_FILE = Path(__file__).resolve().parents[2] / "docs" / "shapes_winograd.json"

CONFIGS: dict[str, ConvConfig] = {
    "g1_8x8": ConvConfig(groups=1),
    "g1_9x11_f8": ConvConfig(c_in=8, groups=1, spatial=(9, 11)),  # output 9x11: partial tiles both ways
    "g1_b2_p0_nobias": ConvConfig(c_in=16, c_out=8, groups=1, padding=0, bias=False, batch=2, spatial=(10, 7)),
    "g1_p2_13": ConvConfig(c_in=8, c_out=12, groups=1, padding=2, spatial=(13, 13)),
    "g1_p10_6x9": ConvConfig(c_in=8, groups=1, padding=(1, 0), spatial=(6, 9)),
    "g1_unit_out": ConvConfig(c_in=8, c_out=3, groups=1, padding=0, spatial=(3, 3)),
    "g4_b2_p2": ConvConfig(groups=4, padding=2, batch=2, spatial=(7, 9)),
    "g2_f12_nobias": ConvConfig(c_in=8, c_out=12, groups=2, bias=False, spatial=(5, 6)),
    "g1_f64": ConvConfig(c_in=8, groups=1, spatial=(9, 9), dtype=torch.float64),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_winograd_matches_eager(name: str, backend: str) -> None:
    config = CONFIGS[name]
    _, report = compiled(config, "winograd")
    (decision,) = report.decisions
    assert decision.strategy == "winograd" and decision.note is None, decision
    check_matches_eager(config, "winograd", backend, name)
    check_matches_f64(config, backend, name)


def f64_reference(config: ConvConfig, x: torch.Tensor) -> np.ndarray:
    """The conv computed in f64 from the same (f32) weights and input."""
    conv = config.make_module().eval()
    bias = None if conv.bias is None else conv.bias.double()
    with torch.no_grad():
        out = torch.nn.functional.conv2d(x.double(), conv.weight.double(), bias, padding=conv.padding,
                                         groups=conv.groups)
    return out.numpy()


def check_matches_f64(config: ConvConfig, backend: str, label: str) -> float:
    """Winograd's error against f64, within the dtype's tolerance; returns the max abs error."""
    module, _ = compiled(config, "winograd")
    x = config.make_input()
    (actual,) = load(module, backend)(x)
    expected = f64_reference(config, x)
    rtol, atol = tolerance(config.dtype)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol, err_msg=label)
    return float(np.abs(actual - expected).max())


def bench_configs() -> dict[str, ConvConfig]:
    """docs/shapes_winograd.json, read by the bench's own loader, as ConvConfigs (batch 1, 3x3, stride 1)."""
    shapes = load_shapes(SHAPES_FILE, "extra")
    assert shapes and all(s.kernel == (3, 3) and s.stride == (1, 1) and s.input[0] == 1 for s in shapes)
    return {s.name: ConvConfig(c_in=s.input[1], c_out=s.out_channels, groups=s.groups, spatial=s.input[2:],
                               padding=s.padding) for s in shapes}


@pytest.mark.parametrize(("name", "config"), list(bench_configs().items()))
def test_winograd_error_on_the_measured_shapes(name: str, config: ConvConfig) -> None:
    """The resnet50 / resnext50 shapes (C up to 1024): still within f32 tolerance of f64 (IREE)."""
    _, report = compiled(config, "winograd")
    assert report.decisions[0].strategy == "winograd", report.summary()
    check_matches_f64(config, "iree", name)
