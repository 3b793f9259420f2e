"""The embedded runner decomposes linalg.pack / linalg.unpack
(runners/packs.py; its MLIR has no lowering of them to loops): a pack with
two tiled dims, an incomplete tile padded with the pack's padding value and
permuted outer dims, and the matching unpack (which crops the padding), run
on real inputs and compared with the same relayout written in numpy."""

from __future__ import annotations

import numpy as np
import pytest
from torch_mlir import ir

from torch_grouped_conv.errors import CompileError
from torch_grouped_conv.importer import torch_context
from torch_grouped_conv.runners.packs import decompose_packs
from torch_grouped_conv.runners.refbackend import RefBackendProgram

# x [5, 7, 3]: dim 2 in tiles of 2 (3 -> 2 tiles, one padded), dim 0 in tiles
# of 4 (5 -> 2 tiles, padded), outer dims in the order (1, 0, 2).
MODULE = """
func.func @main(%x: tensor<5x7x3xf32>, %y: tensor<7x2x2x2x4xf32>) -> (tensor<7x2x2x2x4xf32>, tensor<5x7x3xf32>) {
  %pad = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<7x2x2x2x4xf32>
  %p = linalg.pack %x padding_value(%pad : f32) outer_dims_perm = [1, 0, 2] inner_dims_pos = [2, 0]
      inner_tiles = [2, 4] into %e : tensor<5x7x3xf32> -> tensor<7x2x2x2x4xf32>
  %e2 = tensor.empty() : tensor<5x7x3xf32>
  %u = linalg.unpack %y outer_dims_perm = [1, 0, 2] inner_dims_pos = [2, 0] inner_tiles = [2, 4]
      into %e2 : tensor<7x2x2x2x4xf32> -> tensor<5x7x3xf32>
  return %p, %u : tensor<7x2x2x2x4xf32>, tensor<5x7x3xf32>
}
"""


def numpy_pack(x: np.ndarray) -> np.ndarray:
    padded = np.full((8, 7, 4), 0.5, np.float32)
    padded[:5, :, :3] = x
    # (o0, t0, d1, o2, t2) -> (d1, o0, o2, t2, t0)
    return padded.reshape(2, 4, 7, 2, 2).transpose(2, 0, 3, 4, 1)


def numpy_unpack(y: np.ndarray) -> np.ndarray:
    # (d1, o0, o2, t2, t0) -> (o0, t0, d1, o2, t2), then crop the padding
    return y.transpose(1, 4, 0, 2, 3).reshape(8, 7, 4)[:5, :, :3]


def test_pack_and_unpack_run_on_the_embedded_runner() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7, 3), dtype=np.float32)
    y = rng.standard_normal((7, 2, 2, 2, 4), dtype=np.float32)
    with torch_context():
        program = RefBackendProgram(ir.Module.parse(MODULE))
        packed, unpacked = program(x, y)
    np.testing.assert_array_equal(packed, numpy_pack(x))
    np.testing.assert_array_equal(unpacked, numpy_unpack(y))
    assert numpy_pack(x)[0, 1, 1, 1, 0] == 0.5  # the padded tile element is the padding value


def test_decompose_leaves_no_pack() -> None:
    with torch_context():
        module = ir.Module.parse(MODULE)
        assert decompose_packs(module) == 2
        text = str(module)
    assert "linalg.pack" not in text and "linalg.unpack" not in text
    assert "tensor.pad" in text and text.count("linalg.transpose") == 2


def test_a_dynamic_pack_is_one_clear_error() -> None:
    dynamic = """
func.func @main(%x: tensor<?x32xf32>) -> tensor<?x2x16xf32> {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x32xf32>
  %e = tensor.empty(%n) : tensor<?x2x16xf32>
  %p = linalg.pack %x inner_dims_pos = [1] inner_tiles = [16] into %e : tensor<?x32xf32> -> tensor<?x2x16xf32>
  return %p : tensor<?x2x16xf32>
}
"""
    with torch_context(), pytest.raises(CompileError, match="linalg.pack with a dynamic tile or shape is not supported"):
        decompose_packs(ir.Module.parse(dynamic))
