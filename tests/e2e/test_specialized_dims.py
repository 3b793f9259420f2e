"""A dim asked dynamic that torch.export specialized is static in the compiled
signature: the module takes the traced size there and refuses any other with
an InputError, on both runners; the dims that stay dynamic take other sizes
and match PyTorch.

torch.export keeps such a dim as a SymInt with a constant value, which
torch-mlir's importer would print as `?`: before the fix, Conv1d(12, 4, 3,
groups=4) on [3, 12, 3] with the width asked dynamic compiled to
`(?x12x?) -> ?x4x1` and returned (4, 4, 1) for a width-6 input.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.export import Dim

import torch_grouped_conv as tgc
from tests.support.tolerances import tolerance
from torch_grouped_conv.frontends.torch_export import export_program, specialized_dims
from torch_grouped_conv.runners.signature import read_signature

# (label, module, example input shape, the dims asked dynamic, the dims torch.export specializes)
CASES = [
    ("conv1d_out_1", lambda: torch.nn.Conv1d(12, 4, 3, groups=4), (3, 12, 3), (0, 2), {2: 3}),
    ("conv2d_out_1x1", lambda: torch.nn.Conv2d(6, 6, (3, 2), groups=6), (2, 6, 3, 2), (0, 2, 3), {2: 3, 3: 2}),
    ("conv3d_depth_out_1", lambda: torch.nn.Conv3d(4, 8, (2, 1, 1), groups=2), (2, 4, 2, 5, 4), (2, 3, 4), {2: 2}),
    ("transposed_out_kernel", lambda: torch.nn.ConvTranspose1d(4, 4, 3, stride=2, padding=1, groups=2),
     (2, 4, 1), (0,), {}),
    ("no_specialization", lambda: torch.nn.Conv2d(4, 8, 3, groups=2), (2, 4, 6, 7), (0, 2, 3), {}),
]


def _compile(make, shape, dynamic, strategy="grouped"):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(shape)
    module = tgc.compile(model, x, grouped_conv=strategy, dynamic_shapes=({d: Dim.AUTO for d in dynamic},))
    return model, x, module


def _grown(shape: tuple[int, ...], dim: int) -> tuple[int, ...]:
    return tuple(s + 2 if i == dim else s for i, s in enumerate(shape))


@pytest.mark.parametrize(("label", "make", "shape", "dynamic", "specialized"), CASES, ids=[c[0] for c in CASES])
def test_signature_agrees_with_the_exported_program(label, make, shape, dynamic, specialized):
    model, x, module = _compile(make, shape, dynamic)
    found = {d.dim: d.size for d in specialized_dims(export_program(model, x, dynamic_shapes=(
        {d: Dim.AUTO for d in dynamic},)))}
    assert found == specialized
    (spec,) = read_signature(module).inputs
    for dim in range(len(shape)):
        if dim in dynamic and dim not in specialized:
            assert spec.dims[dim] is None, (label, dim, spec.dims)
        else:
            assert spec.dims[dim] == shape[dim], (label, dim, spec.dims)
    note = tgc.last_report().input_note
    if specialized:
        assert all(f"dim {d} = {s}" in note for d, s in specialized.items()), note
    else:
        assert note is None


@pytest.mark.parametrize(("label", "make", "shape", "dynamic", "specialized"), CASES, ids=[c[0] for c in CASES])
def test_dynamic_dims_match_pytorch_and_pinned_dims_refuse(label, make, shape, dynamic, specialized):
    model, x, module = _compile(make, shape, dynamic)
    fast = tgc.load(module, backend="refbackend")
    rtol, atol = tolerance(torch.float32)
    for dim in dynamic:
        other = torch.randn(_grown(shape, dim))
        if dim in specialized:
            with pytest.raises(tgc.InputError, match=f"dim {dim} must be {shape[dim]}"):
                fast(other)
            continue
        [y] = fast(other)
        with torch.no_grad():
            expected = model(other).numpy()
        assert y.shape == expected.shape, (label, dim)
        np.testing.assert_allclose(y, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("strategy", ["grouped", "auto", "taps", "im2col"])
@pytest.mark.parametrize("backend", tgc.BACKENDS)
def test_issue_case_every_strategy_refuses_the_wrong_width(strategy, backend):
    """The issue's case: width 6 is refused (it returned shape (4, 4, 1)); batch 4 at width 3 matches."""
    model, _, module = _compile(CASES[0][1], (3, 12, 3), (0, 2), strategy)
    fast = tgc.load(module, backend=backend)
    with pytest.raises(tgc.InputError, match="dim 2 must be 3"):
        fast(torch.randn(4, 12, 6))
    other = torch.randn(4, 12, 3)
    [y] = fast(other)
    with torch.no_grad():
        np.testing.assert_allclose(y, model(other).numpy(), rtol=1e-4, atol=1e-5)


def test_dynamic_dim_below_torch_exports_range_is_refused():
    """Conv1d(k=3) with the width dynamic: torch.export's range is [3, oo); width 2
    (an empty result) and width 1 (a negative one) were accepted before."""
    model, x, module = _compile(lambda: torch.nn.Conv1d(4, 4, 3, groups=2), (2, 4, 5), (2,))
    fast = tgc.load(module, backend="refbackend")
    for width in (1, 2):
        with pytest.raises(tgc.InputError, match=r"input 0 dim 2 is \d, the module was compiled for sizes 3\.\. there"):
            fast(torch.randn(2, 4, width))
    [y] = fast(x3 := torch.randn(2, 4, 3))
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x3).numpy(), rtol=1e-4, atol=1e-5)


def test_dynamic_batch_takes_size_1_as_the_exported_program_does():
    """A lower bound of 2 is torch.export's 0/1 specialization: its program takes batch 1, and so does ours."""
    model, _, module = _compile(lambda: torch.nn.Conv2d(4, 4, 3, groups=4), (3, 4, 6, 6), (0,))
    one = torch.randn(1, 4, 6, 6)
    [y] = tgc.load(module, backend="refbackend")(one)
    with torch.no_grad():
        np.testing.assert_allclose(y, model(one).numpy(), rtol=1e-4, atol=1e-5)


class TwoBranches(torch.nn.Module):
    """conv(x) + conv(y): torch.export ties x's and y's dynamic dims to one symbol each."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(4, 4, 3, groups=2), torch.nn.Conv2d(4, 4, 3, groups=4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


def test_tied_dims_must_agree():
    torch.manual_seed(0)
    model = TwoBranches().eval()
    x, y = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 8)
    module = tgc.compile(model, x, y, dynamic_shapes=({0: Dim.AUTO, 3: Dim.AUTO}, {0: Dim.AUTO, 3: Dim.AUTO}))
    fast = tgc.load(module, backend="refbackend")
    with pytest.raises(tgc.InputError, match="input 1 dim 3 is 9, but input 0 dim 3 is 10"):
        fast(torch.randn(2, 4, 7, 10), torch.randn(2, 4, 7, 9))
    x2, y2 = torch.randn(3, 4, 7, 10), torch.randn(3, 4, 7, 10)
    [out] = fast(x2, y2)
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x2, y2).numpy(), rtol=1e-4, atol=1e-5)


def test_an_empty_conv_output_is_refused_at_compile():
    """torch.export traces a transposed conv whose padding leaves an output size of
    0; PyTorch's f64 kernel rejects it (its f32 one returns an empty tensor), and
    compile refuses it whatever the dtype (it returned shape (1, 12, 7, 4, 0))."""
    model = torch.nn.ConvTranspose3d(4, 12, (3, 2, 1), stride=(1, 2, 1), dilation=2, padding=(0, 0, 1),
                                     output_padding=(0, 1, 0), groups=4).eval().double()
    x = torch.randn(1, 4, 3, 1, 2, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="Output size is too small"):  # (its f32 kernel returns the empty tensor)
        model(x)
    with pytest.raises(tgc.ModelInputError, match=r"output would be \[1, 12, 7, 4, 0\]"):
        tgc.compile(model, x)


def test_a_size_making_an_output_negative_is_refused():
    """ConvTranspose1d(k=1, stride=2, padding=1): output 2*s - 3. torch.export's lower bound 2
    stays (size 1 made IREE fail to allocate a negative size); size 2 matches."""
    model, _, module = _compile(lambda: torch.nn.ConvTranspose1d(4, 4, 1, stride=2, padding=1), (2, 4, 3), (2,))
    fast = tgc.load(module, backend="refbackend")
    with pytest.raises(tgc.InputError, match="compiled for sizes 2.. there"):
        fast(torch.randn(2, 4, 1))
    [y] = fast(x2 := torch.randn(2, 4, 2))
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x2).numpy(), rtol=1e-4, atol=1e-5)
