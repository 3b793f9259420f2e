"""Per-convolution records on a real network: `compile --json` names every conv
by its PyTorch module path and counts its FLOPs (checked against
`model.named_modules()` and a hand formula from each module's attributes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.support.cli import run_cli
from torch_grouped_conv.models import build_model, example_input

SHAPE = (1, 3, 64, 64)


def conv_outputs(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Size]:
    """Each Conv2d module's output shape in an eager run (forward hooks)."""
    shapes: dict[str, torch.Size] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, y, name=name: shapes.__setitem__(name, y.shape))
             for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return shapes


def test_mobilenet_v2_records_name_every_conv_by_module_path(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    records = tmp_path / "report.json"
    code, _, err = run_cli(capsys, "compile", "torchvision:mobilenet_v2", "--input-shape", ",".join(map(str, SHAPE)),
                           "--output-type", "torch", "-o", str(tmp_path / "m.mlir"), "--json", str(records))
    assert code == 0, err
    data = json.loads(records.read_text())
    assert (data["model"], data["input_shape"], data["dtype"]) == ("torchvision:mobilenet_v2", list(SHAPE), "f32")
    decisions = data["report"]["decisions"]

    model = build_model("torchvision:mobilenet_v2")
    convs = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert len(convs) == 52
    paths = [d["module_path"] for d in decisions]
    assert paths == list(convs)  # every conv, each once, in program order (e.g. features.1.conv.0.0)
    assert "features.1.conv.0.0" in paths and len(set(paths)) == 52

    outputs = conv_outputs(model, example_input(SHAPE))
    total = 0
    for d in decisions:
        m = convs[d["module_path"]]
        n, f, ho, wo = outputs[d["module_path"]]
        kh, kw = m.kernel_size
        flops = 2 * n * f * (m.in_channels // m.groups) * kh * kw * ho * wo
        total += flops
        assert d["flops"] == flops, d["module_path"]
        assert (d["input_shape"][1], d["weight_shape"], d["output_shape"]) == (
            m.in_channels, list(m.weight.shape), [n, f, ho, wo])
        assert d["groups"] == m.groups and d["dtype"] == "f32"
        assert d["case"] == ("depthwise" if m.groups == m.in_channels == m.out_channels > 1 else "conv")
        assert d["strategy"] in ("taps", "matmul", "im2col", "grouped") and d["why"].startswith("auto: ")
    assert data["report"]["total_flops"] == total
    assert data["report"]["counts"] == {"conv": 35, "depthwise": 17}
