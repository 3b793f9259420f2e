"""The benchmark shape suite: loading, modules, FLOPs.

The suite ships inside the package (`torch_grouped_conv/bench/shapes.json`,
`DEFAULT_SHAPES`), so `torch-grouped-conv bench` works from `pip install`. It
is a byte-identical copy of the project's `../shared/bench/shapes.json`
(tests/unit/test_bench_shapes.py checks that whenever the shared file is present).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

SETS = ("core", "extra", "all")
DEFAULT_SHAPES = Path(__file__).resolve().parent / "shapes.json"
# (transposed, spatial rank) -> the torch.nn class; its size arguments take a tuple of that rank
CONV_CLASSES: dict[tuple[bool, int], Callable[..., torch.nn.Module]] = {
    (False, 1): torch.nn.Conv1d, (False, 2): torch.nn.Conv2d, (False, 3): torch.nn.Conv3d,
    (True, 1): torch.nn.ConvTranspose1d, (True, 2): torch.nn.ConvTranspose2d, (True, 3): torch.nn.ConvTranspose3d,
}


@dataclass(frozen=True)
class Shape:
    """One torch.nn.ConvNd call. Layout: input [N, C, *spatial]."""

    name: str
    input: tuple[int, ...]
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    transposed: bool = False
    output_padding: tuple[int, ...] | None = None
    source: str = ""

    @property
    def rank(self) -> int:
        return len(self.input) - 2

    def make_module(self) -> torch.nn.Module:
        torch.manual_seed(0)
        extra = {"output_padding": self.output_padding or (0,) * self.rank} if self.transposed else {}
        conv = CONV_CLASSES[(self.transposed, self.rank)]
        return conv(self.input[1], self.out_channels, self.kernel, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, groups=self.groups, **extra).eval()

    def make_input(self) -> torch.Tensor:
        torch.manual_seed(1)
        return torch.randn(self.input)

    def flops(self, output_shape: tuple[int, ...]) -> int:
        """2 * (multiply-adds): every output element of a (non-transposed) conv
        sums C/G * prod(kernel) products; for transposed convs every input
        element scatters into F/G * prod(kernel) outputs."""
        macs_per = 1
        for k in self.kernel:
            macs_per *= k
        count = 1
        if self.transposed:
            for d in self.input:
                count *= d
            return 2 * count * (self.out_channels // self.groups) * macs_per
        for d in output_shape:
            count *= d
        return 2 * count * (self.input[1] // self.groups) * macs_per


def load_shapes(path: Path, which: str) -> list[Shape]:
    data = json.loads(Path(path).read_text())
    names = ("core", "extra") if which == "all" else (which,)
    shapes = []
    for set_name in names:
        for entry in data[set_name]:
            shapes.append(Shape(
                name=entry["name"], input=tuple(entry["input"]), out_channels=entry["out_channels"],
                kernel=tuple(entry["kernel"]), stride=tuple(entry["stride"]), padding=tuple(entry["padding"]),
                dilation=tuple(entry["dilation"]), groups=entry["groups"],
                transposed=bool(entry.get("transposed", False)),
                output_padding=tuple(entry["output_padding"]) if "output_padding" in entry else None,
                source=entry.get("source", ""),
            ))
    return shapes
