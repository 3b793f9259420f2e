"""runners/blas.py without running a module: the workgroup split, which ops
the rewrite takes and what it emits for them, and the plugin build's refusals.
(tests/e2e/test_blas_gemms.py runs the rewritten modules against PyTorch.)"""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import pytest
from iree.compiler import ir

from torch_grouped_conv.runners import blas
from torch_grouped_conv.runners.blas import Gemm, Split, split, with_blas_gemms


@pytest.mark.parametrize(("gemm", "threads", "expected"), [
    (Gemm(1, 256, 3136, 64), 1, Split(256, 3136, 1, 1)),  # one worker: one call
    (Gemm(1, 256, 3136, 64), 2, Split(256, 1568, 1, 2)),  # wide: by columns
    (Gemm(1, 512, 49, 4608), 2, Split(256, 49, 2, 1)),  # a 7x7 map's 49 columns: by rows
    (Gemm(1, 32, 49, 288), 2, Split(32, 49, 1, 1)),  # too small for either
    (Gemm(36, 196, 64, 64), 2, Split(196, 64, 1, 1)),  # Winograd's 36 tile positions feed the workers
    (Gemm(1, 100, 130, 8), 2, Split(100, 65, 1, 2)),  # uneven: the last chunk is the remainder
])
def test_split(gemm: Gemm, threads: int, expected: Split) -> None:
    plan = split(gemm, threads)
    assert plan == expected
    assert plan.workgroups(gemm) == gemm.batch * plan.m_chunks * plan.n_chunks
    assert plan.m_chunk * plan.m_chunks >= gemm.m and plan.n_chunk * plan.n_chunks >= gemm.n


MODULE = """
func.func @main(%a: tensor<64x32xf32>, %b: tensor<32x48xf32>, %acc: tensor<4x64x48xf32>,
                %ba: tensor<4x64x32xf32>, %bb: tensor<4x32x48xf32>, %d: tensor<?x32xf32>,
                %h: tensor<64x32xf16>, %hb: tensor<32x48xf16>, %t: tensor<48x32xf32>)
    -> (tensor<64x48xf32>, tensor<4x64x48xf32>, tensor<?x48xf32>, tensor<64x48xf16>, tensor<64x48xf32>) {
  %zero = arith.constant 0.0 : f32
  %zh = arith.constant 0.0 : f16
  %c0 = arith.constant 0 : index
  %e = tensor.empty() : tensor<64x48xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<64x48xf32>) -> tensor<64x48xf32>
  %plain = linalg.matmul ins(%a, %b : tensor<64x32xf32>, tensor<32x48xf32>) outs(%z : tensor<64x48xf32>) -> tensor<64x48xf32>
  %batched = linalg.batch_matmul ins(%ba, %bb : tensor<4x64x32xf32>, tensor<4x32x48xf32>)
      outs(%acc : tensor<4x64x48xf32>) -> tensor<4x64x48xf32>
  %n = tensor.dim %d, %c0 : tensor<?x32xf32>
  %ed = tensor.empty(%n) : tensor<?x48xf32>
  %zd = linalg.fill ins(%zero : f32) outs(%ed : tensor<?x48xf32>) -> tensor<?x48xf32>
  %dynamic = linalg.matmul ins(%d, %b : tensor<?x32xf32>, tensor<32x48xf32>) outs(%zd : tensor<?x48xf32>) -> tensor<?x48xf32>
  %eh = tensor.empty() : tensor<64x48xf16>
  %zhf = linalg.fill ins(%zh : f16) outs(%eh : tensor<64x48xf16>) -> tensor<64x48xf16>
  %half = linalg.matmul ins(%h, %hb : tensor<64x32xf16>, tensor<32x48xf16>) outs(%zhf : tensor<64x48xf16>) -> tensor<64x48xf16>
  %transposed = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>,
      affine_map<(d0, d1, d2) -> (d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>]
      ins(%a, %t : tensor<64x32xf32>, tensor<48x32xf32>) outs(%z : tensor<64x48xf32>) -> tensor<64x48xf32>
  return %plain, %batched, %dynamic, %half, %transposed
      : tensor<64x48xf32>, tensor<4x64x48xf32>, tensor<?x48xf32>, tensor<64x48xf16>, tensor<64x48xf32>
}
"""


def _rewritten(threads: int = 2) -> tuple[str, int]:
    with ir.Context():
        module = ir.Module.parse(MODULE)
        out = io.BytesIO()
        module.operation.write_bytecode(out)
    source, count = with_blas_gemms(out.getvalue(), threads)
    with ir.Context():
        return str(ir.Module.parse(source)), count


def test_rewrite_takes_static_f32_gemms_with_plain_maps() -> None:
    text, count = _rewritten()
    assert count == 2  # the plain matmul and the batch_matmul
    assert text.count("flow.dispatch @tgc_blas::@gemm") == 2
    # the dynamic, the f16 and the transposed matmul stay with IREE
    assert text.count("linalg.matmul") == 3 and "linalg.batch_matmul" not in text
    assert text.count("call @tgc_sgemm(") == 1  # one executable serves both


def test_rewrite_adds_a_nonzero_accumulator_only() -> None:
    text, _ = _rewritten()
    # the batch_matmul accumulates into %acc: one linalg.add; the zero-filled matmul needs none
    (line,) = [ln for ln in text.splitlines() if "linalg.elementwise" in ln]
    assert "<add>" in line
    assert "tensor<4x64x48xf32>" in line


def _dispatch_sizes(text: str, operand_types: str) -> list[int]:
    """The workgroup count, then the index operands, of the dispatch with `operand_types`."""
    constants = dict(re.findall(r"(%c\w*) = arith.constant (\d+) : index", text))
    (line,) = [ln for ln in text.splitlines() if "flow.dispatch" in ln and operand_types in ln]
    found = re.search(r"@gemm\[(%\w+)\]\(([^)]*)\)", line)
    assert found is not None, line
    count, operands = found.groups()
    return [int(constants[count])] + [int(constants[o.strip()]) for o in operands.split(",")[2:]]


def test_rewrite_passes_sizes_and_split() -> None:
    """Operands after A and B: batch, m, n, k, m_chunk, n_chunk, m_chunks, n_chunks."""
    text, _ = _rewritten(threads=2)
    # 64x32 @ 32x48 at 2 threads: 48 columns are too few to split, 64 rows are enough: two row chunks
    assert _dispatch_sizes(text, "tensor<64x32xf32>, tensor<32x48xf32>") == [2, 1, 64, 48, 32, 32, 48, 2, 1]
    # batch 4 >= 2 threads: one workgroup per batch item
    assert _dispatch_sizes(text, "tensor<4x64x32xf32>, tensor<4x32x48xf32>") == [4, 4, 64, 48, 32, 64, 48, 1, 1]
    text, _ = _rewritten(threads=1)
    assert _dispatch_sizes(text, "tensor<64x32xf32>, tensor<32x48xf32>") == [1, 1, 64, 48, 32, 64, 48, 1, 1]


def test_rewrite_leaves_a_module_without_gemms_as_it_was() -> None:
    with ir.Context():
        module = ir.Module.parse("func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> { return %x : tensor<4xf32> }")
        out = io.BytesIO()
        module.operation.write_bytecode(out)
    source = out.getvalue()
    assert with_blas_gemms(source, 2) == (source, 0)


def test_build_without_a_compiler(tmp_path: Path) -> None:
    path, reason = blas.build_plugin(tmp_path, str(tmp_path / "no-such-cc"))
    assert path is None and "no C compiler" in reason and "set CC" in reason


def test_build_with_a_failing_compiler(tmp_path: Path) -> None:
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'undefined reference to sgemm_' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    path, reason = blas.build_plugin(tmp_path / "cache", str(fake))
    assert path is None and reason.endswith("failed: undefined reference to sgemm_")
    assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-written


def test_build_is_kept(tmp_path: Path) -> None:
    first, reason = blas.build_plugin(tmp_path, os.environ.get("CC", "cc"))
    assert first is not None, reason
    stamp = first.stat().st_mtime_ns
    again, _ = blas.build_plugin(tmp_path, "/no/compiler/needed")
    assert again == first and again.stat().st_mtime_ns == stamp


def test_setup_py_ships_the_plugin_source() -> None:
    setup = (Path(__file__).resolve().parents[2] / "setup.py").read_text()
    assert re.search(r'package_data=\{[^}]*"torch_grouped_conv\.runners": \["blas_plugin\.c"\]', setup)
    assert blas.PLUGIN_SOURCE.name == "blas_plugin.c" and blas.PLUGIN_SOURCE.is_file()
