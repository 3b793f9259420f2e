"""`torch.aten.conv_tbc`: a 1D convolution over time in [T, B, C] layout.

    conv_tbc(input [T, B, C], weight [k, C, F], bias [F], pad) -> [T', B, F]
      = conv1d(input.permute(1, 2, 0), weight.permute(2, 1, 0), bias, padding=pad).permute(2, 0, 1)

torch-mlir 20261001's own decomposition of the op returns the convolution's
[B, F, T'] result without the final permute, so the importer keeps the op out
of it (`stages.PLUGIN_LEGAL_OPS`) and the plugin lowers it here: read into the
same `ConvSpec` as `aten.convolution` (in [N, C, W] layout, groups 1, stride
and dilation 1), planned and emitted like any `conv`, with a
`linalg.transpose` on each side.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch_mlir import ir
from torch_mlir.dialects import linalg, tensor

from torch_grouped_conv.rewrite.emit import builders
from torch_grouped_conv.rewrite.read.spec import ConvSpec, Refusal, TensorInfo, constant_int, parse_vtensor_type

CONV_TBC_OP = "torch.aten.conv_tbc"
ENTRY = "conv_tbc"  # ConvSpec.entry, and the report case

# linalg.transpose permutations: result dim i = source dim PERM[i].
INPUT_TO_NCW = (1, 2, 0)  # [T, B, C] -> [B, C, T]
WEIGHT_TO_FCK = (2, 1, 0)  # [k, C, F] -> [F, C, k]
RESULT_TO_TBF = (2, 0, 1)  # [B, F, T'] -> [T', B, F]


def _permuted(info: TensorInfo, perm: Sequence[int]) -> TensorInfo:
    return TensorInfo(tuple(info.shape[p] for p in perm), info.dtype)


def read_conv_tbc_spec(op: ir.Operation) -> ConvSpec | Refusal:
    """Read (input, weight, bias, pad) of `torch.aten.conv_tbc` into a ConvSpec in
    `aten.convolution`'s layout: input [B, C, T], weight [F, C, k], result [B, F, T']."""
    x, w, b, pad = op.operands
    tensors: dict[str, TensorInfo] = {}
    for name, value, rank in (("input", x, 3), ("weight", w, 3), ("bias", b, 1), ("result", op.results[0], 3)):
        info = parse_vtensor_type(str(value.type))
        if info is None or len(info.shape) != rank:
            return Refusal(f"conv_tbc {name} has type {value.type}; a ranked !torch.vtensor of rank {rank} is required")
        tensors[name] = info
    padding = constant_int(pad)
    if padding is None:
        return Refusal("conv_tbc pad is not a constant int")
    return ConvSpec(
        location=str(op.location),
        input=_permuted(tensors["input"], INPUT_TO_NCW),
        weight=_permuted(tensors["weight"], WEIGHT_TO_FCK),
        result=_permuted(tensors["result"], (1, 2, 0)),  # [T', B, F] -> [B, F, T']
        has_bias=True,
        stride=(1,),
        padding=(padding,),
        dilation=(1,),
        output_padding=(0,),
        transposed=False,
        groups=1,
        entry=ENTRY,
    )


def transpose(value: ir.Value, perm: Sequence[int]) -> ir.Value:
    """linalg.transpose of `value` (static or dynamic dims): result dim i = value dim perm[i]."""
    sizes = builders.sizes_of(value)
    empty = tensor.empty([sizes[p] for p in perm], ir.RankedTensorType(value.type).element_type)
    return linalg.transpose(value, outs=[empty], permutation=list(perm)).results[0]


def builtin_operands(spec: ConvSpec, op: ir.Operation) -> tuple[ir.Value, ir.Value, ir.Value]:
    """Input [B, C, T], weight [F, C, k] and bias [F] as builtin tensors, from the op's [T, B, C] / [k, C, F]."""
    x_in, w_in, b_in = op.operands[0], op.operands[1], op.operands[2]
    x = builders.to_builtin(x_in, _permuted(spec.input, (2, 0, 1)))  # back to [T, B, C]
    w = builders.to_builtin(w_in, _permuted(spec.weight, WEIGHT_TO_FCK))  # [F, C, k] -> [k, C, F]
    bias_info = parse_vtensor_type(str(b_in.type))
    assert bias_info is not None, "read_conv_tbc_spec checked the bias type"
    return transpose(x, INPUT_TO_NCW), transpose(w, WEIGHT_TO_FCK), builders.to_builtin(b_in, bias_info)


def result_layout(result: ir.Value) -> ir.Value:
    """The convolution's [B, F, T'] as conv_tbc's [T', B, F]."""
    return transpose(result, RESULT_TO_TBF)
