"""Both runners called from several threads at once (tests/campaigns/load_test.py
at a small size; full size: `python -m tests.campaigns.load_test --threads 4
--calls 100`): every result equals PyTorch's, no call fails. Before each
thread had its own result slot, refbackend's 4 x 100 calls gave wrong
results and "@main returned no tensor result" errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.export import Dim

import torch_grouped_conv as tgc
from tests.campaigns.load_test import load_test, model_and_module
from tests.support.threads import run_in_threads


@pytest.fixture(scope="module")
def conv():
    return model_and_module()


@pytest.mark.parametrize("backend", tgc.BACKENDS)
def test_four_threads_share_one_loaded_module(conv, backend: str) -> None:
    model, module = conv
    result = load_test(module, model, backend, threads=4, calls=25)
    print(result.line())
    assert (result.calls, result.wrong, result.errors) == (100, 0, 0), result.line()


@pytest.mark.parametrize("backend", tgc.BACKENDS)
def test_threads_get_their_own_result_shapes(backend: str) -> None:
    """A dynamic batch: each thread's result has its own input's batch."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(8, 8, 3, groups=4).eval()
    module = tgc.compile(model, torch.randn(2, 8, 10, 10), dynamic_shapes=({0: Dim("n", min=1, max=64)},))
    program = tgc.load(module, backend=backend)
    inputs = [torch.randn(n, 8, 10, 10) for n in (1, 2, 3, 5)]
    with torch.no_grad():
        expected = [model(x).numpy() for x in inputs]
    failures: list[str] = []

    def worker(k: int) -> None:
        for _ in range(30):
            [y] = program(inputs[k])
            if y.shape != expected[k].shape or not np.allclose(y, expected[k], rtol=1e-4, atol=1e-4):
                failures.append(f"thread {k}: shape {y.shape}, expected {expected[k].shape}")

    run_in_threads(worker, len(inputs))
    assert failures == []
