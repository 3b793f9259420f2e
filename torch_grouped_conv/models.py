"""Resolve the CLI's MODEL argument and input shapes; the built-in demo network.

MODEL is `torchvision:NAME` (built with weights=None: nothing is downloaded)
or `path/to/file.py:factory` (a function returning a torch.nn.Module).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
from torch import nn

from torch_grouped_conv.errors import InputError

SEED = 0  # every model is built after torch.manual_seed(SEED): reproducible random weights


class DemoNet(nn.Module):
    """A small network mixing all three cases: groups == 1, depthwise, grouped
    (with stride, dilation, bias on and off), in the style of MobileNet and
    ResNeXt blocks. Input [N, 3, H, W]."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)  # conv
        self.norm = nn.BatchNorm2d(16)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)  # depthwise
        self.grouped = nn.Conv2d(16, 32, 3, padding=2, dilation=2, groups=4)  # grouped
        self.reduce = nn.Conv2d(32, 24, 1)  # conv (pointwise)
        self.grouped_strided = nn.Conv2d(24, 48, (3, 5), stride=2, padding=(1, 2), groups=3, bias=False)
        self.head = nn.Conv2d(48, 10, 1)  # conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.stem(x)))
        x = torch.relu(self.depthwise(x))
        x = torch.relu(self.grouped(x))
        x = self.reduce(x)
        x = torch.relu(self.grouped_strided(x))
        return self.head(x).mean(dim=(2, 3))


DEMO_INPUT_SHAPE = (1, 3, 64, 64)


IR_SUFFIXES = (".mlir", ".mlirbc")


def check_model_spec(spec: str) -> None:
    """InputError, before anything else is asked of the user, for a MODEL that
    is not a PyTorch model spec: torch IR (`lower` takes that), or no `:`."""
    if Path(spec).suffix.lower() in IR_SUFFIXES:
        raise InputError(f"{spec} is MLIR, not a model; apply the plugin to torch IR with "
                         f"`torch-grouped-conv lower {spec}`")
    source, sep, name = spec.partition(":")
    if not sep or not name:
        raise InputError(f"model spec {spec!r} is not torchvision:NAME or path/to/file.py:factory, nor a .onnx file")


def build_model(spec: str) -> nn.Module:
    """Build the model named by `spec`, seeded and in eval mode."""
    check_model_spec(spec)
    source, _, name = spec.partition(":")
    torch.manual_seed(SEED)
    model = _torchvision_model(name) if source == "torchvision" else _factory_model(Path(source), name)
    if not isinstance(model, nn.Module):
        raise InputError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def _torchvision_model(name: str) -> nn.Module:
    import torchvision

    available = torchvision.models.list_models()
    if name not in available:
        raise InputError(f"unknown torchvision model {name!r}; see torchvision.models.list_models() (e.g. resnext50_32x4d)")
    return torchvision.models.get_model(name, weights=None)


def _factory_model(path: Path, factory: str) -> nn.Module:
    if path.suffix != ".py" or not path.is_file():
        raise InputError(f"model file {str(path)!r} does not exist or is not a .py file")
    module_spec = importlib.util.spec_from_file_location(f"_tgc_user_model_{path.stem}", path)
    assert module_spec is not None and module_spec.loader is not None
    user_module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(user_module)
    except Exception as e:
        raise InputError(f"could not import {path}: {type(e).__name__}: {e}") from None
    fn = getattr(user_module, factory, None)
    if not callable(fn):
        raise InputError(f"{path} has no function {factory!r}")
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the user's factory failing is bad input, reported in one line
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise InputError(f"{path}:{factory}() raised {type(e).__name__}: {lines[0] if lines else '(no message)'}") from None


def parse_input_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' -> (1, 3, 224, 224); every size a positive int."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"input shape {text!r} is malformed; write positive sizes separated by commas, e.g. 1,3,224,224")
    return shape


def example_input(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A seeded random input of `shape` and `dtype`; InputError (how much) when
    the memory it needs is not available."""
    check_memory(shape, dtype)
    generator = torch.Generator().manual_seed(SEED + 1)
    return torch.randn(shape, generator=generator).to(dtype)


def shape_input(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An input of `shape` and `dtype` with no data (a fake tensor): all that
    torch.export needs to trace a model, whatever the size."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    with FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True):
        return torch.empty(shape, dtype=dtype)


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> None:
    """InputError unless an input of `shape` (made in f32, then cast) fits in the memory available."""
    cast = 0 if dtype == torch.float32 else torch.empty((), dtype=dtype).element_size()
    needed = math.prod(shape) * (4 + cast)
    available = available_memory()
    if available is not None and needed > available:
        raise InputError(f"input shape {list(shape)} needs {needed / 2**30:.1f} GiB for its data alone, "
                         f"{available / 2**30:.1f} GiB available; use a smaller --input-shape")
