"""IR: every all-parallel linalg.generic that `taps` emits leaves its `outs`
operand unread (a tensor.empty), the accumulator (bias or zero fill) being an
input. A generic that reads its `outs` was mis-fused by
linalg-fuse-elementwise-ops into a following conv (see
tests/e2e/test_taps_fusion.py and docs/design.md, Runners)."""

from __future__ import annotations

import pytest
import torch
from torch_mlir import ir

import torch_grouped_conv as tgc


class ChannelsLast(torch.nn.Module):
    """A depthwise conv whose result is permuted to NHWC (the channels-last taps form)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).permute(0, 2, 3, 1)


NETS = {
    "depthwise": lambda: torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
    "depthwise_nobias": lambda: torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
    "depthwise_s2": lambda: torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),
    "grouped": lambda: torch.nn.Conv2d(8, 8, 3, padding=1, groups=2),
    "multiplier": lambda: torch.nn.Conv2d(4, 8, 3, padding=1, groups=4),
    "transposed_s2": lambda: torch.nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, groups=8),
    "channels_last": ChannelsLast,
    "depthwise_blocked": lambda: torch.nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32),
}
INPUT_CHANNELS = {"multiplier": 4, "depthwise_blocked": 32}


def parallel_generics(module: ir.Module) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == "linalg.generic":
            iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
            if all("parallel" in it for it in iterators):
                found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


def multiplies(op: ir.Operation) -> bool:
    return any(inner.name == "arith.mulf" for inner in op.regions[0].blocks[0].operations)


@pytest.mark.parametrize("name", list(NETS))
def test_taps_generics_do_not_read_their_init(name: str) -> None:
    torch.manual_seed(0)
    net = NETS[name]().eval()
    module = tgc.compile(net, torch.randn(1, INPUT_CHANNELS.get(name, 8), 6, 6), grouped_conv="taps")
    assert [d.strategy for d in tgc.last_report().decisions] == ["taps"]
    generics = parallel_generics(module)
    taps = [op for op in generics if multiplies(op)]
    # one generic summing the taps, or one per output phase (transposed, stride 2: 4)
    assert len(taps) == (4 if name == "transposed_s2" else 1), f"{name}:\n{module}"
    for op in generics:
        body = op.regions[0].blocks[0]
        out_arg = body.arguments[len(body.arguments) - 1]
        assert not list(out_arg.uses), f"{name}: a parallel generic reads its outs:\n{op}"
        init = op.operands[len(op.operands) - 1]
        assert init.owner.name == "tensor.empty", f"{name}: init is {init.owner.name}"
    if name != "transposed_s2":  # forward: the accumulator is the input right before the init, added once
        [op] = taps
        body = op.regions[0].blocks[0]
        acc_arg = body.arguments[len(body.arguments) - 2]
        assert [use.owner.name for use in acc_arg.uses] == ["arith.addf"], f"{name}:\n{op}"


def test_channels_last_taps_read_contiguous_weight_vectors() -> None:
    """The NHWC taps vectorize along C, so each tap's [C] weights must be a
    contiguous slice: of the weight transposed to [1,KH,KW,C], not a strided
    [C] slice of [C,1,KH,KW] (which IREE gathers one float at a time: ConvNeXt's
    56x56x96 depthwise ran 26x slower that way)."""
    torch.manual_seed(0)
    module = tgc.compile(ChannelsLast().eval(), torch.randn(1, 8, 6, 6), grouped_conv="taps")
    [op] = [op for op in parallel_generics(module) if multiplies(op)]
    weight_slices = [v.owner for v in op.operands
                     if getattr(v.owner, "name", None) == "tensor.extract_slice" and ir.RankedTensorType(v.type).shape == [8]]
    assert len(weight_slices) == 9, str(op)
    for s in weight_slices:
        assert ir.RankedTensorType(s.operands[0].type).shape == [1, 3, 3, 8], str(s)
        assert list(ir.DenseI64ArrayAttr(s.attributes["static_strides"])) == [1, 1, 1, 1], str(s)


def test_blocked_taps_read_16_channel_vectors() -> None:
    """Narrow rows (taps.blocks_channels): the taps generic runs over
    [N, C/16, Ho, Wo, 16], its views strided slices of the linalg.pack of the
    padded input (stride 2 on the spatial dims, 1 on the 16 channels
    innermost), its weights [C/16, 16] per tap, and its result is unpacked."""
    torch.manual_seed(0)
    module = tgc.compile(NETS["depthwise_blocked"]().eval(), torch.randn(1, 32, 6, 6), grouped_conv="taps")
    [op] = [op for op in parallel_generics(module) if multiplies(op)]
    assert ir.RankedTensorType(op.results[0].type).shape == [1, 2, 3, 3, 16]
    assert [use.owner.name for use in op.results[0].uses] == ["linalg.unpack"]
    views = [v.owner for v in op.operands if ir.RankedTensorType(v.type).shape == [1, 2, 3, 3, 16]
             and getattr(v.owner, "name", None) == "tensor.extract_slice"]
    assert len(views) == 9, str(op)
    for view in views:
        assert view.operands[0].owner.name == "linalg.pack", str(view)
        assert list(ir.DenseI64ArrayAttr(view.attributes["static_strides"])) == [1, 1, 2, 2, 1], str(view)
    weights = [v for v in op.operands if ir.RankedTensorType(v.type).shape == [2, 16]]
    assert len(weights) == 9, str(op)
