"""Regression: a `taps` conv feeding a convolution, on both runners.

The taps generics used to accumulate into their `outs` operand (the bias or
zero fill) and read it in the body. The embedded runner's
linalg-fuse-elementwise-ops then fused such a generic into the next conv's
generic (reduction loops) and kept the taps result as an extra output
written once per reduction step, each time adding the taps sum to its own
last value: mobilenet_v2 with `taps` was off by 2e9 on refbackend (IREE was
right). The taps generics now take the accumulator as an input (see
taps.accumulating_generic); these nets pin it, each small and cheap.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torch_grouped_conv as tgc
from torch_grouped_conv import BACKENDS


def conv_then_pointwise(first: torch.nn.Module, channels: int, middle: torch.nn.Module | None = None) -> torch.nn.Module:
    layers = [first] + ([middle] if middle is not None else []) + [torch.nn.Conv2d(channels, 8, 1)]
    return torch.nn.Sequential(*layers).eval()


NETS = {
    # the smallest reproducer: no bias, so both convs share the zero-fill init
    "depthwise_nobias_1x1": lambda: conv_then_pointwise(torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), 8),
    # mobilenet_v2's block: depthwise + bias, relu6, pointwise
    "depthwise_relu6_1x1": lambda: conv_then_pointwise(torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), 8,
                                                       torch.nn.ReLU6()),
    "multiplier_1x1": lambda: conv_then_pointwise(torch.nn.Conv2d(4, 8, 3, padding=1, groups=4), 8),
    # depthwise into a 3x3 conv (a sliding-window consumer map)
    "depthwise_3x3": lambda: torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                                 torch.nn.Conv2d(8, 4, 3, padding=1)).eval(),
}


@pytest.fixture(scope="module")
def compiled_nets() -> dict[str, tuple[torch.nn.Module, torch.Tensor, object]]:
    torch.manual_seed(0)
    built = {}
    for name, make in NETS.items():
        net = make()
        x = torch.randn(1, net[0].in_channels, 6, 6)
        built[name] = (net, x, tgc.compile(net, x, grouped_conv="taps"))
    return built


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(NETS))
def test_taps_then_conv_matches_eager(compiled_nets, name: str, backend: str) -> None:
    net, x, module = compiled_nets[name]
    with torch.no_grad():
        expected = net(x).numpy()
    [actual] = tgc.run(module, x, backend=backend)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5, err_msg=f"{name} taps on {backend}")
