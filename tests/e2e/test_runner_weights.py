"""The embedded runner keeps large constants out of the JIT (runners/weights.py):
each tensor constant of `@main` with at least MIN_ELEMENTS elements becomes a
trailing argument, its data held in numpy (`RefBackendProgram.weights`) and
passed on every call. IR: the LLVM module the JIT compiles has no global that
large (with the hoisting off it has the weight's); numbers: the results still
equal PyTorch / numpy, across calls and threads, for f32, bf16 (the weight
passed as int16 bits), byte and bool constants, `dense<...>` (ONNX) and
`dense_resource<...>` (torch.export) alike.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.threads import run_in_threads
from tests.support.tolerances import reference, tolerance
from torch_grouped_conv.runners.refbackend import RefBackendProgram, lower_for_jit
from torch_grouped_conv.runners.weights import MIN_ELEMENTS, plan_hoist

NO_HOISTING = 2**62


def largest_global(module: ir.Module) -> int:
    """Elements of the largest `llvm.mlir.global` (0 if none): the data the JIT would compile."""
    sizes = [0]
    for op in module.body.operations:
        if op.operation.name == "llvm.mlir.global":
            dims = re.findall(r"array<(\d+) x", str(op.operation.attributes["global_type"]))
            sizes.append(int(np.prod([int(d) for d in dims])) if dims else 1)
    return max(sizes)


def grouped_conv(dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, torch.Tensor]:
    """A weight of 128x16x3x3 = 18432 elements (above MIN_ELEMENTS), a bias of 128 (below)."""
    torch.manual_seed(0)
    return torch.nn.Conv2d(64, 128, 3, groups=4).eval().to(dtype), torch.randn(1, 64, 10, 10, dtype=dtype)


@pytest.fixture(scope="module")
def conv():
    model, x = grouped_conv()
    return model, x, tgc.compile(model, x)


def test_the_weight_is_an_argument_not_a_global(conv) -> None:
    model, _, module = conv
    lowered = lower_for_jit(module)
    assert [w.shape for w in lowered.weights] == [tuple(model.weight.shape)]
    assert np.array_equal(lowered.weights[0], model.weight.detach().numpy())
    assert largest_global(lowered.module) < MIN_ELEMENTS
    # The same module with the hoisting off: the weight is a global of the JIT-ed module.
    assert largest_global(lower_for_jit(module, min_elements=NO_HOISTING).module) == model.weight.numel()


def test_results_match_pytorch_across_calls_and_threads(conv) -> None:
    model, x, module = conv
    program = RefBackendProgram(module)
    assert len(program.weights) == 1 and not program.weights[0].flags.writeable
    inputs = [torch.randn_like(x) for _ in range(4)]
    with torch.no_grad():
        expected = [model(t).numpy() for t in inputs]
    [first] = program(inputs[0].numpy())
    np.testing.assert_allclose(first, expected[0], *tolerance(torch.float32))
    failures: list[int] = []

    def worker(k: int) -> None:
        for _ in range(10):
            [y] = program(inputs[k].numpy())
            if not np.allclose(y, expected[k], *tolerance(torch.float32)):
                failures.append(k)

    run_in_threads(worker, len(inputs))
    assert failures == []
    assert np.array_equal(program.weights[0], model.weight.detach().numpy())  # never written by a call


def test_a_bf16_weight_is_passed_as_its_int16_bits() -> None:
    model, x = grouped_conv(torch.bfloat16)
    program = RefBackendProgram(tgc.compile(model, x))
    [weight] = program.weights
    assert weight.dtype == np.int16
    assert np.array_equal(weight.view(ml_dtypes.bfloat16), model.weight.detach().float().numpy().astype(ml_dtypes.bfloat16))
    [y] = program(x.view(torch.uint16).numpy().view(ml_dtypes.bfloat16))
    expected = reference(model, x).float().numpy()
    np.testing.assert_allclose(y.astype(np.float32), expected, *tolerance(torch.bfloat16))


class MaskedConv(torch.nn.Module):
    """A bool buffer of 4x8x16x16 = 8192 elements: torch-mlir's importer makes it a
    `dense_resource` of i8 (its bytes, 0 or 1), above MIN_ELEMENTS."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.register_buffer("mask", torch.rand(4, 8, 16, 16) > 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.where(self.mask, y, -y)


def test_a_byte_constant_is_hoisted_byte_for_byte() -> None:
    model, x = MaskedConv().eval(), torch.randn(4, 4, 16, 16)
    program = RefBackendProgram(tgc.compile(model, x))
    masks = [w for w in program.weights if w.dtype == np.int8]
    assert len(masks) == 1 and np.array_equal(masks[0], model.mask.numpy().astype(np.int8))
    [y] = program(x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x).numpy(), *tolerance(torch.float32))


DENSE_MODULE = """
func.func @main(%x: tensor<64x64xf32>) -> (tensor<64x64xf32>, tensor<64x64xf32>) {{
  %w = arith.constant {weight}
  %one = arith.constant dense<1.0> : tensor<64x64xf32>
  %e = tensor.empty() : tensor<64x64xf32>
  %s = linalg.add ins(%x, %w : tensor<64x64xf32>, tensor<64x64xf32>) outs(%e : tensor<64x64xf32>) -> tensor<64x64xf32>
  %t = linalg.add ins(%s, %one : tensor<64x64xf32>, tensor<64x64xf32>) outs(%e : tensor<64x64xf32>) -> tensor<64x64xf32>
  return %t, %w : tensor<64x64xf32>, tensor<64x64xf32>
}}
"""


def test_a_dense_constant_is_hoisted_a_splat_stays_and_a_returned_weight_is_a_copy() -> None:
    """`dense<...>` (what the ONNX importer makes) read through the buffer
    protocol; the 4096-element splat stays in the module; `@main` returning the
    weight itself gives a fresh array (the runner frees every result buffer: it
    must not be the weight's)."""
    weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    with ir.Context():
        module = ir.Module.parse(DENSE_MODULE.format(weight=ir.DenseElementsAttr.get(weight)))
        assert len(plan_hoist(module)) == 1
        program = RefBackendProgram(module)
    [held] = program.weights
    assert np.array_equal(held, weight)
    x = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    for _ in range(2):
        total, returned = program(x)
        np.testing.assert_allclose(total, x + weight + 1, rtol=1e-6)
        assert np.array_equal(returned, weight) and returned.ctypes.data != held.ctypes.data


BOOL_MODULE = """
func.func @main(%x: tensor<64x64xi1>) -> tensor<64x64xi1> {{
  %m = arith.constant {mask}
  %e = tensor.empty() : tensor<64x64xi1>
  %r = linalg.add ins(%x, %m : tensor<64x64xi1>, tensor<64x64xi1>) outs(%e : tensor<64x64xi1>) -> tensor<64x64xi1>
  return %r : tensor<64x64xi1>
}}
"""


def test_a_bool_constant_is_hoisted() -> None:
    """An i1 `dense<...>` constant (bit-packed in MLIR) reaches the JIT as one byte per element; linalg.add on i1 is `or`."""
    mask = np.random.default_rng(0).random((64, 64)) > 0.5
    with ir.Context():
        program = RefBackendProgram(ir.Module.parse(BOOL_MODULE.format(mask=ir.DenseElementsAttr.get(mask))))
    assert [w.dtype for w in program.weights] == [np.bool_]
    x = np.random.default_rng(1).random((64, 64)) > 0.5
    [y] = program(x)
    assert y.dtype == np.bool_ and np.array_equal(y, x | mask)


class ScatterIntoInputAndWeight(torch.nn.Module):
    """Results that are an input and a weight with a slice overwritten
    (slice_scatter: a tensor.insert_slice into the argument, which the
    bufferization would write in place into the caller's array or the shared
    weight, were the arguments writable)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.arange(64 * 128, dtype=torch.float32).reshape(64, 128),
                                        requires_grad=False)  # 8192 elements: hoisted

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        row = x[:1] * 2
        return torch.slice_scatter(x, row, dim=0, start=3, end=4), torch.slice_scatter(self.table, row, 0, 5, 6)


def test_calls_never_write_into_their_inputs_or_weights() -> None:
    model = ScatterIntoInputAndWeight().eval()
    x = torch.randn(64, 128)
    program = RefBackendProgram(tgc.compile(model, x))
    assert len(program.weights) == 1
    given, table = x.numpy().copy(), model.table.numpy().copy()
    for _ in range(2):
        out, scattered = program(given)
        expected_out, expected_scattered = model(torch.from_numpy(given))
        assert np.array_equal(out, expected_out.numpy()) and np.array_equal(scattered, expected_scattered.numpy())
        assert np.array_equal(given, x.numpy()), "the call wrote into its input"
        assert np.array_equal(program.weights[0], table), "the call wrote into the shared weight"
