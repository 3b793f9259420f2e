"""IR-level tests: the op chain each registered 2D case lowers to, matched by
structure (op names, def-use chains, attributes), never by SSA names.

Modules come from `tests.support.compiled`, so a case compiled for the e2e tests
is not compiled again here.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from torch_mlir import ir

from tests.support.cases_conv2d import CONV2D_CONFIGS
from tests.support.compiled import case_params, compiled, op_names, print_ir
from tests.support.configs import CASE_OPS, ConvConfig
from tests.support.registry import CASES
from torch_grouped_conv.rewrite.driver import ops_named as find_ops
from torch_grouped_conv.rewrite.plan import output_spatial_size

CONV_OPS = {case: op for (rank, case), op in CASE_OPS.items() if rank == 2}

# Cases whose operands are split by group where they enter (plan.grouped_layout):
# input [N,G,C/G,H,W], weight [G,F/G,C/G,KH,KW], bias [G,F/G], accumulator [N,G,F/G,Ho,Wo].
GROUPED_CASES = ("grouped", "depthwise_multiplier")

WINDOW_ATTR = re.compile(r"^dense<(?P<values>\d+|\[\d+, \d+\])> : tensor<2xi64>$")

SINGLE_CONV = list(CONV2D_CONFIGS)


# --- helpers ---------------------------------------------------------------------



def the_conv(module: ir.Module, config: ConvConfig) -> ir.Operation:
    ops = find_ops(module, CONV_OPS[config.case])
    assert len(ops) == 1, print_ir(module)
    return ops[0]


def producers(value: ir.Value) -> list[str]:
    """Names of the ops defining `value`, its first operand's, and so on, up to a block argument."""
    names = []
    while isinstance(value.owner, (ir.Operation, ir.OpView)):
        op = value.owner.operation
        names.append(op.name)
        if len(op.operands) == 0:
            break
        value = op.operands[0]
    return names


def consumers(value: ir.Value) -> list[str]:
    """Names of the single users of `value`, of their first result, and so on."""
    names = []
    while True:
        uses = list(value.uses)
        if len(uses) != 1:
            return names
        op = uses[0].owner
        op = op.operation if isinstance(op, ir.OpView) else op
        names.append(op.name)
        if len(op.results) == 0:
            return names
        value = op.results[0]


def window_values(attr: ir.Attribute) -> list[int]:
    """`dense<2> : tensor<2xi64>` -> [2, 2]; `dense<[2, 1]> : tensor<2xi64>` -> [2, 1]."""
    match = WINDOW_ATTR.match(str(attr))
    assert match, f"unexpected window attribute {attr}"
    values = [int(v) for v in match["values"].strip("[]").split(",")]
    return values * 2 if len(values) == 1 else values


def dims(value: ir.Value) -> list[int | None]:
    """The value's tensor shape, None for a dynamic size."""
    shaped = ir.RankedTensorType(value.type)
    return [None if shaped.is_dynamic_dim(i) else shaped.get_dim_size(i) for i in range(shaped.rank)]


def is_grouped(config: ConvConfig) -> bool:
    return config.case in GROUPED_CASES


def reshape_counts(config: ConvConfig) -> dict[str, int]:
    """Exact reshape counts: grouped cases split input, weight and (if any) bias
    and merge the result back; depthwise merges the weight [C,1,KH,KW] -> [C,KH,KW]."""
    if is_grouped(config):
        return {"tensor.expand_shape": 2 + config.bias, "tensor.collapse_shape": 1}
    return {"tensor.expand_shape": 0, "tensor.collapse_shape": 1 if config.case == "depthwise" else 0}


def input_chain(config: ConvConfig) -> list[str]:
    """What feeds the conv's input, nearest first: padding (iff any) of the
    input, which grouped cases split by group first."""
    padding = ["tensor.pad"] if any(config.padding) else []
    return padding + (["tensor.expand_shape"] if is_grouped(config) else [])


def weight_chain(config: ConvConfig) -> list[str]:
    """The weight constant, split [F,..] -> [G,F/G,..] or collapsed [C,1,..] -> [C,..]."""
    reshape = {"conv": [], "depthwise": ["tensor.collapse_shape"]}.get(config.case, ["tensor.expand_shape"])
    return reshape + ["arith.constant"]


def accumulator_chain(config: ConvConfig) -> list[str]:
    """The conv's init: always zeros (linalg.fill of a constant); the bias is
    added after the conv (builders.init_accumulator says why)."""
    return ["linalg.fill", "arith.constant"]


def bias_chain(config: ConvConfig) -> list[str]:
    """The bias operand of the bias add: the constant, split [F] -> [G,F/G] in grouped cases."""
    return (["tensor.expand_shape"] if is_grouped(config) else []) + ["arith.constant"]


def result_chain(config: ConvConfig) -> list[str]:
    """The conv's consumers: the bias add (a linalg.generic) iff a bias, then the group merge."""
    return (["linalg.generic"] if config.bias else []) + (["tensor.collapse_shape"] if is_grouped(config) else [])


def bias_add(conv: ir.Operation) -> ir.Operation:
    """The linalg.generic adding the bias to the conv's result (its only user)."""
    (use,) = list(conv.results[0].uses)
    op = use.owner.operation if isinstance(use.owner, ir.OpView) else use.owner
    assert op.name == "linalg.generic"
    return op


def output_hw(config: ConvConfig) -> list[int]:
    return [output_spatial_size(*args) for args in
            zip(config.spatial, config.kernel, config.stride, config.padding, config.dilation, strict=False)]


# --- linalg-on-tensors -------------------------------------------------------------

@pytest.mark.parametrize("name", case_params(SINGLE_CONV))
def test_op_chain(name: str) -> None:
    config, module = CONV2D_CONFIGS[name], compiled(name).module
    counts = Counter(op_names(module))
    text = print_ir(module)
    assert counts["torch.aten.convolution"] == 0, text
    for op in set(CONV_OPS.values()):
        assert counts[op] == (1 if op == CONV_OPS[config.case] else 0), text
    for op, n in reshape_counts(config).items():
        assert counts[op] == n, text
    conv = the_conv(module, config)
    x, w, acc = conv.operands
    assert producers(x) == input_chain(config), text
    assert producers(w) == weight_chain(config), text
    assert producers(acc) == accumulator_chain(config), text
    assert consumers(conv.results[0]) == result_chain(config) + ["func.return"], text
    if config.bias:
        assert producers(bias_add(conv).operands[1]) == bias_chain(config), text


@pytest.mark.parametrize("name", case_params([n for n in SINGLE_CONV if is_grouped(CONV2D_CONFIGS[n])]))
def test_grouped_layout_shapes(name: str) -> None:
    """Grouped cases: every operand is split by group where it enters, so the
    pad and the bias add act on grouped tensors; one collapse at the end."""
    config, module = CONV2D_CONFIGS[name], compiled(name).module
    text = print_ir(module)
    n = None if CASES[name].dynamic_shapes else config.batch
    g, f = config.groups, config.out_channels
    h, w_in = config.spatial
    (kh, kw), (ph, pw) = config.kernel, config.padding
    ho, wo = output_hw(config)
    conv = the_conv(module, config)
    x, weight, acc = conv.operands
    split = x.owner.operands[0].owner if any(config.padding) else x.owner
    assert dims(split.results[0]) == [n, g, config.c_in // g, h, w_in], text
    assert dims(x) == [n, g, config.c_in // g, h + 2 * ph, w_in + 2 * pw], text
    assert dims(weight) == [g, f // g, config.c_in // g, kh, kw], text
    assert dims(acc) == [n, g, f // g, ho, wo], text
    result = conv
    if config.bias:  # out[n, g, f, ho, wo] = conv[n, g, f, ho, wo] + bias[g, f]
        result = bias_add(conv)
        assert dims(result.operands[1]) == [g, f // g], text
        maps = [str(m) for m in ir.ArrayAttr(result.attributes["indexing_maps"])]
        assert maps[1] == "affine_map<(d0, d1, d2, d3, d4) -> (d1, d2)>", text
    (use,) = list(result.results[0].uses)
    merge = use.owner
    assert dims(merge.results[0]) == [n, f, ho, wo], text
    for reshape in (split, merge):  # [N, C] <-> [N, G, C/G]
        assert str(reshape.attributes["reassociation"]) == "[[0], [1, 2], [3], [4]]", text


@pytest.mark.parametrize("name", case_params(SINGLE_CONV))
def test_window_attributes(name: str) -> None:
    config = CONV2D_CONFIGS[name]
    conv = the_conv(compiled(name).module, config)
    assert window_values(conv.attributes["strides"]) == list(config.stride)
    assert window_values(conv.attributes["dilations"]) == list(config.dilation)


@pytest.mark.parametrize("name", case_params(SINGLE_CONV))
def test_padding_and_init(name: str) -> None:
    config, module = CONV2D_CONFIGS[name], compiled(name).module
    counts = Counter(op_names(module))
    pads = find_ops(module, "tensor.pad")
    if any(config.padding):
        assert len(pads) == 1, print_ir(module)
        low, high = (list(ir.DenseI64ArrayAttr(pads[0].attributes[k])) for k in ("static_low", "static_high"))
        unpadded = [0, 0, 0] if is_grouped(config) else [0, 0]  # N, (G,) C
        assert low == high == [*unpadded, *config.padding]
    else:
        assert pads == [], print_ir(module)
    # The accumulator: zeros, whether or not there is a bias (added after the conv).
    assert (counts["linalg.broadcast"], counts["linalg.fill"]) == (0, 1), print_ir(module)
    assert counts["linalg.generic"] == int(config.bias), print_ir(module)


def test_network_op_counts() -> None:
    """MixedNet: 2 conv, 1 depthwise, 2 grouped (one without bias)."""
    module = compiled("conv2d_network_mixed").module
    counts = Counter(op_names(module))
    assert counts["linalg.conv_2d_nchw_fchw"] == 2
    assert counts["linalg.depthwise_conv_2d_nchw_chw"] == 1
    assert counts["linalg.conv_2d_ngchw_gfchw"] == 2
    # input and weight of both grouped convs, plus the bias of grouped_1x1
    assert counts["tensor.expand_shape"] == 2 * 2 + 1
    # both grouped results, the depthwise weight
    assert counts["tensor.collapse_shape"] == 2 + 1
    assert counts["torch.aten.convolution"] == 0


# --- torch form: right after the rewrite -----------------------------------------------

@pytest.mark.parametrize("name", case_params(SINGLE_CONV))
def test_torch_form_crosses_to_builtin_tensors(name: str) -> None:
    """Before torch-mlir's pipeline, the linalg op sits between
    torch_c.to_builtin_tensor (on the model input) and torch_c.from_builtin_tensor."""
    config = CONV2D_CONFIGS[name]
    result = compiled(name, output_type="torch")
    module, text = result.module, print_ir(result.module)
    assert result.report.counts() == {config.case: 1}
    assert find_ops(module, "torch.aten.convolution") == [], text
    conv = the_conv(module, config)
    assert producers(conv.operands[0]) == input_chain(config) + ["torch_c.to_builtin_tensor"], text
    assert consumers(conv.results[0]) == result_chain(config) + ["torch_c.from_builtin_tensor", "func.return"], text
