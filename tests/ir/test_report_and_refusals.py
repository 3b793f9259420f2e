"""Refusals, input errors and the report, on hand-written torch-backend IR.

Each refusal the planner can give has a test here: the op is left in place
for torch-mlir, the module still verifies, and the report says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch_mlir import ir, rewrite
from torch_mlir.dialects import torch as torch_d

import torch_grouped_conv as tgc
from torch_grouped_conv.report import ConvDecision, RewriteReport
from torch_grouped_conv.rewrite import driver
from torch_grouped_conv.rewrite.driver import ops_named
from torch_grouped_conv.rewrite.emit import convolution

CONVOLUTION = "torch.aten.convolution"


# --- writing torch-backend IR by hand -------------------------------------------------

def vtensor(shape: tuple[int | None, ...] | None, dtype: str = "f32") -> str:
    """`!torch.vtensor<[1,?,8],f32>`; shape None gives the unranked `!torch.vtensor`."""
    if shape is None:
        return "!torch.vtensor"
    return f"!torch.vtensor<[{','.join('?' if d is None else str(d) for d in shape)}],{dtype}>"


@dataclass(frozen=True)
class Conv:
    """One `torch.aten.convolution` with every operand spelled out.

    Int-list entries and `groups` are constants unless written as "arg" (then
    they are function arguments of type !torch.int); `transposed` likewise.
    Layout: input [N, C, *spatial], weight [F, C/G, *kernel], result [N, F, *out].
    """

    input: str = vtensor((1, 8, 6, 6))
    weight: str = vtensor((8, 2, 3, 3))
    result: str = vtensor((1, 8, 4, 4))
    stride: tuple[int | str, ...] = (1, 1)
    padding: tuple[int | str, ...] = (0, 0)
    dilation: tuple[int | str, ...] = (1, 1)
    output_padding: tuple[int | str, ...] = (0, 0)
    transposed: bool | str = False
    groups: int | str = 4


def conv_body(conv: Conv, tag: str, x: str) -> tuple[list[str], list[str], str]:
    """(argument decls, body lines, result name) for `conv` applied to SSA value `x`."""
    args = [f"%w{tag}: {conv.weight}"]
    lines: list[str] = []

    def scalar(value: int | bool | str, kind: str, name: str) -> str:
        if value == "arg":
            args.append(f"%{name}: !torch.{kind}")
            return f"%{name}"
        literal = str(value).lower() if kind == "bool" else str(value)
        lines.append(f"%{name} = torch.constant.{kind} {literal}")
        return f"%{name}"

    def int_list(values: tuple[int | str, ...], name: str) -> str:
        items = [scalar(v, "int", f"{name}{i}") for i, v in enumerate(values)]
        types = ", ".join(["!torch.int"] * len(items))
        lines.append(f"%{name} = torch.prim.ListConstruct {', '.join(items)} : ({types}) -> !torch.list<int>")
        return f"%{name}"

    lists = [int_list(getattr(conv, k), f"{k}{tag}") for k in ("stride", "padding", "dilation", "output_padding")]
    transposed = scalar(conv.transposed, "bool", f"transposed{tag}")
    groups = scalar(conv.groups, "int", f"groups{tag}")
    lines.append(f"%none{tag} = torch.constant.none")
    operands = [x, f"%w{tag}", f"%none{tag}", *lists[:3], transposed, lists[3], groups]
    types = [conv.input, conv.weight, "!torch.none", *["!torch.list<int>"] * 3, "!torch.bool",
             "!torch.list<int>", "!torch.int"]
    lines.append(f"%y{tag} = {CONVOLUTION} {', '.join(operands)} : {', '.join(types)} -> {conv.result}")
    return args, lines, f"%y{tag}"


def module_text(*convs: Conv) -> str:
    """`@main(x, weights..., scalar args...)` applying `convs` one after the other."""
    args, lines, value = [f"%x: {convs[0].input}"], [], "%x"
    for i, conv in enumerate(convs):
        conv_args, conv_lines, value = conv_body(conv, str(i), value)
        args += conv_args
        lines += conv_lines
    body = "\n    ".join([*lines, f"return {value} : {convs[-1].result}"])
    return f"func.func @main({', '.join(args)}) -> {convs[-1].result} {{\n    {body}\n}}"


def parse(text: str) -> ir.Module:
    context = ir.Context()
    torch_d.register_dialect(context)
    with context:
        return ir.Module.parse(text)




# --- one test per refusal -------------------------------------------------------------

def transposed(**changes: Any) -> Conv:
    """ConvTranspose2d(8, 8, 3, groups=4) on [1, 8, 6, 6]: weight [C, F/G, 3, 3], result [1, 8, 8, 8]."""
    base: dict[str, Any] = {"weight": vtensor((8, 2, 3, 3)), "result": vtensor((1, 8, 8, 8)), "transposed": True}
    return Conv(**{**base, **changes})


def spatial(rank: int, **changes: Any) -> Conv:
    """A grouped conv (C=8, F=8, G=4) of spatial rank `rank`: kernel 3, input 6, output 4."""
    ones = (1,) * rank
    return Conv(input=vtensor((1, 8, *(6,) * rank)), weight=vtensor((8, 2, *(3,) * rank)),
                result=vtensor((1, 8, *(4,) * rank)), stride=ones, padding=(0,) * rank, dilation=ones,
                output_padding=(0,) * rank, **changes)


# Every Refusal that spec.py (reading the op) and plan.py (deciding) can return.
REFUSALS = {
    # spec.py: operands that cannot be read
    "unranked_input": (Conv(input=vtensor(None)), "input has type !torch.vtensor; a ranked !torch.vtensor"),
    "unranked_weight": (Conv(weight=vtensor(None)), "weight has type !torch.vtensor; a ranked !torch.vtensor"),
    "unranked_result": (Conv(result=vtensor(None)), "result has type !torch.vtensor; a ranked !torch.vtensor"),
    "stride_not_constant": (Conv(stride=(1, "arg")), "stride is not a list of constant ints"),
    "dilation_not_constant": (Conv(dilation=(1, "arg")), "dilation is not a list of constant ints"),
    "output_padding_not_constant": (Conv(output_padding=(0, "arg")), "output_padding is not a list of constant ints"),
    "transposed_not_constant": (Conv(transposed="arg"), "transposed is not a constant bool"),
    "groups_not_constant": (Conv(groups="arg"), "groups is not a compile-time constant int"),
    # plan.py: what the lowering supports
    "spatial_rank_0": (spatial(0), "0D convolution is not lowered (input rank 2; supported spatial ranks: [1, 2, 3])"),
    "spatial_rank_4": (spatial(4), "4D convolution is not lowered (input rank 6; supported spatial ranks: [1, 2, 3])"),
    "integer_dtype": (
        Conv(input=vtensor((1, 8, 6, 6), "si32"), weight=vtensor((8, 2, 3, 3), "si32"),
             result=vtensor((1, 8, 4, 4), "si32")),
        "input dtype si32 is not a float type",
    ),
    "integer_weight": (Conv(weight=vtensor((8, 2, 3, 3), "si8")), "weight dtype si8 is not a float type"),
    "mixed_dtypes": (Conv(weight=vtensor((8, 2, 3, 3), "f64")), "mixed dtypes input=f32 weight=f64 result=f32"),
    "mixed_result_dtype": (Conv(result=vtensor((1, 8, 4, 4), "f16")), "mixed dtypes input=f32 weight=f32 result=f16"),
    # plan.py: a malformed op
    "stride_rank": (Conv(stride=(1,)), "stride=[1] has 1 entries for a 2D convolution"),
    "padding_rank": (Conv(padding=(0, 0, 0)), "padding=[0, 0, 0] has 3 entries for a 2D convolution"),
    "dilation_rank": (Conv(dilation=(1,)), "dilation=[1] has 1 entries for a 2D convolution"),
    "transposed_output_padding_rank": (transposed(output_padding=(0,)),
                                       "output_padding=[0] has 1 entries for a 2D convolution"),
    "stride_zero": (Conv(stride=(0, 1)), "stride=[0, 1] dilation=[1, 1] padding=[0, 0] out of range"),
    "dilation_zero": (Conv(dilation=(1, 0)), "stride=[1, 1] dilation=[1, 0] padding=[0, 0] out of range"),
    "negative_padding": (Conv(padding=(0, -1)), "padding=[0, -1] out of range"),
    "forward_output_padding": (Conv(output_padding=(1, 0)), "output_padding=[1, 0] on a non-transposed convolution"),
    "transposed_output_padding_too_large": (
        transposed(output_padding=(0, 1), result=vtensor((1, 8, 8, 9))),
        "output_padding[1]=1 must be in [0, max(stride=1, dilation=1))",
    ),
    "groups_zero": (Conv(groups=0), "groups=0 must be positive"),
    "groups_negative": (Conv(groups=-2), "groups=-2 must be positive"),
    "groups_not_dividing_c_in": (
        Conv(weight=vtensor((6, 2, 3, 3)), result=vtensor((1, 6, 4, 4)), groups=3),
        "groups=3 does not divide C_in=8",
    ),
    "groups_not_dividing_c_out": (
        Conv(weight=vtensor((6, 2, 3, 3)), result=vtensor((1, 6, 4, 4))),
        "groups=4 does not divide C_out=6",
    ),
    "weight_channels": (Conv(weight=vtensor((8, 4, 3, 3))), "weight dim 1 is 4, expected 2 for C_in=8, groups=4"),
    "transposed_weight_channels": (transposed(weight=vtensor((4, 2, 3, 3))),
                                   "weight dim 0 is 4, expected 8 for C_in=8, groups=4"),
    # C_in dynamic: only the transposed weight's first dim says how many input channels there are.
    "transposed_weight_c_in_not_divisible": (
        transposed(input=vtensor((1, None, 6, 6)), weight=vtensor((6, 2, 3, 3))),
        "groups=4 does not divide the transposed weight's C_in=6",
    ),
}


def test_padding_not_a_list_construct_is_refused() -> None:
    """Padding items may be runtime ints, but the list itself must be a ListConstruct."""
    text = module_text(Conv())
    construct = next(line for line in text.splitlines() if line.strip().startswith("%padding0 = "))
    text = text.replace(construct + "\n", "").replace("func.func @main(", "func.func @main(%padding0: !torch.list<int>, ")
    module = parse(text)
    report = tgc.lower(module, grouped_conv="grouped")
    [decision] = report.refused
    assert decision.reason == "padding is not a list of ints (torch.prim.ListConstruct)"
    assert len(ops_named(module, CONVOLUTION)) == 1 and module.operation.verify()


@pytest.mark.parametrize(("conv", "reason"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_refusal_leaves_op_and_says_why(conv: Conv, reason: str) -> None:
    module = parse(module_text(conv))
    report = tgc.lower(module, grouped_conv="grouped")
    assert report.counts() == {"refused": 1}
    assert report.lowered == []
    [decision] = report.refused
    assert reason in decision.reason, decision.reason
    assert decision.case is None and not decision.lowered
    assert decision.strategy == "grouped"
    [op] = ops_named(module, CONVOLUTION)  # left for torch-mlir's lowering
    assert driver.ORDER_ATTR not in op.attributes  # the transient numbering is gone
    assert module.operation.verify()
    assert tgc.last_report() is report


# Ops that earlier versions refused and the plugin now lowers: the report case
# and the linalg op that replaces the convolution.
LOWERED = {
    "conv1d": (spatial(1), "grouped", "linalg.conv_2d_ngchw_gfchw"),
    "conv3d": (spatial(3), "grouped", "linalg.generic"),
    "transposed": (transposed(), "transposed_grouped", "linalg.conv_2d_ngchw_gfchw"),
    "transposed_output_padding": (transposed(stride=(2, 2), output_padding=(1, 0), result=vtensor((1, 8, 14, 13))),
                                  "transposed_grouped", "linalg.conv_2d_ngchw_gfchw"),
    "f16": (
        Conv(input=vtensor((1, 8, 6, 6), "f16"), weight=vtensor((8, 2, 3, 3), "f16"),
             result=vtensor((1, 8, 4, 4), "f16")),
        "grouped", "linalg.conv_2d_ngchw_gfchw",
    ),
    "bf16": (
        Conv(input=vtensor((1, 8, 6, 6), "bf16"), weight=vtensor((8, 2, 3, 3), "bf16"),
             result=vtensor((1, 8, 4, 4), "bf16")),
        "grouped", "linalg.conv_2d_ngchw_gfchw",
    ),
    "dynamic_channels": (Conv(input=vtensor((1, None, 6, 6)), result=vtensor((1, 8, 4, 4))),
                         "grouped", "linalg.conv_2d_ngchw_gfchw"),
    "dynamic_batch_and_width": (Conv(input=vtensor((None, 8, 6, None)), result=vtensor((None, 8, 4, None))),
                                "grouped", "linalg.conv_2d_ngchw_gfchw"),
    # torch-mlir's form of padding="valid"/"same": a 1-entry [0] output_padding, ignored.
    "forward_output_padding_single_zero": (Conv(output_padding=(0,)), "grouped", "linalg.conv_2d_ngchw_gfchw"),
    "depthwise_multiplier": (Conv(input=vtensor((1, 4, 6, 6)), weight=vtensor((8, 1, 3, 3))),
                             "depthwise_multiplier", "linalg.conv_2d_ngchw_gfchw"),
    # Padding known only at run time (torch-mlir's padding="same" with a dynamic kernel).
    "runtime_padding": (Conv(padding=("arg", 0), result=vtensor((1, 8, None, 4))), "grouped", "linalg.conv_2d_ngchw_gfchw"),
    "transposed_runtime_padding": (transposed(padding=(1, "arg"), result=vtensor((1, 8, 6, None))),
                                   "transposed_grouped", "linalg.conv_2d_ngchw_gfchw"),
    # Kernel sizes known only at run time (a weight passed as an input): window math from tensor.dim.
    "dynamic_kernel": (Conv(weight=vtensor((8, 2, None, 3)), result=vtensor((1, 8, None, 4))),
                       "grouped", "linalg.conv_2d_ngchw_gfchw"),
    "transposed_dynamic_kernel": (transposed(weight=vtensor((8, 2, None, None)), result=vtensor((1, 8, None, None))),
                                  "transposed_grouped", "linalg.conv_2d_ngchw_gfchw"),
    "dynamic_weight_3d": (Conv(input=vtensor((1, 8, 6, 6, 6)), weight=vtensor((None,) * 5),
                               result=vtensor((1, None, None, None, None)), stride=(1, 1, 1), padding=(0, 0, 0),
                               dilation=(1, 1, 1), output_padding=(0, 0, 0)),
                          "grouped", "linalg.generic"),
}


@pytest.mark.parametrize(("conv", "case", "op"), list(LOWERED.values()), ids=list(LOWERED))
def test_lowered_not_refused(conv: Conv, case: str, op: str) -> None:
    module = parse(module_text(conv))
    report = tgc.lower(module, grouped_conv="grouped")
    assert report.counts() == {case: 1}, report.summary()
    [decision] = report.decisions
    assert decision.lowered and decision.reason is None
    assert ops_named(module, CONVOLUTION) == []
    assert len(ops_named(module, op)) == 1
    assert module.operation.verify()


def test_refused_and_lowered_in_one_module() -> None:
    """Decisions come in program order; the summary names each refusal."""
    refused = Conv(groups="arg")
    lowered = Conv(input=vtensor((1, 8, 4, 4)), weight=vtensor((8, 2, 1, 1)), result=vtensor((1, 8, 4, 4)))
    module = parse(module_text(refused, lowered))
    report = tgc.lower(module, grouped_conv="grouped")
    assert report.counts() == {"grouped": 1, "refused": 1}
    assert [d.case for d in report.decisions] == [None, "grouped"]
    assert len(ops_named(module, CONVOLUTION)) == 1
    assert len(ops_named(module, "linalg.conv_2d_ngchw_gfchw")) == 1
    assert module.operation.verify()

    lines = report.summary().splitlines()
    assert lines[0] == "2 convolution(s), strategy=grouped: grouped=1, refused=1"
    assert lines[1].startswith("  refused at loc(") and "groups is not a compile-time constant int" in lines[1]
    assert len(lines) == 2

    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["strategy"] == "grouped"
    assert as_dict["counts"] == {"grouped": 1, "refused": 1}
    first, second = as_dict["decisions"]
    assert first["case"] is None and "groups" in first["reason"]
    assert second == {
        "location": second["location"], "input_shape": [1, 8, 4, 4], "weight_shape": [8, 2, 1, 1],
        "groups": 4, "case": "grouped", "reason": None, "strategy": "grouped", "note": None,
        "module_path": None, "output_shape": [1, 8, 4, 4], "dtype": "f32",
        "flops": 2 * 1 * 8 * (8 // 4) * 1 * 1 * 4 * 4, "why": None,
    }
    assert second["location"].startswith("loc(")


def test_report_without_convolutions() -> None:
    report = RewriteReport("grouped")
    assert report.counts() == {}
    assert report.summary() == "0 convolution(s), strategy=grouped: none"
    assert report.to_dict() == {"strategy": "grouped", "counts": {}, "total_flops": 0, "decisions": []}


def test_report_counts_are_sorted() -> None:
    decision = ConvDecision("loc(unknown)", [1, 8, 4, 4], [8, 1, 3, 3], 8, "depthwise", None, "grouped")
    refusal = ConvDecision("loc(unknown)", None, None, None, None, "groups is not a compile-time constant int")
    report = RewriteReport("grouped", [refusal, decision, decision])
    assert list(report.counts().items()) == [("depthwise", 2), ("refused", 1)]
    assert report.refused == [refusal]


def test_plugin_off_report() -> None:
    report = RewriteReport(None)
    assert report.summary().startswith("plugin off (grouped_conv=None)")
    assert report.to_dict()["strategy"] is None


# --- input errors -----------------------------------------------------------------------

def tiny_model() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Conv2d(4, 4, 3, groups=2).eval(), torch.randn(1, 4, 6, 6)


def test_lower_unknown_strategy() -> None:
    module = parse(module_text(Conv()))
    with pytest.raises(tgc.InputError, match="unknown grouped_conv='fft'; choose one of grouped, "):
        tgc.lower(module, grouped_conv="fft")
    assert len(ops_named(module, CONVOLUTION)) == 1


def test_compile_unknown_strategy() -> None:
    with pytest.raises(tgc.InputError, match="unknown grouped_conv='fft'"):
        tgc.compile(*tiny_model(), grouped_conv="fft")


def test_compile_unknown_output_type() -> None:
    with pytest.raises(tgc.InputError, match="unknown output_type='tosa'"):
        tgc.compile(*tiny_model(), output_type="tosa")


def test_lower_without_convolution() -> None:
    module = parse(
        "func.func @main(%x: !torch.vtensor<[1,8],f32>) -> !torch.vtensor<[1,8],f32> {\n"
        "  %y = torch.aten.relu %x : !torch.vtensor<[1,8],f32> -> !torch.vtensor<[1,8],f32>\n"
        "  return %y : !torch.vtensor<[1,8],f32>\n}"
    )
    with pytest.raises(tgc.InputError, match="no torch.aten.convolution"):
        tgc.lower(module, grouped_conv="grouped")


def test_lower_raw_import_form() -> None:
    """aten.conv2d exists only before the torch-backend pipeline: `lower` runs
    that pipeline first (it used to refuse) and says so in the report."""
    x, w, y = vtensor((1, 8, 6, 6)), vtensor((8, 2, 3, 3)), vtensor((1, 8, 4, 4))
    module = parse(
        f"func.func @main(%x: {x}, %w: {w}) -> {y} {{\n"
        "  %none = torch.constant.none\n  %int0 = torch.constant.int 0\n  %int1 = torch.constant.int 1\n"
        "  %int4 = torch.constant.int 4\n"
        "  %ones = torch.prim.ListConstruct %int1, %int1 : (!torch.int, !torch.int) -> !torch.list<int>\n"
        "  %zeros = torch.prim.ListConstruct %int0, %int0 : (!torch.int, !torch.int) -> !torch.list<int>\n"
        f"  %y = torch.aten.conv2d %x, %w, %none, %ones, %zeros, %ones, %int4 : {x}, {w}, !torch.none, "
        f"!torch.list<int>, !torch.list<int>, !torch.list<int>, !torch.int -> {y}\n"
        f"  return %y : {y}\n}}"
    )
    report = tgc.lower(module, grouped_conv="grouped")
    assert report.input_note is not None and "it has torch.aten.conv2d" in report.input_note
    assert report.counts() == {"grouped": 1}
    assert ops_named(module, "torch.aten.conv2d") == [] and ops_named(module, CONVOLUTION) == []
    assert report.input_note in report.summary()


def test_input_error_is_a_package_error() -> None:
    assert issubclass(tgc.InputError, tgc.GroupedConvError)
    assert issubclass(tgc.CompileError, tgc.GroupedConvError)


# --- exceptions inside pattern callbacks ---------------------------------------------------

class PatternBoom(Exception):
    pass


def test_exception_in_pattern_propagates_unchanged() -> None:
    """Pin (torch-mlir 20261001): a Python exception raised in a pattern callback
    comes out of apply_patterns_and_fold_greedily as the same object, and the
    module still verifies. The plugin relies on this for internal errors."""
    module = parse(module_text(Conv()))
    raised: list[PatternBoom] = []

    def explode(op: ir.OpView, rewriter: rewrite.PatternRewriter) -> bool:
        raised.append(PatternBoom(f"boom at {op.operation.name}"))
        raise raised[-1]

    patterns = rewrite.RewritePatternSet(module.context)
    patterns.add(torch_d.AtenConvolutionOp, explode)
    with pytest.raises(PatternBoom) as caught:
        rewrite.apply_patterns_and_fold_greedily(module, patterns.freeze())
    assert caught.value is raised[0]
    assert str(caught.value) == f"boom at {CONVOLUTION}"
    assert module.operation.verify()
    assert len(ops_named(module, CONVOLUTION)) == 1


def test_internal_error_in_emitter_propagates_from_lower(monkeypatch: pytest.MonkeyPatch) -> None:
    module = parse(module_text(Conv()))
    error = PatternBoom("emitter failed")

    def broken_emit(*args: object) -> None:
        raise error

    monkeypatch.setattr(convolution, "emit_builtin", broken_emit)  # what every op kind emits through
    with pytest.raises(PatternBoom) as caught:
        tgc.lower(module, grouped_conv="grouped")
    assert caught.value is error
    assert module.operation.verify()
    assert len(ops_named(module, CONVOLUTION)) == 1


# --- torch.aten.conv_tbc ----------------------------------------------------------------

def conv_tbc_text(x: str = vtensor((7, 2, 4)), w: str = vtensor((3, 4, 5)), b: str = vtensor((5,)),
                  result: str = vtensor((7, 2, 5)), pad: int | str = 1) -> str:
    """`@main` applying `torch.aten.conv_tbc` (input [T, B, C], weight [k, C, F], bias [F])."""
    args = [f"%x: {x}", f"%w: {w}", f"%b: {b}"]
    lines = []
    if pad == "arg":
        args.append("%pad: !torch.int")
    else:
        lines.append(f"%pad = torch.constant.int {pad}")
    lines.append(f"%y = torch.aten.conv_tbc %x, %w, %b, %pad : {x}, {w}, {b}, !torch.int -> {result}")
    body = "\n    ".join([*lines, f"return %y : {result}"])
    return f"func.func @main({', '.join(args)}) -> {result} {{\n    {body}\n}}"


CONV_TBC_REFUSALS = {
    "pad_not_constant": (conv_tbc_text(pad="arg"), "conv_tbc pad is not a constant int"),
    "input_rank": (conv_tbc_text(x=vtensor((7, 2, 4, 1))), "conv_tbc input has type"),
    "integer_dtype": (conv_tbc_text(x=vtensor((7, 2, 4), "si32"), w=vtensor((3, 4, 5), "si32"),
                                    b=vtensor((5,), "si32"), result=vtensor((7, 2, 5), "si32")),
                      "input dtype si32 is not a float type"),
    "weight_channels": (conv_tbc_text(w=vtensor((3, 6, 5))), "weight dim 1 is 6, expected 4"),
}


@pytest.mark.parametrize(("text", "reason"), list(CONV_TBC_REFUSALS.values()), ids=list(CONV_TBC_REFUSALS))
def test_conv_tbc_refusal_leaves_op_and_says_why(text: str, reason: str) -> None:
    module = parse(text)
    report = tgc.lower(module, grouped_conv="grouped")
    assert report.counts() == {"refused": 1}
    [decision] = report.refused
    assert reason in decision.reason, decision.reason
    [op] = ops_named(module, "torch.aten.conv_tbc")
    assert driver.ORDER_ATTR not in op.attributes
    assert module.operation.verify()


@pytest.mark.parametrize("dims", [((7, 2, 4), (3, 4, 5), (7, 2, 5)), ((None, None, 4), (None, 4, 5), (None, None, 5))],
                         ids=["static", "dynamic"])
def test_conv_tbc_lowered_as_a_1d_conv_between_transposes(dims: tuple) -> None:
    """[T,B,C] -transpose-> [B,C,T] -conv_1d_ncw_fcw (weight [k,C,F] -transpose-> [F,C,k])-> [B,F,T']
    -(+ bias, one elementwise generic)-> -transpose-> [T',B,F]; the report keeps the op's own shapes."""
    x, w, y = dims
    module = parse(conv_tbc_text(x=vtensor(x), w=vtensor(w), result=vtensor(y)))
    report = tgc.lower(module, grouped_conv="grouped")
    assert report.counts() == {"conv_tbc": 1}, report.summary()
    [decision] = report.decisions
    assert (decision.input_shape, decision.weight_shape, decision.groups) == (list(x), list(w), 1)
    assert ops_named(module, "torch.aten.conv_tbc") == []
    [conv] = ops_named(module, "linalg.conv_1d_ncw_fcw")
    transposes = ops_named(module, "linalg.transpose")
    assert [list(ir.DenseI64ArrayAttr(t.attributes["permutation"])) for t in transposes] == \
        [[1, 2, 0], [2, 1, 0], [2, 0, 1]]
    pad = conv.operands[0].owner.operation
    assert pad.name == "tensor.pad" and pad.operands[0].owner.operation == transposes[0]  # pad 1 on T
    assert conv.operands[1].owner.operation == transposes[1]
    bias_add = transposes[2].operands[0].owner.operation
    assert bias_add.name == "linalg.generic" and bias_add.operands[0].owner.operation == conv
    assert module.operation.verify()


@pytest.mark.parametrize("strategy", [s for s in tgc.STRATEGIES if s != "grouped"])
def test_strategies_fall_back_on_a_runtime_kernel_size(strategy: str) -> None:
    """Every alternative emitter needs k at compile time: with static input and
    result but a dynamic kernel, each falls back to the default emitter and says why."""
    conv = Conv(weight=vtensor((8, 2, None, None)))
    module = parse(module_text(conv))
    report = tgc.lower(module, grouped_conv=strategy)
    [decision] = report.decisions
    assert (decision.case, decision.strategy) == ("grouped", "grouped")
    assert decision.note == (f"{strategy} declined: kernel size [None, None] is known only at run time; "
                             "fell back to grouped")
    assert len(ops_named(module, "linalg.conv_2d_ngchw_gfchw")) == 1
    assert module.operation.verify()


def test_strategies_fall_back_on_runtime_padding() -> None:
    conv = Conv(padding=("arg", 0))
    module = parse(module_text(conv))
    [decision] = tgc.lower(module, grouped_conv="auto").decisions
    assert (decision.case, decision.strategy) == ("grouped", "grouped")
    assert decision.note == "auto declined: padding [None, 0] is known only at run time; fell back to grouped"
    assert module.operation.verify()
