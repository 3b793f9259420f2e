"""What the benchmark times: one `Workload` per table row, in sections.

Sections (in the order of the report):
- `networks`: whole torchvision image networks at 1x3x224x224 (weights=None,
  seeded, eval): PyTorch, the peers (ORT, Inductor: `--peers`), upstream,
  auto (+ `--model-variants`), and auto's time breakdown (breakdown.py); the
  model's FLOPs (model_flops) for auto's fraction of the ceiling;
- `media`: the r3d_18 video network (1x3x16x112x112) and a wav2vec2-style
  positional conv block (grouped Conv1d 768 channels, k=128, groups=16, GELU,
  residual; 1x768x250), same variants;
- `core`, `extra`: single convolutions from the shape suite (shapes.json):
  PyTorch, the peers, upstream and the plugin strategies (`--strategies`);
- `dtype`: f16 / bf16 versions of four core shapes: PyTorch in that dtype,
  auto in that dtype, auto in f32 (ORT's CPU provider has no f16/bf16 conv);
- `dynamic`: a conv compiled once with a dynamic batch dim, called at batch 1
  and 8, and one compiled with dynamic batch and spatial dims, called at its
  size and at half of it; each against the same strategy compiled static
  for that call.

A workload builds its variants lazily (`build()`), so compiled modules of
one row are freed before the next row compiles.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torch_grouped_conv import models
from torch_grouped_conv.bench import knobs
from torch_grouped_conv.bench.shapes import Shape
from torch_grouped_conv.bench.variants import (
    AUTO,
    INDUCTOR,
    ORT,
    Variant,
    compile_iree,
    inductor_variant,
    iree_variant,
    ort_variant,
    pytorch_variant,
    timed_build,
)
from torch_grouped_conv.models import SEED
from torch_grouped_conv.rewrite.tuning import tuned_for
from torch_grouped_conv.verify import RELATIVE_TOLERANCE

SECTIONS = ("networks", "media", "core", "extra", "dtype", "dynamic")
SECTION_TITLES = {
    "networks": "Whole networks",
    "media": "Video and audio models",
    "core": "Core shapes",
    "extra": "Extra shapes",
    "dtype": "f16 / bf16",
    "dynamic": "Dynamic batch and spatial dims",
}
IMAGE_NETS = ("resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
              "regnet_y_400mf", "shufflenet_v2_x1_0", "resnet50")
MEDIA_MODELS = ("r3d_18", "wav2vec2_block")
DTYPE_SHAPES = ("resnext50_s1_128g32_56", "regnety400_s1_104g13_28", "mobilenetv2_dw_144_56", "convnext_dw7_384_14")
# taps (grouped, depthwise) and the grouped GEMM (im2col), each compiled with a dynamic batch
DYNAMIC_SHAPES = ("resnext50_s1_256g32_28", "mobilenetv2_dw_144_56", "resnext50_s1_512g32_14")
DYNAMIC_BATCHES = (1, 8)
# taps (depthwise, stride 1 and 2) and the grouped GEMM, compiled with dynamic batch and spatial
# dims, called at the shape's size and at half of it
DYNAMIC_SPATIAL_SHAPES = ("mobilenetv2_dw_144_56", "mobilenetv2_dw_s2_96_112", "resnext50_s1_512g32_14")
DYNAMIC_SPATIAL_SCALES = (1, 2)
DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}
# max |actual - expected| / max |expected| vs PyTorch, as `verify` (torch_grouped_conv/verify.py)
TOLERANCE = {dtype: RELATIVE_TOLERANCE[dtype] for dtype in (torch.float32, torch.float16, torch.bfloat16)}
AUTO_F32 = "auto-f32"
AUTO_DYNAMIC = "auto-dynamic"


@dataclass
class Workload:
    name: str
    section: str
    inputs: list[torch.Tensor]
    build: Callable[[], list[Variant]]
    tolerance: float = RELATIVE_TOLERANCE[torch.float32]
    flops: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # variant -> why it could not be built


def _try(workload_errors: dict[str, str], name: str, make: Callable[[], Variant]) -> Variant | None:
    """Build one variant; a failure is recorded for its row, not fatal."""
    try:
        return timed_build(make)
    except Exception as e:  # noqa: BLE001 - reported in the results
        workload_errors[name] = f"{type(e).__name__}: {str(e).strip()[:400]}"
        return None


def _iree(name: str, model: nn.Module, example: Sequence[torch.Tensor], strategy: str | None,
          flags: list[str], dynamic_shapes: Any = None) -> Variant:
    start = time.perf_counter()
    compile_flags, runtime_flags = knobs.split_runtime(flags)
    strategy, _, tuning_name = (strategy or "").partition(":")  # `auto:TUNING` (run.known_variant)
    with tuned_for(tuning_name) if tuning_name else contextlib.nullcontext():
        build = compile_iree(model, example, strategy or None, compile_flags, dynamic_shapes)
    variant = iree_variant(name, build, time.perf_counter() - start, runtime_flags)
    variant.info["build"] = build  # the breakdown needs the module; dropped from the JSON
    return variant


# label, strategy (None: upstream), IREE flags (iree-compile's, and knobs.py's runtime flags)
VariantSpec = tuple[str, str | None, list[str]]


PEERS = (ORT, INDUCTOR)  # the engines timed beside PyTorch eager on network and shape rows (`--peers`)


def standard_variants(model: nn.Module, example: list[torch.Tensor], specs: Sequence[VariantSpec],
                      errors: dict[str, str], peers: Sequence[str] = PEERS) -> list[Variant]:
    """PyTorch, the peers asked for (ORT, inductor), then one IREE variant per spec."""
    built: list[Variant | None] = [pytorch_variant(model)]
    if ORT in peers:
        built.append(_try(errors, ORT, lambda: ort_variant(model, example)))
    if INDUCTOR in peers:
        built.append(inductor_variant(model))
    for name, strategy, flags in specs:
        built.append(_try(errors, name, functools.partial(_iree, name, model, example, strategy, flags)))
    return [v for v in built if v is not None]


class PositionalConvBlock(nn.Module):
    """wav2vec2's positional convolution embedding: a grouped Conv1d over time
    with an even kernel (padding k/2, the extra last frame dropped), GELU and a
    residual (wav2vec2-base size by default; tests/support/models.py builds it at
    test size). Input [N, C, T]."""

    def __init__(self, channels: int = 768, kernel: int = 128, groups: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)[:, :, :-1]
        return x + nn.functional.gelu(y)


def model_input_shape(name: str, spatial: int | None) -> tuple[int, ...]:
    if name == "wav2vec2_block":
        return (1, 768, 250)
    if name == "r3d_18":
        return (1, 3, 16, spatial or 112, spatial or 112)
    return (1, 3, spatial or 224, spatial or 224)


def build_model(name: str) -> nn.Module:
    """Seeded, eval mode; torchvision models with weights=None, as the CLI's MODEL."""
    if name == "wav2vec2_block":
        torch.manual_seed(SEED)
        return PositionalConvBlock().eval()
    return models.build_model(f"torchvision:{name}")


def model_workload(name: str, specs: Sequence[VariantSpec], spatial: int | None,
                   peers: Sequence[str] = PEERS) -> Workload:
    shape = model_input_shape(name, spatial)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    section = "media" if name in MEDIA_MODELS else "networks"
    workload = Workload(name, section, [x], lambda: [], meta={"input": list(shape)})

    def build() -> list[Variant]:
        model = build_model(name)
        workload.flops = model_flops(model, [x])
        return standard_variants(model, [x], specs, workload.errors, peers)

    workload.build = build
    return workload


def model_flops(model: nn.Module, inputs: Sequence[torch.Tensor]) -> int:
    """The FLOPs of one eager call as torch.utils.flop_counter counts them: 2 x the
    multiply-adds of its convolutions and matmuls (Linear, attention), nothing else."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(*inputs)
    return int(counter.get_total_flops())


def shape_workload(shape: Shape, section: str, specs: Sequence[VariantSpec],
                   peers: Sequence[str] = PEERS) -> Workload:
    model, x = shape.make_module(), shape.make_input()
    with torch.inference_mode():
        out_shape = tuple(model(x).shape)
    workload = Workload(shape.name, section, [x], lambda: [], flops=shape.flops(out_shape),
                        meta={"input": list(shape.input), "groups": shape.groups, "kernel": list(shape.kernel),
                              "source": shape.source})
    workload.build = lambda: standard_variants(model, [x], specs, workload.errors, peers)
    return workload


def dtype_workload(shape: Shape, dtype_name: str, flags: list[str]) -> Workload:
    dtype = DTYPES[dtype_name]
    model32, x32 = shape.make_module(), shape.make_input()
    model, x = shape.make_module().to(dtype), x32.to(dtype)
    with torch.inference_mode():
        out_shape = tuple(model32(x32).shape)
    workload = Workload(f"{shape.name}_{dtype_name}", "dtype", [x], lambda: [], tolerance=TOLERANCE[dtype],
                        flops=shape.flops(out_shape), meta={"shape": shape.name, "dtype": dtype_name})

    def build() -> list[Variant]:
        built = [pytorch_variant(model),
                 _try(workload.errors, AUTO, lambda: _iree(AUTO, model, [x], AUTO, flags)),
                 _try(workload.errors, AUTO_F32, lambda: _f32_variant(model32, x32, flags))]
        return [v for v in built if v is not None]

    workload.build = build
    return workload


def _f32_variant(model32: nn.Module, x32: torch.Tensor, flags: list[str]) -> Variant:
    """auto in f32 on the f32 input: its instance ignores the row's (f16/bf16) inputs.
    Its output is checked against PyTorch's in the low dtype, at that dtype's tolerance."""
    inner = _iree(AUTO_F32, model32, [x32], AUTO, flags)
    instantiate = inner.instantiate
    inner.instantiate = lambda threads, _inputs: instantiate(threads, [x32])
    return inner


def dynamic_workloads(shape: Shape, flags: list[str], batches: Sequence[int] = DYNAMIC_BATCHES) -> list[Workload]:
    """One row per batch: PyTorch, auto compiled static at that batch, and auto
    compiled once with a dynamic batch dim (shared by the rows)."""
    base = shape.make_input()
    calls = [(f"{shape.name}_b{n}", base.expand(n, *base.shape[1:]).contiguous()
              + 0.01 * torch.arange(n).view(n, 1, *(1,) * (base.dim() - 2)), {"batch": n}) for n in batches]
    # batch 1 would be specialized by torch.export
    return _dynamic_rows(shape, flags, base.expand(2, *base.shape[1:]).contiguous(), [0], calls)


def dynamic_spatial_workloads(shape: Shape, flags: list[str], scales: Sequence[int] = DYNAMIC_SPATIAL_SCALES
                              ) -> list[Workload]:
    """One row per spatial size (the shape's, then 1/scale of it): PyTorch, auto
    compiled static at that size, and auto compiled once with the batch and
    every spatial dim dynamic (shared by the rows)."""
    base = shape.make_input()
    calls = []
    for scale in scales:
        spatial = [size // scale for size in base.shape[2:]]
        x = base[(slice(None), slice(None), *(slice(0, size) for size in spatial))].contiguous()
        calls.append((f"{shape.name}_s{'x'.join(map(str, spatial))}", x, {"spatial": spatial}))
    example = base.expand(2, *base.shape[1:]).contiguous()
    return _dynamic_rows(shape, flags, example, [0, *range(2, base.dim())], calls)


def _dynamic_rows(shape: Shape, flags: list[str], example: torch.Tensor, dims: list[int],
                  calls: list[tuple[str, torch.Tensor, dict[str, Any]]]) -> list[Workload]:
    model = shape.make_module()
    shared: dict[str, Variant | None] = {}

    def dynamic_variant(errors: dict[str, str]) -> Variant | None:
        if AUTO_DYNAMIC not in shared:
            dynamic = {axis: torch.export.Dim(f"d{axis}", min=1 if axis == 0 else 8, max=512) for axis in dims}
            shared[AUTO_DYNAMIC] = _try(errors, AUTO_DYNAMIC, lambda: _iree(
                AUTO_DYNAMIC, model, [example], AUTO, flags, dynamic_shapes=(dynamic,)))
        elif shared[AUTO_DYNAMIC] is None:
            errors[AUTO_DYNAMIC] = "failed to build (see the first row of this shape)"
        return shared[AUTO_DYNAMIC]

    rows = []
    for name, x, meta in calls:
        workload = Workload(name, "dynamic", [x], lambda: [], meta={"shape": shape.name, **meta})

        def build(w: Workload = workload, x: torch.Tensor = x) -> list[Variant]:
            built = [pytorch_variant(model), _try(w.errors, AUTO, lambda: _iree(AUTO, model, [x], AUTO, flags)),
                     dynamic_variant(w.errors)]
            return [v for v in built if v is not None]

        workload.build = build
        rows.append(workload)
    return rows

