"""Real networks for the end-to-end model tests and the docs/models.md table.

Each model is built seeded with weights=None, in eval mode. Expected rewrite
counts are computed from the PyTorch module list itself (what each Conv layer
is), independently of the plugin's own classifier.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from torch_grouped_conv.bench.workloads import PositionalConvBlock
from torch_grouped_conv.models import SEED, build_model


def grouped_then_pointwise(c_in: int, kernel: int, groups: int) -> tuple[nn.Module, torch.Tensor]:
    """A grouped conv (`auto`: im2col for C/G*k > 72; kept out of data tiling
    when its K = C/G*k < 1024) into a 1x1 conv (`auto`: matmul, data-tiled)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(c_in, 32, kernel, padding=kernel // 2, groups=groups),
                          nn.Conv1d(32, 16, 1)).eval()
    return model, torch.randn(1, c_in, 40)


def positional_conv_block() -> nn.Module:
    """The benchmark's wav2vec2-style block at test size (64 channels, k=16, groups 4)."""
    torch.manual_seed(0)
    return PositionalConvBlock(channels=64, kernel=16, groups=4).eval()


@dataclass(frozen=True)
class ModelCase:
    spec: str  # a CLI MODEL spec
    input_shape: tuple[int, ...]  # small, for the tests
    full_shape: tuple[int, ...]  # the model's usual size, for docs/models.md
    slow: bool = False  # marked slow: run by `make test`, left out by `make test-fast`

    @property
    def name(self) -> str:
        return self.spec.split(":")[-1]

    def build(self) -> nn.Module:
        if self.spec == "e2e:positional_conv_block":
            return positional_conv_block()
        return build_model(self.spec)

    def example_input(self, full: bool = False) -> torch.Tensor:
        generator = torch.Generator().manual_seed(1)
        return torch.randn(self.full_shape if full else self.input_shape, generator=generator)


IMAGE_224 = (1, 3, 224, 224)

# Small inputs keep `make test` within budget; docs/models.md uses full_shape.
# r3d_18: every stage halves the depth; IREE 3.13 miscompiles a 3D conv whose
# output depth is 1 (upstream's lowering too, see docs/models.md), so the
# test input keeps depth 16.
MODEL_CASES = [
    ModelCase("torchvision:resnext50_32x4d", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:mobilenet_v2", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:mobilenet_v3_small", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:shufflenet_v2_x1_0", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:efficientnet_b0", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:regnet_y_400mf", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:convnext_tiny", (1, 3, 64, 64), IMAGE_224),
    ModelCase("torchvision:r3d_18", (1, 3, 16, 32, 32), (1, 3, 16, 112, 112)),
    ModelCase("e2e:positional_conv_block", (2, 64, 50), (1, 64, 400)),
]


def one_block_per_stage(name: str) -> nn.Module:
    """`resnext50_32x4d` or `mobilenet_v2` with one block per stage
    (mobilenet_v2: two at 24 channels, so one block has an identity residual):
    every convolution form of the full net (each stage's widths, strides and
    groups; ResNeXt's C/G = 4, 8, 16, 32), with a quarter to a half of its
    layers to compile. The per-strategy sweeps run on these; `auto` runs on the full nets."""
    import torchvision
    from torchvision.models.resnet import Bottleneck

    torch.manual_seed(SEED)
    if name == "resnext50_32x4d":
        model: nn.Module = torchvision.models.ResNet(Bottleneck, [1, 1, 1, 1], groups=32, width_per_group=4)
    elif name == "mobilenet_v2":
        # torchvision's setting with n = 1 per stage, but 2 at 24 channels (one identity residual block)
        stages = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2], [6, 64, 1, 2], [6, 96, 1, 1], [6, 160, 1, 2],
                  [6, 320, 1, 1]]
        model = torchvision.models.MobileNetV2(inverted_residual_setting=stages)
    else:
        raise ValueError(f"no one-block-per-stage form of {name}")
    return model.eval()


def conv_case(layer: nn.modules.conv._ConvNd) -> str:
    """What the plugin should report for this layer, from PyTorch's own fields."""
    if layer.groups == 1:
        return "conv"
    if layer.groups == layer.in_channels == layer.out_channels:
        return "depthwise"
    return "grouped"


def expected_counts(model: nn.Module) -> dict[str, int]:
    counts = Counter(conv_case(m) for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd))
    return dict(sorted(counts.items()))
