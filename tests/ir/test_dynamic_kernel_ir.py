"""IR-level tests for kernel sizes known only at run time (hand-written
torch-backend IR, plugin applied with `lower`): the window math reads k from
the weight with `tensor.dim`, matched by structure, never by SSA names.
Numbers: tests/support/cases_forms.py `cov_dynk_*` / `cov_dynw_*`.
"""

from __future__ import annotations

from torch_mlir import ir

import torch_grouped_conv as tgc
from tests.ir.test_report_and_refusals import Conv, module_text, parse, transposed, vtensor
from torch_grouped_conv.rewrite.driver import ops_named


def dims_read_from(module: ir.Module, source_op: str) -> list[int]:
    """The axes `tensor.dim` reads of values defined by `source_op`, in program order."""
    axes = []
    for dim in ops_named(module, "tensor.dim"):
        owner = dim.operands[0].owner
        if isinstance(owner, (ir.Operation, ir.OpView)) and owner.operation.name == source_op:
            axes.append(ir.IntegerAttr(dim.operands[1].owner.operation.attributes["value"]).value)
    return axes


def test_forward_output_sizes_come_from_the_weights_kernel_dims() -> None:
    """weight [8, 2, ?, ?]: the result [1, 8, ?, ?] sizes are (H - (k-1) - 1)/1 + 1 with
    k = tensor.dim(weight, 2|3); the grouped conv takes the dynamic kernel as it is."""
    conv = Conv(weight=vtensor((8, 2, None, None)), result=vtensor((1, 8, None, None)))
    module = parse(module_text(conv))
    assert tgc.lower(module, grouped_conv="grouped").counts() == {"grouped": 1}
    assert set(dims_read_from(module, "torch_c.to_builtin_tensor")) == {2, 3}
    [op] = ops_named(module, "linalg.conv_2d_ngchw_gfchw")
    weight_type = ir.RankedTensorType(op.operands[1].type)
    assert [weight_type.is_dynamic_dim(i) for i in range(5)] == [False, False, False, True, True]
    assert ops_named(module, "arith.maxsi") == []  # forward pads are static
    assert module.operation.verify()


def test_transposed_pads_and_flip_are_computed_at_run_time() -> None:
    """A transposed conv's pads d*(k-1)-p (low) and d*(k-1)-p+op (high) have a
    sign known only at run time: the positive part pads (one strided insert into
    zeros, dynamic offset), the negative part crops (extract_slice, dynamic
    offset); the flip's K-1-i reads K with tensor.dim."""
    conv = transposed(weight=vtensor((8, 2, None, 3)), result=vtensor((1, 8, None, 8)), stride=(2, 1),
                      padding=(1, 1), output_padding=(1, 0))
    module = parse(module_text(conv))
    assert tgc.lower(module, grouped_conv="grouped").counts() == {"transposed_grouped": 1}
    [op] = ops_named(module, "linalg.conv_2d_ngchw_gfchw")
    crop = op.operands[0].owner.operation
    assert crop.name == "tensor.extract_slice"
    insert = crop.operands[0].owner.operation
    assert insert.name == "tensor.insert_slice"
    # dynamic offsets: the operands past source and dest include runtime pad amounts
    assert len(ir.DenseI64ArrayAttr(insert.attributes["static_offsets"])) == 5
    assert ir.ShapedType.get_dynamic_size() in list(ir.DenseI64ArrayAttr(insert.attributes["static_offsets"]))
    assert ir.ShapedType.get_dynamic_size() in list(ir.DenseI64ArrayAttr(crop.attributes["static_offsets"]))
    assert len(ops_named(module, "arith.maxsi")) == 4  # pad and crop, low and high, on the one dynamic dim
    # the flip: a generic gathering with tensor.extract, its K-1 from tensor.dim of the grouped weight
    flip = op.operands[1].owner.operation
    assert flip.name == "linalg.generic"
    assert [o.name for o in flip.regions[0].blocks[0].operations][-2:] == ["tensor.extract", "linalg.yield"]
    assert dims_read_from(module, "tensor.expand_shape").count(3) >= 1
    assert module.operation.verify()


def test_static_kernel_keeps_static_window() -> None:
    """The same transposed conv with k known: no runtime pad arithmetic at all."""
    conv = transposed(stride=(2, 1), padding=(1, 1), output_padding=(1, 0), result=vtensor((1, 8, 12, 6)))
    module = parse(module_text(conv))
    assert tgc.lower(module, grouped_conv="grouped").counts() == {"transposed_grouped": 1}
    assert ops_named(module, "arith.maxsi") == []
    assert ops_named(module, "tensor.dim") == []
    assert module.operation.verify()
