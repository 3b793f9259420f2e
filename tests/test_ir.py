"""IR-level tests: the op chain each registered 2D case lowers to, matched by
structure (op names, def-use chains, attributes), never by SSA names.

Modules come from `e2e_tests.compiled`, so a case compiled for the e2e tests
is not compiled again here.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from torch_mlir import ir

from e2e_tests.cases_conv2d import CONV2D_CONFIGS, Conv2dConfig
from e2e_tests.compiled import case_params, compiled, op_names, print_ir

CONV_OPS = {
    "conv": "linalg.conv_2d_nchw_fchw",
    "depthwise": "linalg.depthwise_conv_2d_nchw_chw",
    "grouped": "linalg.conv_2d_ngchw_gfchw",
}

# Exact counts per case: grouped splits input, weight and accumulator, and
# merges the result back; depthwise only merges the weight [C,1,KH,KW] -> [C,KH,KW].
RESHAPE_COUNTS = {
    "conv": {"tensor.expand_shape": 0, "tensor.collapse_shape": 0},
    "depthwise": {"tensor.expand_shape": 0, "tensor.collapse_shape": 1},
    "grouped": {"tensor.expand_shape": 3, "tensor.collapse_shape": 1},
}

WINDOW_ATTR = re.compile(r"^dense<(?P<values>\d+|\[\d+, \d+\])> : tensor<2xi64>$")

SINGLE_CONV = list(CONV2D_CONFIGS)


# --- helpers ---------------------------------------------------------------------

def find_ops(module: ir.Module, name: str) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == name:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


def the_conv(module: ir.Module, config: Conv2dConfig) -> ir.Operation:
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


def input_chain(config: Conv2dConfig) -> list[str]:
    """What must feed the conv's input, nearest first, in linalg-on-tensors form."""
    chain = ["tensor.expand_shape"] if config.case == "grouped" else []
    return chain + (["tensor.pad"] if any(config.padding) else [])


def result_chain(config: Conv2dConfig) -> list[str]:
    return ["tensor.collapse_shape"] if config.case == "grouped" else []


# --- linalg-on-tensors -------------------------------------------------------------

@pytest.mark.parametrize("name", case_params(SINGLE_CONV))
def test_op_chain(name: str) -> None:
    config, module = CONV2D_CONFIGS[name], compiled(name).module
    counts = Counter(op_names(module))
    text = print_ir(module)
    assert counts["torch.aten.convolution"] == 0, text
    for case, op in CONV_OPS.items():
        assert counts[op] == (1 if case == config.case else 0), text
    for op, n in RESHAPE_COUNTS[config.case].items():
        assert counts[op] == n, text
    conv = the_conv(module, config)
    assert producers(conv.operands[0]) == input_chain(config), text
    assert consumers(conv.results[0]) == result_chain(config) + ["func.return"], text


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
        assert low == high == [0, 0, *config.padding]
    else:
        assert pads == [], print_ir(module)
    # The accumulator: the bias broadcast over [N, F, Ho, Wo], or zeros.
    assert (counts["linalg.broadcast"], counts["linalg.fill"]) == ((1, 0) if config.bias else (0, 1)), print_ir(module)


def test_network_op_counts() -> None:
    module = compiled("conv2d_network_mixed").module
    counts = Counter(op_names(module))
    assert counts["linalg.conv_2d_nchw_fchw"] == 2
    assert counts["linalg.depthwise_conv_2d_nchw_chw"] == 1
    assert counts["linalg.conv_2d_ngchw_gfchw"] == 2
    assert counts["tensor.expand_shape"] == 2 * 3
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
