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
    assert len(re.findall(r"flow.dispatch @tgc_blas_\d::@blas_dispatch_\d_", text)) == 2
    # the dynamic, the f16 and the transposed matmul stay with IREE
    assert text.count("linalg.matmul") == 3 and "linalg.batch_matmul" not in text
    assert text.count("call @tgc_sgemm(") == 2  # one executable per GEMM shape


def test_rewrite_adds_a_nonzero_accumulator_only() -> None:
    text, _ = _rewritten()
    # the batch_matmul accumulates into %acc: one linalg.add; the zero-filled matmul needs none
    (line,) = [ln for ln in text.splitlines() if "linalg.elementwise" in ln]
    assert "<add>" in line
    assert "tensor<4x64x48xf32>" in line


def _walk(op: ir.Operation):
    yield op
    for region in op.regions:
        for block in region:
            for inner in block.operations:
                yield from _walk(inner.operation)


def _constant(value: ir.Value) -> int:
    owner = value.owner
    assert isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant", owner
    return ir.IntegerAttr(owner.operation.attributes["value"]).value


def _executable_sizes(threads: int) -> dict[str, list[int]]:
    """Export name -> [workgroups, batch, m, n, k, m_chunk, n_chunk, m_chunks, n_chunks], read from
    each executable's workgroup count and the constants its call to tgc_sgemm passes."""
    text, _ = _rewritten(threads)
    found: dict[str, list[int]] = {}
    with ir.Context():
        module = ir.Module.parse(text)
        for executable in module.body.operations:
            if executable.operation.name != "stream.executable":
                continue
            ops = list(_walk(executable.operation))
            (export,) = [o for o in ops if o.name == "stream.executable.export"]
            (count,) = [o for o in ops if o.name == "stream.return"]
            (call,) = [o for o in ops if o.name == "func.call"]
            name = ir.StringAttr(export.attributes["sym_name"]).value
            found[name] = [_constant(count.operands[0])] + [_constant(v) for v in list(call.operands)[6:14]]
    return found


def test_rewrite_passes_sizes_and_split() -> None:
    """After the three bindings: batch, m, n, k, m_chunk, n_chunk, m_chunks, n_chunks."""
    sizes = _executable_sizes(threads=2)
    # 64x32 @ 32x48 at 2 threads: 48 columns are too few to split, 64 rows are enough: two row chunks
    assert sizes["blas_dispatch_0_matmul_64x48x32_f32"] == [2, 1, 64, 48, 32, 32, 48, 2, 1]
    # batch 4 >= 2 threads: one workgroup per batch item
    assert sizes["blas_dispatch_1_batch_matmul_4x64x48x32_f32"] == [4, 4, 64, 48, 32, 64, 48, 1, 1]
    assert _executable_sizes(threads=1)["blas_dispatch_0_matmul_64x48x32_f32"] == [1, 1, 64, 48, 32, 64, 48, 1, 1]


def test_dispatches_are_named_by_op_and_ranges() -> None:
    """IREE's naming, which the bench's efficiency table reads FLOPs from; shapes in program order."""
    from torch_grouped_conv.bench.efficiency import dispatch_flops

    text, _ = _rewritten()
    names = re.findall(r"stream.executable.export public @(\S+)", text)
    assert names == ["blas_dispatch_0_matmul_64x48x32_f32", "blas_dispatch_1_batch_matmul_4x64x48x32_f32"]
    assert dispatch_flops(names[1])[0] == 2 * 4 * 64 * 48 * 32


def test_a_shape_shared_by_two_gemms_is_one_executable_with_both_locations() -> None:
    with ir.Context():
        module = ir.Module.parse("""
        func.func @main(%a: tensor<8x4xf32>, %b: tensor<4x8xf32>, %z: tensor<8x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>) {
          %x = linalg.matmul ins(%a, %b : tensor<8x4xf32>, tensor<4x8xf32>) outs(%z : tensor<8x8xf32>)
              -> tensor<8x8xf32> loc("conv_a.py":1:1)
          %y = linalg.matmul ins(%a, %b : tensor<8x4xf32>, tensor<4x8xf32>) outs(%z : tensor<8x8xf32>)
              -> tensor<8x8xf32> loc("conv_b.py":2:2)
          return %x, %y : tensor<8x8xf32>, tensor<8x8xf32>
        }""")
        out = io.BytesIO()
        module.operation.write_bytecode(out)
    source, count = with_blas_gemms(out.getvalue(), 1)
    with ir.Context():
        text = ir.Module.parse(source).operation.get_asm(enable_debug_info=True)
    assert count == 2 and text.count("stream.executable private") == 1
    (call,) = [line for line in text.splitlines() if "call @tgc_sgemm(" in line]
    location = call[call.rindex("loc("):]
    assert "#loc" in location or ("conv_a.py" in location and "conv_b.py" in location), location
    if "#loc" in location:  # printed as an alias: resolve it
        alias = location[4:-1]
        (definition,) = [line for line in text.splitlines() if line.startswith(alias + " = ")]
        assert "fused" in definition, definition


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


def test_build_into_an_unwritable_cache(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    path, reason = blas.build_plugin(blocked / "cache", "cc")
    assert path is None and "cannot write the BLAS plugin" in reason and "XDG_CACHE_HOME" in reason


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
