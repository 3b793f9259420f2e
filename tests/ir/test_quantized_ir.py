"""Quantized convolutions at the IR level (no runner): the op chain each case
lowers to, the zero points where they enter, strategy fallbacks, and one
test per refusal. Modules are the hand-written torch-backend IR of
`tests.support.quantized` (the form torch-mlir's ONNX import produces), with
only the plugin applied.
"""

from __future__ import annotations

import dataclasses

import pytest
from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.support.cases_quantized import ACCUMULATOR_ONLY, FORWARD, TRANSPOSED
from tests.support.quantized import QConv, accumulator_ir, lower, parse
from torch_grouped_conv.errors import CompileError
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.driver import STRATEGIES, ops_named
from torch_grouped_conv.rewrite.plan import ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.read.spec import read_conv_spec
from torch_grouped_conv.rewrite.strategies import QUANTIZED_STRATEGIES
from torch_grouped_conv.rewrite.strategies.auto import pick_strategy

CONVS = {c.name: c for c in FORWARD + ACCUMULATOR_ONLY + TRANSPOSED}
CONVOLUTION = "torch.aten.convolution"
QUANTIZED_2D_OPS = ("linalg.conv_2d_nchw_fchw_q", "linalg.conv_2d_ngchw_gfchw_q")


def plugin(text: str, strategy: str = "grouped") -> tuple[ir.Module, RewriteReport]:
    module = parse(text)
    report = tgc.lower(module, strategy)
    assert module.operation.verify()
    return module, report


def constant_value(value: ir.Value) -> int:
    op = value.owner.operation
    assert op.name == "arith.constant", op
    return ir.IntegerAttr(op.attributes["value"]).value


def producer(value: ir.Value) -> ir.Operation:
    return value.owner.operation


def shifted_to_signed(value: ir.Value) -> bool:
    """Whether `value` is made by the elementwise `addi q, -128` of builders.shift_to_signed."""
    op = producer(value)
    if op.name != "linalg.generic":
        return False
    body = [o for o in op.regions[0].blocks[0].operations]
    if [o.name for o in body] != ["arith.addi", "linalg.yield"]:
        return False
    addend = body[0].operands[1]  # a block argument in the bias add (builders.add_bias)
    return not isinstance(addend.owner, ir.Block) and constant_value(addend) == -128


def storage_of(value: ir.Value) -> ir.Value:
    """Walk back through shift / expand / pad to the `torch_c.to_builtin_tensor` operand."""
    while True:
        op = producer(value)
        if op.name == "torch_c.to_builtin_tensor":
            return op.operands[0]
        value = op.operands[0]


# --- op chains ---------------------------------------------------------------------

# name -> (the op doing the convolution, the input zero point it sees in the signed domain)
OP_CHAINS = {
    "q2d_grouped": "linalg.conv_2d_ngchw_gfchw_q",
    "q2d_conv_stride2_ui8_weight": "linalg.conv_2d_nchw_fchw_q",
    "q2d_depthwise_dilation2": "linalg.conv_2d_ngchw_gfchw_q",  # no NCHW depthwise _q op: grouped, C/G = 1
    "q2d_multiplier_batch2": "linalg.conv_2d_ngchw_gfchw_q",
    "q1d_grouped_stride2": "linalg.conv_2d_ngchw_gfchw_q",  # unit height
    "q1d_conv_ui8_weight": "linalg.conv_2d_nchw_fchw_q",
    "q2d_grouped_si8_input": "linalg.conv_2d_ngchw_gfchw_q",
    "qt2d_grouped": "linalg.conv_2d_ngchw_gfchw_q",
    "qt1d_conv": "linalg.conv_2d_nchw_fchw_q",
}


def signed_zero_point(storage: str, zero_point: int) -> int:
    return zero_point - 128 if storage == "ui8" else zero_point


@pytest.mark.parametrize("name", list(OP_CHAINS))
def test_named_q_op_with_zero_points(name: str) -> None:
    """storage (block arg) -> [shift ui8] -> ... -> *_q op(x, w, x_zp, w_zp) with the
    signed-domain zero points; padding yields the input zero point; no float op."""
    conv = CONVS[name]
    module, report = plugin(accumulator_ir(conv))
    assert report.counts() == {conv.expected_case: 1}
    assert ops_named(module, CONVOLUTION) == []
    [op] = ops_named(module, OP_CHAINS[name])
    x, w, x_zp, w_zp = op.operands[:4]
    assert constant_value(x_zp) == signed_zero_point(conv.input_storage, conv.input_zero_point)
    assert constant_value(w_zp) == signed_zero_point(conv.weight_storage, conv.weight_zero_point)
    # the i8 argument itself, not the quantized tensor (a transposed weight is gathered by tensor.extract)
    for value in (x,) if conv.transposed else (x, w):
        assert isinstance(storage_of(value).owner, ir.Block)
    assert ir.RankedTensorType(op.results[0].type).element_type == ir.IntegerType.get_signless(32, module.context)
    i8 = ir.IntegerType.get_signless(8, module.context)
    for pad in ops_named(module, "tensor.pad"):
        [yielded] = list(pad.regions[0].blocks[0].operations)[-1].operands
        assert constant_value(yielded) == constant_value(x_zp)
    i8_fills = [f for f in ops_named(module, "linalg.fill")
                if ir.RankedTensorType(f.results[0].type).element_type == i8]
    assert len(i8_fills) == conv.transposed  # the inserted zeros: the zero point too
    for fill in i8_fills:
        assert constant_value(fill.operands[0]) == constant_value(x_zp)
    shifts = [g for g in ops_named(module, "linalg.generic") if shifted_to_signed(g.results[0])]
    assert len(shifts) == (conv.input_storage == "ui8") + (conv.weight_storage == "ui8")
    assert not [n for n in ("arith.sitofp", "arith.mulf", "arith.addf") if ops_named(module, n)]


@pytest.mark.parametrize("name", ["q2d_grouped", "qt2d_grouped"])
def test_i32_bias_is_added_after_the_conv(name: str) -> None:
    """The `_q` conv starts from an i32 zero fill; the i32 bias [G, F/G] is added
    after it by one elementwise generic (`arith.addi`; see builders.init_accumulator)."""
    module, _ = plugin(accumulator_ir(CONVS[name]))
    [op] = ops_named(module, "linalg.conv_2d_ngchw_gfchw_q")
    init = producer(op.operands[4])
    assert init.name == "linalg.fill" and constant_value(init.operands[0]) == 0
    [user] = [u.owner for u in op.results[0].uses]
    assert user.name == "linalg.generic"
    assert [o.name for o in user.regions[0].blocks[0].operations] == ["arith.addi", "linalg.yield"]
    bias = user.operands[1]
    conv = CONVS[name]
    assert ir.RankedTensorType(bias.type).shape == [conv.groups, conv.c_out // conv.groups]


@pytest.mark.parametrize("name", ["q3d_grouped", "q3d_conv_stride", "q3d_depthwise", "qt3d_depthwise_si8_input"])
def test_3d_is_an_integer_generic(name: str) -> None:
    """No 3D `_q` op in NC layout: a linalg.generic whose body is
    (extsi(x) - x_zp) * (extsi(w) - w_zp) + acc in i32 (a zero zero point's
    subtraction folds away)."""
    conv = CONVS[name]
    module, report = plugin(accumulator_ir(conv))
    assert report.counts() == {conv.expected_case: 1}
    convs = [g for g in ops_named(module, "linalg.generic")
             if "reduction" in str(g.attributes["iterator_types"])]
    assert len(convs) == 1
    iterators = str(convs[0].attributes["iterator_types"])
    assert iterators.count("reduction") == 4  # c and three kernel dims
    body = [o.name for o in convs[0].regions[0].blocks[0].operations]
    zero_points = [signed_zero_point(conv.input_storage, conv.input_zero_point),
                   signed_zero_point(conv.weight_storage, conv.weight_zero_point)]
    assert sorted(body) == sorted(["arith.extsi"] * 2 + ["arith.subi"] * sum(z != 0 for z in zero_points)
                                  + ["arith.muli", "arith.addi", "linalg.yield"]), body
    assert not [n for n in QUANTIZED_2D_OPS if ops_named(module, n)]


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s not in ("grouped", "auto", *QUANTIZED_STRATEGIES)])
def test_float_strategies_fall_back_to_grouped(strategy: str) -> None:
    module, report = plugin(accumulator_ir(CONVS["q2d_grouped"]), strategy)
    [decision] = report.decisions
    assert decision.case == "quantized_grouped" and decision.strategy == "grouped"
    assert f"{strategy} declined: it covers f32/f64 convolutions (quantized: im2col)" in decision.note, decision.note
    assert len(ops_named(module, "linalg.conv_2d_ngchw_gfchw_q")) == 1


def centering(op: ir.Operation) -> tuple[str, int] | None:
    """("arith.extui"/"arith.extsi", zero point) for a builders.centered_i32 generic, else None
    (a zero zero point's subtraction folds away)."""
    if op.name != "linalg.generic":
        return None
    body = list(op.regions[0].blocks[0].operations)
    names = [o.name for o in body]
    if names[0] not in ("arith.extui", "arith.extsi") or names[1:] not in (["linalg.yield"],
                                                                          ["arith.subi", "linalg.yield"]):
        return None
    return names[0], constant_value(body[1].operands[1]) if len(names) == 3 else 0


@pytest.mark.parametrize("strategy", ["im2col", "auto"])
@pytest.mark.parametrize("name", ["q2d_grouped", "q2d_conv_stride2_ui8_weight", "q2d_grouped_si8_input"])
def test_im2col_on_centered_i32_operands(name: str, strategy: str) -> None:
    """im2col (and auto, which picks it for quantized non-depthwise 2D convs):
    x and w become i32 q - zero point (zero-extended for ui8), padding is 0,
    one i32 linalg.batch_matmul, no `_q` op."""
    conv = CONVS[name]
    module, report = plugin(accumulator_ir(conv), strategy)
    [decision] = report.decisions
    assert decision.case == conv.expected_case and decision.strategy == "im2col", decision
    [matmul] = ops_named(module, "linalg.batch_matmul")
    i32 = ir.IntegerType.get_signless(32, module.context)
    assert all(ir.RankedTensorType(v.type).element_type == i32 for v in matmul.operands)
    extend = {"ui8": "arith.extui", "si8": "arith.extsi"}
    found = sorted(c for c in (centering(g) for g in ops_named(module, "linalg.generic")) if c is not None)
    assert found == sorted([(extend[conv.input_storage], conv.input_zero_point),
                            (extend[conv.weight_storage], conv.weight_zero_point)])
    for pad in ops_named(module, "tensor.pad"):
        [yielded] = list(pad.regions[0].blocks[0].operations)[-1].operands
        assert constant_value(yielded) == 0
    assert not [n for n in QUANTIZED_2D_OPS if ops_named(module, n)]


@pytest.mark.parametrize(("name", "strategy"), [
    ("q2d_depthwise_dilation2", "grouped"),  # im2col has no depthwise form
    ("q2d_grouped", "im2col"), ("q2d_conv_stride2_ui8_weight", "im2col"), ("q2d_multiplier_batch2", "im2col"),
    ("q1d_grouped_stride2", "im2col"), ("qt2d_grouped", "im2col"),  # picked, then declined (not 2D forward)
])
def test_auto_rule_for_quantized(name: str, strategy: str) -> None:
    conv = CONVS[name]
    module = parse(accumulator_ir(conv))  # keep it alive while its op is read
    spec = read_conv_spec(ops_named(module, CONVOLUTION)[0])
    planned = plan_convolution(spec)
    assert isinstance(planned, ConvPlan) and planned.quant is not None
    assert pick_strategy(planned)[0] == strategy


# --- refusals ----------------------------------------------------------------------

BASE = CONVS["q2d_grouped"]
X_TYPE, QX_TYPE = "!torch.vtensor<[1,8,6,6],ui8>", "!torch.vtensor<[1,8,6,6],!torch.quint8>"


def edited(conv: QConv, *replacements: tuple[str, str], weight_maker: str = "per_tensor") -> str:
    text = accumulator_ir(conv, weight_maker)
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return text


REFUSALS = {
    "per_channel_weight": (
        edited(BASE, weight_maker="per_channel"),
        "weight is !torch.qint8 quantized per channel (torch.aten._make_per_channel_quantized_tensor)",
    ),
    "zero_point_not_constant": (
        edited(BASE, ("%xzp = torch.constant.int 131\n", ""), ("%x: ", "%xzp: !torch.int, %x: ")),
        "input's zero point (torch.aten._make_per_tensor_quantized_tensor operand 2) is not a constant int",
    ),
    "quantized_argument": (  # no make op to read the zero point from
        edited(BASE, (f"%x: {X_TYPE}", f"%xq: {QX_TYPE}"),
               (f"%xq = torch.aten._make_per_tensor_quantized_tensor %x, %scale, %xzp : {X_TYPE}, !torch.float, "
                f"!torch.int -> {QX_TYPE}", "")),
        "input is !torch.quint8 but made by a block argument, not torch.aten._make_per_tensor_quantized_tensor",
    ),
    "zero_point_out_of_range": (
        edited(BASE, ("%xzp = torch.constant.int 131", "%xzp = torch.constant.int 300")),
        "input zero point 300 is outside ui8's [0, 255]",
    ),
    "float_bias": (
        edited(BASE, ("!torch.vtensor<[8],si32>", "!torch.vtensor<[8],f32>")),
        "quantized convolution with a f32 bias; expected ('si32',)",
    ),
    "float_weight": (
        edited(dataclasses.replace(BASE, bias=False),
               ("%wq = torch.aten._make_per_tensor_quantized_tensor %w, %scale, %wzp : !torch.vtensor<[8,2,3,3],si8>, "
                "!torch.float, !torch.int -> !torch.vtensor<[8,2,3,3],!torch.qint8>", ""),
               ("!torch.vtensor<[8,2,3,3],si8>", "!torch.vtensor<[8,2,3,3],f32>"),
               ("%wq", "%w"), ("!torch.vtensor<[8,2,3,3],!torch.qint8>", "!torch.vtensor<[8,2,3,3],f32>")),
        "input !torch.quint8 and weight f32: a quantized convolution needs both quantized",
    ),
}


@pytest.mark.parametrize(("text", "reason"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_quantized_refusal_says_why(text: str, reason: str) -> None:
    module, report = plugin(text)
    assert report.counts() == {"refused": 1}, report.summary()
    [decision] = report.refused
    assert reason in decision.reason, decision.reason
    assert len(ops_named(module, CONVOLUTION)) == 1


def test_per_channel_is_not_lowered_by_torch_mlir_either() -> None:
    """The per-channel refusal leaves nothing torch-mlir 20261001 could lower."""
    with pytest.raises(CompileError, match="linalg-on-tensors pipeline failed"):
        lower(parse(REFUSALS["per_channel_weight"][0]), None)
