"""IR tests for the coverage cases: the op chosen per case (counted by name,
no SSA names), matching the table in docs/design.md, and refusals."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.compiled import compiled, op_names
from tests.support.configs import ConvConfig

F = torch.nn.functional


def op_counts(module: ir.Module) -> Counter[str]:
    counts: Counter[str] = Counter()

    def visit(op: ir.Operation) -> ir.WalkResult:
        counts[op.name] += 1
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return counts


def lowered(model: torch.nn.Module, *shape: int, dtype: torch.dtype = torch.float32) -> Counter[str]:
    """The plugin's output (torch form, before torch-mlir's own linalg pipeline)."""
    module = tgc.compile(model.to(dtype).eval(), torch.randn(*shape, dtype=dtype), grouped_conv="grouped",
                         output_type="torch")
    return op_counts(module)


def config(c_in: int, c_out: int, groups: int, kernel: int, spatial: tuple[int, ...], **kwargs: object) -> ConvConfig:
    return ConvConfig(c_in=c_in, c_out=c_out, groups=groups, kernel=kernel, padding=0, spatial=spatial, **kwargs)


CASES = [
    # (config, op that must appear once); the report case is config.case
    (config(3, 4, 1, 3, (8,)), "linalg.conv_1d_ncw_fcw"),
    (config(3, 4, 1, 2, (4, 4, 4)), "linalg.conv_3d_ncdhw_fcdhw"),
    (config(4, 4, 4, 3, (8,)), "linalg.depthwise_conv_1d_ncw_cw"),
    (config(4, 4, 4, 2, (4, 4, 4)), "linalg.depthwise_conv_3d_ncdhw_cdhw"),
    (config(4, 6, 2, 3, (8,)), "linalg.conv_2d_ngchw_gfchw"),
    (config(4, 6, 2, 2, (4, 4, 4)), "linalg.generic"),
    (config(3, 6, 3, 3, (6, 6)), "linalg.conv_2d_ngchw_gfchw"),
    (config(3, 4, 1, 3, (5, 5), stride=2, transposed=True), "linalg.conv_2d_nchw_fchw"),
    (config(4, 4, 4, 3, (5,), transposed=True), "linalg.depthwise_conv_1d_ncw_cw"),
]


@pytest.mark.parametrize(("conv", "op"), CASES, ids=[f"{c.case}-{op}" for c, op in CASES])
def test_case_op(conv: ConvConfig, op: str) -> None:
    module, report = compiled(conv, "grouped", "torch")
    counts = Counter(op_names(module))
    assert report.counts() == {conv.case: 1}
    assert counts[op] >= 1
    assert counts["torch.aten.convolution"] == 0


def test_grouped_1d_uses_unit_height() -> None:
    """1D grouped: the 2D grouped op between unit-dim expand/collapse."""
    counts = lowered(torch.nn.Conv1d(4, 6, 3, groups=2), 1, 4, 8)
    assert counts["linalg.conv_2d_ngchw_gfchw"] == 1
    assert counts["tensor.expand_shape"] >= 3  # group split of input/weight, unit dims
    assert counts["tensor.collapse_shape"] >= 2  # unit dim, then groups


def test_transposed_prepares_input_and_weight() -> None:
    """stride 2, padding 0: zeros inserted by a strided insert_slice into a
    filled tensor; weight flipped and transposed by one gathering generic."""
    counts = lowered(torch.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), 1, 4, 5, 5)
    assert counts["tensor.insert_slice"] == 1
    assert counts["linalg.fill"] >= 1
    assert counts["linalg.index"] == 5  # [G, F/G, C/G, kh, kw]
    assert counts["tensor.extract"] == 1
    assert counts["linalg.conv_2d_ngchw_gfchw"] == 1
    assert counts["tensor.pad"] == 0


def test_transposed_negative_padding_crops() -> None:
    counts = lowered(torch.nn.ConvTranspose1d(2, 3, 3, padding=3), 1, 2, 9)
    assert counts["tensor.extract_slice"] == 1
    assert counts["tensor.pad"] == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_accumulates_in_f32(dtype: torch.dtype) -> None:
    module = tgc.compile(torch.nn.Conv2d(4, 6, 3, groups=2).to(dtype).eval(),
                         torch.randn(1, 4, 6, 6, dtype=dtype), grouped_conv="grouped", output_type="torch")
    counts = op_counts(module)
    # bias to f32 (a generic), and input and weight inside the named conv's body
    assert counts["arith.extf"] == 3
    assert counts["arith.truncf"] == 1  # result, once
    conv = [op for op in _ops(module) if op.name == "linalg.conv_2d_ngchw_gfchw"]
    assert len(conv) == 1 and "f32" in str(conv[0].results[0].type)


def _ops(module: ir.Module) -> list[ir.Operation]:
    found: list[ir.Operation] = []
    module.operation.walk(lambda op: (found.append(op), ir.WalkResult.ADVANCE)[1])
    return found


TORCH_IR = """
func.func @main(%x: !torch.vtensor<[1,4,8,8],{dtype}>, %w: !torch.vtensor<[4,2,3,3],{dtype}>, %g: !torch.int)
    -> !torch.vtensor<[1,4,6,6],{dtype}> {{
  %none = torch.constant.none
  %false = torch.constant.bool false
  %int0 = torch.constant.int 0
  %int1 = torch.constant.int 1
  %int2 = torch.constant.int 2
  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>
  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>
  %0 = torch.aten.convolution %x, %w, %none, %ones, %zeros, %ones, %false, %zeros, {groups} :
    !torch.vtensor<[1,4,8,8],{dtype}>, !torch.vtensor<[4,2,3,3],{dtype}>, !torch.none, !torch.list<int>,
    !torch.list<int>, !torch.list<int>, !torch.bool, !torch.list<int>, !torch.int -> !torch.vtensor<[1,4,6,6],{dtype}>
  return %0 : !torch.vtensor<[1,4,6,6],{dtype}>
}}
"""


def _lower_text(dtype: str, groups: str) -> tgc.RewriteReport:
    from torch_mlir.dialects import torch as torch_d

    with ir.Context() as ctx:
        torch_d.register_dialect(ctx)
        module = ir.Module.parse(TORCH_IR.format(dtype=dtype, groups=groups))
        return tgc.lower(module, grouped_conv="grouped")


@pytest.mark.parametrize("dtype", ["si32", "si64"])
def test_integer_dtypes_are_refused(dtype: str) -> None:
    report = _lower_text(dtype, "%int2")
    assert report.counts() == {"refused": 1}
    assert f"input dtype {dtype} is not a float type" in report.refused[0].reason


def test_non_constant_groups_are_refused() -> None:
    report = _lower_text("f32", "%g")
    assert report.counts() == {"refused": 1}
    assert "groups is not a compile-time constant" in report.refused[0].reason
