"""Build the timed variants of one workload and time them interleaved.

Every variant is a zero-argument callable doing one inference on an input
already placed where the variant reads it (a torch CPU tensor; an IREE
local-task device array, which is host memory). IREE's function call is
synchronous (the `main` wrapper waits on its fences), so the call time is
the compute time plus IREE's dispatch overhead; PyTorch's likewise includes
its operator dispatch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from iree import runtime as iree_rt
from torch_mlir import ir

import torch_grouped_conv as tgc
from torch_grouped_conv.runners.iree import compile_to_vmfb

PYTORCH = "pytorch"
UPSTREAM = "upstream"  # grouped_conv=None: torch-mlir's own lowering


@dataclass
class Variant:
    name: str
    call: Callable[[], object]
    compile_s: float = 0.0
    strategies_used: dict[str, int] = field(default_factory=dict)
    check: Callable[[], np.ndarray] | None = None


class IreeBenchProgram:
    """One compiled module with its input uploaded once."""

    def __init__(self, module: ir.Module, flags: list[str], inputs: list[np.ndarray], driver: str):
        self.vmfb, _ = compile_to_vmfb(module, flags)
        config = iree_rt.Config(driver)
        context = iree_rt.SystemContext(config=config)
        vm_module = iree_rt.VmModule.copy_buffer(context.instance, self.vmfb)
        context.add_vm_module(vm_module)
        self._context = context  # keeps the function's module alive
        self._function = context.modules[vm_module.name]["main"]
        self._inputs = [iree_rt.asdevicearray(config.device, np.ascontiguousarray(a)) for a in inputs]

    def __call__(self) -> object:
        return self._function(*self._inputs)

    def output(self) -> np.ndarray:
        result = self()
        first = result[0] if isinstance(result, (tuple, list)) else result
        return np.asarray(first.to_host())


def pytorch_variant(model: torch.nn.Module, x: torch.Tensor) -> Variant:
    def call() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return Variant(PYTORCH, call, check=lambda: call().numpy())


def iree_variant(name: str, model: torch.nn.Module, x: torch.Tensor, strategy: str | None,
                 flags: list[str], driver: str) -> Variant:
    """Compile `model` with `grouped_conv=strategy` (None = upstream) and IREE `flags`."""
    start = time.perf_counter()
    module = tgc.compile(model, x, grouped_conv=strategy)
    report = tgc.last_report()
    program = IreeBenchProgram(module, flags, [x.numpy()], driver)
    used: dict[str, int] = {}
    for decision in (report.lowered if report is not None else []):
        key = f"{decision.strategy}/{decision.case}"
        used[key] = used.get(key, 0) + 1
    return Variant(name, program, time.perf_counter() - start, used, check=program.output)


def time_interleaved(variants: list[Variant], repeats: int, warmup: int,
                     tick: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call for each variant. Round r calls every variant once, in
    an order rotated by r, so drift and neighbours' load hit all alike."""
    for v in variants:
        for _ in range(warmup):
            v.call()
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(repeats):
        for i in range(len(variants)):
            v = variants[(i + r) % len(variants)]
            start = time.perf_counter()
            v.call()
            times[v.name].append(time.perf_counter() - start)
        if tick is not None:
            tick()
    return times


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def geomean(values: list[float]) -> float:
    values = [v for v in values if v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")
