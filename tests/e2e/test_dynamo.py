"""The torch.compile frontend end to end: `torch.compile(model,
backend="torch_grouped_conv")` on real nets matches eager; graph breaks,
dynamic batch (no recompile), the per-graph cache, the eager fallback.
"""

from __future__ import annotations

import importlib.metadata
import re
import warnings
from pathlib import Path

import pytest
import torch

import torch_grouped_conv as tgc
from tests.support.models import expected_counts, one_block_per_stage
from torch_grouped_conv.frontends import dynamo
from torch_grouped_conv.models import DemoNet
from torch_grouped_conv.verify import compare

SETUP_PY = Path(__file__).resolve().parents[2] / "setup.py"


@pytest.fixture(autouse=True)
def fresh_dynamo() -> None:
    """Each test starts with dynamo's and our caches empty."""
    tgc.register_dynamo_backend()
    torch._dynamo.reset()
    dynamo.reset_cache()


def mixed_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return DemoNet().eval()


def assert_matches(actual: torch.Tensor, expected: torch.Tensor) -> None:
    comparison = compare(actual.detach().numpy(), expected.detach().numpy())
    assert comparison.passed, f"max rel error {comparison.max_rel_error:.3e}"


def run_both(model: torch.nn.Module, x: torch.Tensor, **compile_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    compiled = torch.compile(model, backend="torch_grouped_conv", **compile_kwargs)
    with torch.no_grad():
        return compiled(x), model(x)


@pytest.mark.parametrize("runtime", tgc.BACKENDS)
def test_mixed_net_matches_eager(runtime: str) -> None:
    model = mixed_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to eager
        actual, expected = run_both(model, torch.randn(1, 3, 64, 64), options={"runtime": runtime})
    assert_matches(actual, expected)
    assert dynamo.STATS["compiled"] == 1 and dynamo.STATS["fallbacks"] == 0
    report = tgc.last_report()
    assert report is not None and report.strategy == "auto"  # the default for torch.compile
    assert report.counts() == expected_counts(model)


@pytest.mark.parametrize("name", ["resnext50_32x4d", "mobilenet_v2"])
def test_torchvision_net_matches_eager(name: str) -> None:
    """The one-block-per-stage forms: every convolution form of the full nets
    (tests/e2e/test_models.py runs the full nets through torch.export)."""
    model = one_block_per_stage(name)
    actual, expected = run_both(model, torch.randn(1, 3, 64, 64))
    assert_matches(actual, expected)
    assert dynamo.STATS["compiled"] == 1 and dynamo.STATS["fallbacks"] == 0
    assert tgc.last_report().counts() == expected_counts(model)


class BrokenNet(torch.nn.Module):
    """Two conv blocks with a graph break between them: two graphs."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(8, 16, 3, padding=1, groups=4)
        self.second = torch.nn.Conv2d(16, 16, 3, groups=16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.first(x))
        torch._dynamo.graph_break()
        return self.second(y)


def test_graph_break_compiles_each_graph() -> None:
    torch.manual_seed(0)
    actual, expected = run_both(BrokenNet().eval(), torch.randn(1, 8, 12, 12))
    assert_matches(actual, expected)
    assert dynamo.STATS["compiled"] == 2 and dynamo.STATS["fallbacks"] == 0
    assert tgc.last_report().counts() == {"depthwise": 1}  # the second graph's


def test_dynamic_batch_compiles_once() -> None:
    model = mixed_net()
    compiled = torch.compile(model, backend="torch_grouped_conv", dynamic=True)
    with torch.no_grad():
        for batch in (2, 3):
            x = torch.randn(batch, 3, 32, 32)
            assert_matches(compiled(x), model(x))
    assert dynamo.STATS["compiled"] == 1 and dynamo.STATS["cache_hits"] == 0


def test_same_graph_twice_is_compiled_once_and_keeps_each_models_weights() -> None:
    """The cache is per graph and input signature; weights are inputs, never baked in."""
    first, second = mixed_net(), DemoNet().eval()  # same architecture, different weights
    x = torch.randn(1, 3, 32, 32)
    actual_first, expected_first = run_both(first, x)
    torch._dynamo.reset()  # dynamo forgets; our cache does not
    actual_second, expected_second = run_both(second, x)
    assert_matches(actual_first, expected_first)
    assert_matches(actual_second, expected_second)
    assert not torch.allclose(expected_first, expected_second)
    assert dynamo.STATS["compiled"] == 1 and dynamo.STATS["cache_hits"] == 1


def test_weight_updated_in_place_is_seen() -> None:
    model = mixed_net()
    compiled = torch.compile(model, backend="torch_grouped_conv")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        compiled(x)
        model.grouped.weight.mul_(2.0)
        assert_matches(compiled(x), model(x))


def test_uncompilable_graph_falls_back_to_eager_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_finish(*args: object, **kwargs: object) -> None:
        raise tgc.CompileError("torch-mlir's linalg-on-tensors pipeline failed after the plugin ran:\nsomething")

    monkeypatch.setattr(dynamo, "finish", failing_finish)
    model = mixed_net()
    with pytest.warns(RuntimeWarning) as caught:
        actual, expected = run_both(model, torch.randn(1, 3, 32, 32))
    messages = [str(w.message) for w in caught if "torch_grouped_conv" in str(w.message)]
    assert messages == ["torch_grouped_conv: running a graph eagerly because it could not be compiled: "
                        "CompileError: torch-mlir's linalg-on-tensors pipeline failed after the plugin ran:"]
    assert torch.equal(actual, expected)
    assert dynamo.STATS["fallbacks"] == 1 and dynamo.STATS["compiled"] == 0


def test_training_mode_forward_compiled_backward_eager() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, groups=4), torch.nn.ReLU(), torch.nn.Conv2d(16, 4, 1))
    x = torch.randn(2, 8, 10, 10)
    compiled = torch.compile(model, backend="torch_grouped_conv")
    compiled(x).sum().backward()
    grad = model[0].weight.grad.clone()
    model.zero_grad()
    model(x).sum().backward()
    torch.testing.assert_close(grad, model[0].weight.grad, rtol=1e-4, atol=1e-5)
    assert dynamo.STATS["compiled"] == 1


def test_bad_option_is_named() -> None:
    compiled = torch.compile(mixed_net(), backend="torch_grouped_conv", options={"grouped_conv": "fft"})
    with pytest.raises(Exception, match="unknown grouped_conv='fft'"):
        compiled(torch.randn(1, 3, 32, 32))
    with pytest.raises(tgc.InputError, match="unknown torch_grouped_conv option 'workers'"):
        dynamo.parse_options({"workers": 2})


def test_entry_point_declared_and_loadable() -> None:
    """setup.py declares the backend in the group torch._dynamo reads; the target loads."""
    registry_source = Path(torch._dynamo.backends.registry.__file__).read_text()
    assert 'group_name = "torch_dynamo_backends"' in registry_source
    [value] = re.findall(r'"torch_dynamo_backends": \["torch_grouped_conv = ([\w.:]+)"\]', SETUP_PY.read_text())
    entry = importlib.metadata.EntryPoint(name="torch_grouped_conv", value=value, group="torch_dynamo_backends")
    assert entry.load() is dynamo.backend
    assert "torch_grouped_conv" in torch._dynamo.list_backends()


class ScaledConv(torch.nn.Module):
    """A tensor constant made in forward: it lives in the graph, not among the inputs."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 3, groups=8)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.tensor([self.scale] * 8).reshape(1, 8, 1, 1)


def test_same_code_with_other_constants_is_not_served_from_the_cache() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 6)
    for scale in (2.0, 3.0):
        torch._dynamo.reset()
        actual, expected = run_both(ScaledConv(scale).eval(), x)
        assert_matches(actual, expected)
    assert dynamo.STATS["cache_hits"] == 0 and dynamo.STATS["compiled"] == 2
