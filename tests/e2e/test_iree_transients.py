"""External transients (runners/transients.py): the `iree` runner compiles a
static module with a large intermediate (`iree.wants_external_transients`,
>= 16 MiB) so that `@main` takes its transient storage from the caller, and
keeps one buffer per call in flight, reused: results equal PyTorch's,
sequential calls reuse one buffer, threads get their own. Smaller modules
(the rule; `transients=True` forces it here, to test on small modules),
dynamic modules and saved modules keep IREE's plain ABI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.export import Dim

import torch_grouped_conv as tgc
from tests.support.threads import run_in_threads
from torch_grouped_conv.errors import InputError
from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.common import module_bytecode
from torch_grouped_conv.runners.transients import MIN_BYTES, module_transient_size, with_transient_storage


def conv_1d() -> tuple[torch.nn.Module, torch.Tensor]:
    """A grouped 1D conv with a long kernel: its im2col matrix (4 x 16*64 x 257 f32, 4 MiB) is a transient."""
    torch.manual_seed(0)
    return torch.nn.Conv1d(64, 64, 64, padding=32, groups=4).eval(), torch.randn(1, 64, 256)


def dynamic_batch(model: torch.nn.Module, x: torch.Tensor) -> object:
    """`model` compiled with a dynamic batch (example batch 2: torch.export specializes a size-1 dim)."""
    return tgc.compile(model, torch.cat([x, x]), dynamic_shapes=({0: Dim("n", min=1, max=8)},))


@pytest.fixture(scope="module")
def program() -> tuple[torch.nn.Module, torch.Tensor, iree.IreeProgram]:
    model, x = conv_1d()
    return model, x, iree.IreeProgram(tgc.compile(model, x), transients=True)


def test_a_static_module_takes_its_transients_from_the_runner(program) -> None:
    model, x, compiled = program
    size = compiled.compilation.transient_bytes
    assert size is not None and size >= 4 * 4 * 16 * 64 * 257  # at least the im2col matrix
    with torch.no_grad():
        expected = model(x).numpy()
    for _ in range(5):
        [y] = compiled(x.numpy())
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert compiled.transient_buffers == 1  # five calls, one after the other: one buffer


def test_threads_calling_at_once_get_a_buffer_each(program) -> None:
    model, x, compiled = program
    inputs = [torch.randn(1, 64, 256) for _ in range(4)]
    with torch.no_grad():
        expected = [model(t).numpy() for t in inputs]
    failures: list[str] = []

    def worker(k: int) -> None:
        for _ in range(10):
            [y] = compiled(inputs[k].numpy())
            if not np.allclose(y, expected[k], rtol=1e-4, atol=1e-5):
                failures.append(f"thread {k}: max |diff| {np.abs(y - expected[k]).max()}")

    run_in_threads(worker, len(inputs))
    assert failures == []
    assert 1 <= compiled.transient_buffers <= len(inputs)


def test_the_rule_takes_large_intermediates_only() -> None:
    """A 94 MiB im2col matrix (wav2vec2's positional conv) gets the argument; the 4 MiB one does not."""
    model, x = conv_1d()
    small = tgc.compile(model, x)
    assert iree.largest_intermediate_bytes(small) < iree.TRANSIENTS_MIN_BYTES == 16 << 20
    assert not iree.wants_external_transients(small)
    assert iree.IreeProgram(small).compilation.transient_bytes is None
    torch.manual_seed(0)
    wav2vec2 = torch.nn.Conv1d(768, 768, 128, padding=64, groups=16).eval()
    large = tgc.compile(wav2vec2, torch.randn(1, 768, 250))
    assert iree.largest_intermediate_bytes(large) >= 4 * 768 * 128 * 251  # the im2col matrix, tiled or not
    assert iree.wants_external_transients(large)


def test_dynamic_modules_keep_the_plain_abi() -> None:
    model, x = conv_1d()
    module = dynamic_batch(model, x)
    assert not iree.wants_external_transients(module)
    compiled = iree.IreeProgram(module)
    assert compiled.compilation.transient_bytes is None and compiled.transient_buffers == 0
    with torch.no_grad():
        np.testing.assert_allclose(compiled(x.numpy())[0], model(x).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="static shapes"):
        iree.compile_for(module, transients=True)


def test_saved_modules_keep_the_plain_abi(tmp_path) -> None:
    """`tgc.save` writes inputs-in, results-out: iree-run-module and other runtimes call it as it is."""
    model, x = conv_1d()
    path = tmp_path / "conv.vmfb"
    tgc.save(tgc.compile(model, x), path)
    assert module_transient_size(path.read_bytes()) is None
    with torch.no_grad():
        np.testing.assert_allclose(tgc.load(path)(x)[0], model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_saved_with_transients_on_request(tmp_path) -> None:
    """`tgc.save(..., transients=True)`: the sidecar has the size, `tgc.load` passes the buffer."""
    import json

    model, x = conv_1d()
    path = tmp_path / "conv.vmfb"
    saved = tgc.save(tgc.compile(model, x), path, transients=True)
    size = module_transient_size(path.read_bytes())
    assert size is not None and json.loads(saved.sidecar.read_text())["runtime"]["transient_bytes"] == size
    with torch.no_grad():
        np.testing.assert_allclose(tgc.load(path)(x)[0], model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_saving_a_dynamic_module_with_transients_writes_nothing(tmp_path) -> None:
    model, x = conv_1d()
    module = dynamic_batch(model, x)
    with pytest.raises(InputError, match="static shapes"):
        tgc.save(module, tmp_path / "conv.vmfb", transients=True)
    assert list(tmp_path.iterdir()) == []


def test_an_input_dependent_transient_size_is_refused() -> None:
    """A module compiled elsewhere with the argument and dynamic shapes: its size is a function of the inputs."""
    model, x = conv_1d()
    module = dynamic_batch(model, x)
    source = with_transient_storage(module_bytecode(module))
    vmfb = iree._run_iree_compile(source, iree.target_flags() + iree.default_flags(module)).vmfb
    with pytest.raises(InputError, match="input-dependent size"):
        iree.Entry(vmfb, iree.program_config(1))


def test_a_small_module_takes_the_argument_too() -> None:
    """A 1x1 conv on 4x4: whatever its transient size (possibly 0), the pool's buffer has at least MIN_BYTES."""
    torch.manual_seed(0)
    model, x = torch.nn.Conv2d(4, 4, 1, bias=False).eval(), torch.randn(1, 4, 4, 4)
    compiled = iree.IreeProgram(tgc.compile(model, x), transients=True)
    assert compiled.compilation.transient_bytes is not None
    with torch.no_grad():
        np.testing.assert_allclose(compiled(x.numpy())[0], model(x).numpy(), rtol=1e-4, atol=1e-5)
    assert compiled.transient_buffers == 1 and MIN_BYTES == 64
