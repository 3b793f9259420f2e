"""The `iree` runner's GEMMs through MKL (runners/blas.py, the `intel-avx512`
tuning's `blas_gemms`), on real execution.

Each model below is compiled with `auto` under `intel-avx512` and loaded on
the `iree` runner at 1 thread and on local-task: its GEMMs call the plugin (counted in
the compilation), and the result matches PyTorch eager within the f32
tolerance and an f64 computation (the suite's processes run local-task
with IREE's default workers, so the second count is None: the GEMMs are
split for the host's cores, 2 in CI). The models cover each GEMM the rewrite
takes: `matmul` (1x1 conv, linalg.matmul), `im2col` (3x3 conv: batch_matmul
with batch 1; the bias is added after it), `winograd` (batch_matmul over 36 tile
positions), a grouped im2col (batch = groups), torch-mlir's own matmul (a
Linear over a 7x7 map, 49 columns: split by rows for 2 workers) and batch 2
(its 3x3 im2col GEMM takes both images' columns; the 1x1 conv at batch 2 is
a generic contraction, left to IREE).
A GEMM accumulating into a tensor other than zeros (the rewrite's add) is
run from a hand-written linalg module against numpy in f64.
Also: several Python threads on one program; the caller's MKL thread count
left as it was; a saved module (`tgc.save`) carries no import of the plugin
and runs with IREE's runtime alone (tests/support/standalone.py); under `default` nothing calls MKL.
Layout: input [N,C,H,W], weight [F,C/G,kh,kw].
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.compiled import assert_close
from tests.support.standalone import run_standalone
from tests.support.threads import run_in_threads
from tests.support.tolerances import reference
from torch_grouped_conv.rewrite.tuning import DEFAULT, INTEL_AVX512, tuned_for
from torch_grouped_conv.runners import blas
from torch_grouped_conv.runners.iree import IreeProgram


def _bn(channels: int) -> torch.nn.BatchNorm2d:
    norm = torch.nn.BatchNorm2d(channels)
    assert norm.running_var is not None and norm.running_mean is not None
    torch.nn.init.uniform_(norm.running_var, 0.5, 2.0)
    torch.nn.init.normal_(norm.running_mean)
    return norm


class LinearOver7x7(torch.nn.Module):
    """convnext's pointwise MLP at its last stage: [1,C,7,7] -> NHWC -> Linear -> NCHW."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(96, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _models() -> dict[str, tuple[torch.nn.Module, tuple[int, ...], int]]:
    """name: (model, input shape, GEMMs calling MKL)."""
    torch.manual_seed(0)
    return {
        "conv1x1_bn_relu": (torch.nn.Sequential(torch.nn.Conv2d(64, 96, 1, bias=False), _bn(96), torch.nn.ReLU()),
                            (1, 64, 20, 20), 1),
        "conv3x3_s2_bias": (torch.nn.Conv2d(32, 48, 3, 2, 1), (1, 32, 23, 23), 1),
        "winograd_3x3_14": (torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, 1, 1, bias=False), _bn(64)),
                            (1, 64, 14, 14), 1),
        "grouped_im2col_cg32": (torch.nn.Conv2d(128, 128, 3, 1, 1, groups=4), (1, 128, 9, 9), 1),
        "linear_7x7": (LinearOver7x7(), (1, 96, 7, 7), 1),
        "batch2_1x1_3x3": (torch.nn.Sequential(torch.nn.Conv2d(16, 64, 1), torch.nn.ReLU(),
                                               torch.nn.Conv2d(64, 64, 3, padding=1)), (2, 16, 12, 12), 1),
    }


MODELS = _models()


def _program(model: torch.nn.Module, x: torch.Tensor, threads: int | None) -> IreeProgram:
    with tuned_for(INTEL_AVX512):
        module = tgc.compile(model.eval(), x, grouped_conv="auto")
        return IreeProgram(module, threads=threads)


@pytest.fixture(scope="module", autouse=True)
def plugin_available() -> None:
    reason = blas.unavailable()
    assert reason is None, reason  # this machine builds it (cc, PyTorch with MKL): not having it is a failure


@pytest.mark.parametrize("threads", [1, None])  # None: local-task, IREE's default workers, GEMMs split per core
@pytest.mark.parametrize("name", list(MODELS))
def test_mkl_gemms_match_eager_and_f64(name: str, threads: int | None) -> None:
    model, shape, gemms = MODELS[name]
    model.eval()
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(7))
    program = _program(model, x, threads)
    assert program.compilation.blas_gemms == gemms, program.compilation.blas_gemms
    (actual,) = program(x.numpy())
    assert_close(actual, reference(model, x), f"{name} at {threads} thread(s)")
    with torch.no_grad():
        wide = model.double()(x.double()).numpy()
    model.float()
    assert np.abs(actual.astype(np.float64) - wide).max() <= 1e-4 * max(1.0, float(np.abs(wide).max())), name


ACCUMULATING = """
func.func @main(%a: tensor<3x40x24xf32>, %b: tensor<3x24x150xf32>, %acc: tensor<3x40x150xf32>) -> tensor<3x40x150xf32> {
  %r = linalg.batch_matmul ins(%a, %b : tensor<3x40x24xf32>, tensor<3x24x150xf32>)
      outs(%acc : tensor<3x40x150xf32>) -> tensor<3x40x150xf32>
  return %r : tensor<3x40x150xf32>
}
"""


@pytest.mark.parametrize("threads", [1, None])
def test_gemm_into_an_accumulator(threads: int | None) -> None:
    from torch_grouped_conv.importer import torch_context

    rng = np.random.default_rng(5)
    a, b, acc = (rng.standard_normal(s, dtype=np.float32) for s in ((3, 40, 24), (3, 24, 150), (3, 40, 150)))
    with torch_context():
        module = ir.Module.parse(ACCUMULATING)
    with tuned_for(INTEL_AVX512):
        program = IreeProgram(module, threads=threads)
    assert program.compilation.blas_gemms == 1
    (actual,) = program(a, b, acc)
    wide = acc.astype(np.float64) + np.matmul(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(actual, wide, rtol=1e-5, atol=1e-5)


def test_default_tuning_keeps_iree_gemms() -> None:
    model, shape, _ = MODELS["conv1x1_bn_relu"]
    x = torch.randn(*shape)
    with tuned_for(DEFAULT):
        program = IreeProgram(tgc.compile(model.eval(), x), threads=1)
    assert program.compilation.blas_gemms == 0
    (actual,) = program(x.numpy())
    assert_close(actual, reference(model, x), "default tuning")


def test_threads_share_one_program() -> None:
    """Four Python threads call one program (local-task) 10 times each: every result is PyTorch's."""
    model, shape, _ = MODELS["batch2_1x1_3x3"]
    generator = torch.Generator().manual_seed(3)
    inputs = [torch.randn(*shape, generator=generator) for _ in range(4)]
    program = _program(model, inputs[0], threads=None)
    expected = [reference(model, x).numpy() for x in inputs]
    wrong: list[str] = []

    def worker(k: int) -> None:
        for call in range(10):
            (out,) = program(inputs[k].numpy())
            if not np.allclose(out, expected[k], rtol=1e-4, atol=1e-4):
                wrong.append(f"thread {k} call {call}")

    run_in_threads(worker, 4)
    assert not wrong, wrong


def test_callers_mkl_threads_unchanged() -> None:
    """At 1 thread (local-sync) the GEMMs run on the calling thread; the plugin
    sets MKL's count for that thread to 1 for each call and back after, so
    PyTorch's own MKL calls on that thread keep their threads."""
    mkl = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
    before = mkl.mkl_get_max_threads()
    model, shape, _ = MODELS["conv1x1_bn_relu"]
    x = torch.randn(*shape)
    _program(model, x, threads=1)(x.numpy())
    assert mkl.mkl_get_max_threads() == before


def test_saved_module_stands_alone(tmp_path: Path) -> None:
    """`tgc.save` under intel-avx512: no GEMM calls MKL, and IREE's runtime alone runs it (no plugin, no torch)."""
    model, shape, _ = MODELS["conv1x1_bn_relu"]
    x = torch.randn(*shape)
    with tuned_for(INTEL_AVX512):
        saved = tgc.save(tgc.compile(model.eval(), x), tmp_path / "m.vmfb")
    assert saved.compilation.blas_gemms == 0
    assert_close(run_standalone(saved.path, x.numpy(), driver="local-sync"), reference(model, x), "saved module")
