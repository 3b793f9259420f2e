"""No strategy emits what IREE's runtime cannot load: a dispatch needing more
than 64 push constants is refused at load time ("dispatch requiring 100
constants exceeds limit of 64"). `taps` declines a 3D transposed conv with a
dynamic spatial dim whose phase dispatch would need that many (its estimate,
rewrite/strategies/taps.py `push_constants`); `auto` then falls back to
`grouped`, and the module loads and matches PyTorch (f16 against an f64
computation of the same rounded operands)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.export import Dim

import torch_grouped_conv as tgc


def _issue_model(dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.ConvTranspose3d(16, 2, (1, 3, 3), stride=(2, 3, 1), dilation=(3, 1, 1), padding=(1, 2, 1),
                                    output_padding=(2, 1, 0), groups=2, bias=False).eval().to(dtype)


@pytest.mark.parametrize(("dtype", "declined"), [(torch.float16, True), (torch.float32, False)])
def test_taps_declines_what_iree_cannot_load(dtype, declined):
    model = _issue_model(dtype)
    x = torch.randn(1, 16, 7, 2, 6).to(dtype)
    module = tgc.compile(model, x, grouped_conv="auto", dynamic_shapes=({4: Dim.AUTO},))
    (decision,) = tgc.last_report().decisions
    summary = tgc.last_report().summary()
    assert ("push constants" in summary) == declined, summary
    assert ("taps=1" in summary) != declined, summary
    other = torch.randn(1, 16, 7, 2, 9).to(dtype)
    [y] = tgc.load(module, backend="iree")(other)
    with torch.no_grad():
        expected = model.double()(other.double()).numpy()
    np.testing.assert_allclose(y.astype(np.float64), expected, rtol=1e-2, atol=1e-2)
    assert decision is not None


def test_taps_alone_declines_with_the_reason():
    model = _issue_model(torch.float16)
    tgc.compile(model, torch.randn(1, 16, 7, 2, 6).half(), grouped_conv="taps", output_type="torch",
                dynamic_shapes=({4: Dim.AUTO},))
    assert "~100 IREE push constants per dispatch > 64" in tgc.last_report().summary()
