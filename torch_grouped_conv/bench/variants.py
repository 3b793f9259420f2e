"""The timed variants of one workload: PyTorch eager, ONNX Runtime, and IREE
modules (torch-mlir's own lowering or a plugin strategy).

A `Variant` is built once per workload (export, compile) and then
instantiated per thread count: `instantiate(threads, inputs)` returns an
`Instance` whose `call()` does one inference on inputs already placed where
the variant reads them (torch CPU tensors; an ORT feed of numpy arrays; IREE
device arrays in host memory). IREE's call is synchronous (the `main`
wrapper waits on its fences) and returns device arrays without copying them
back; PyTorch's and ORT's calls include their own operator dispatch.

Inductor: `torch.compile(model)` with `torch._inductor.config.freezing`
(weights folded as constants), called under `torch.inference_mode()`.
Inductor's C++ kernels fix their OpenMP thread count when they are generated
(torch.get_num_threads() then), so it compiles once per thread count, in
`instantiate` (after a `torch._dynamo.reset()`: the model's code object
would otherwise keep serving the first thread count's graph); each compile's
seconds are kept in the variant's info (`compile_s` per thread count).

Threads: the caller sets torch.set_num_threads(threads) and IREE's local-task
topology (runners/iree_flags.py) before instantiating; ORT gets
intra_op_num_threads = threads, inter_op_num_threads = 1, spinning off (so
its pool does not keep the cores busy while the next variant runs), and all
graph optimizations.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from iree import runtime as iree_rt

from torch_grouped_conv import api
from torch_grouped_conv.bench import knobs
from torch_grouped_conv.bench.breakdown import conv_frames
from torch_grouped_conv.runners.blas import before_driver
from torch_grouped_conv.runners.common import as_numpy, module_bytecode
from torch_grouped_conv.runners.iree import (
    Entry,
    compile_for,
    runtime_config,
    wants_blas_gemms,
    wants_external_transients,
)
from torch_grouped_conv.runners.iree_flags import RUNTIME_ALLOCATORS, runtime_driver
from torch_grouped_conv.runners.target import HOST
from torch_grouped_conv.runners.transients import upload

PYTORCH = "pytorch"
ORT = "ort"
INDUCTOR = "inductor"  # torch.compile, inductor with freezing
UPSTREAM = "upstream"  # grouped_conv=None: torch-mlir's own lowering
AUTO = "auto"


@dataclass
class Instance:
    """One variant ready to run at one thread count on one set of inputs."""

    call: Callable[[], object]
    output: Callable[[], np.ndarray]  # one call, result as a float64 numpy array


@dataclass
class Variant:
    name: str
    instantiate: Callable[[int, Sequence[torch.Tensor]], Instance]
    build_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)  # strategies used, exporter, compile warnings


def to_float64(value: object) -> np.ndarray:
    """A result (torch tensor, IREE device array, numpy array) as float64 numpy."""
    if hasattr(value, "to_host"):
        value = value.to_host()  # an IREE device array
    return np.asarray(as_numpy(value)).astype(np.float64)


def first(result: object) -> object:
    return result[0] if isinstance(result, (tuple, list)) else result


def pytorch_variant(model: torch.nn.Module, name: str = PYTORCH) -> Variant:
    def instantiate(threads: int, inputs: Sequence[torch.Tensor]) -> Instance:
        def call() -> object:
            with torch.inference_mode():
                return model(*inputs)

        return Instance(call, lambda: to_float64(first(call())))

    return Variant(name, instantiate)


def ort_variant(model: torch.nn.Module, example: Sequence[torch.Tensor]) -> Variant:
    """Export with torch.onnx (the dynamo exporter; the TorchScript one if that
    fails) and run on ONNX Runtime's CPU execution provider."""
    import onnxruntime as ort  # the `bench` extra

    start = time.perf_counter()
    onnx_bytes, exporter = export_onnx(model, example)
    build_s = time.perf_counter() - start

    def instantiate(threads: int, inputs: Sequence[torch.Tensor]) -> Instance:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        feed = {n: np.ascontiguousarray(t.numpy()) for n, t in zip(names, inputs, strict=False)}

        def call() -> object:
            return session.run(None, feed)

        return Instance(call, lambda: to_float64(first(call())))

    return Variant(ORT, instantiate, build_s, {"exporter": exporter, "onnxruntime": ort.__version__})


def inductor_variant(model: torch.nn.Module) -> Variant:
    """torch.compile (inductor, freezing on), compiled at each thread count by its
    first call; that call is untimed (the caller's checked first call follows it)."""
    variant = Variant(INDUCTOR, lambda threads, inputs: _inductor_instance(model, threads, inputs, variant))
    variant.info["compile_s"] = {}
    variant.info["torch"] = torch.__version__
    return variant


def _inductor_instance(model: torch.nn.Module, threads: int, inputs: Sequence[torch.Tensor],
                       variant: Variant) -> Instance:
    import torch._dynamo
    import torch._inductor.config

    torch._dynamo.reset()
    compiled = torch.compile(model)
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.inference_mode(), torch._inductor.config.patch(freezing=True):
        warnings.simplefilter("ignore")
        compiled(*inputs)
    seconds = time.perf_counter() - start
    variant.info["compile_s"][str(threads)] = round(seconds, 2)
    variant.build_s += seconds

    def call() -> object:
        with torch.inference_mode():
            return compiled(*inputs)

    return Instance(call, lambda: to_float64(first(call())))


def export_onnx(model: torch.nn.Module, example: Sequence[torch.Tensor]) -> tuple[bytes, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(model, tuple(example), dynamo=True, optimize=True, verbose=False)
            if program is None:  # only the TorchScript exporter returns None
                raise RuntimeError("torch.onnx.export returned no ONNXProgram")
            return program.model_proto.SerializeToString(), "dynamo"
        except Exception:  # noqa: BLE001 - some graphs only export with the TorchScript exporter
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.onnx"
                torch.onnx.export(model, tuple(example), path, dynamo=False, opset_version=17)
                return path.read_bytes(), "torchscript"


@dataclass
class IreeBuild:
    """A compiled module and what it took to get there."""

    vmfb: bytes
    linalg_bytecode: bytes  # the linalg module (no runner hints)
    flags: list[str]
    strategies_used: dict[str, int]
    warnings: str
    conv_frames: set[str]  # innermost locations of the module's convolutions (breakdown.py)
    # iree-compile's exact input and full flags (the runner's data-tiling hints included), so that the
    # dispatch breakdown (breakdown.py) sees the dispatches the profiled module has
    compile_source: bytes
    compile_flags: tuple[str, ...]
    transient_bytes: int | None = None  # @main's transient storage, as the runner passes it (runners/transients.py)
    blas_gemms: int = 0  # GEMMs calling MKL (runners/blas.py): iree-benchmark-module needs `blas.runtime_flags()`


def compile_iree(model: torch.nn.Module, example: Sequence[torch.Tensor], strategy: str | None,
                 flags: list[str], dynamic_shapes: Any = None) -> IreeBuild:
    """The stages of tgc.compile, with the convolutions' locations read in between."""
    module = api.import_to_torch(api.export_program(model, *example, dynamic_shapes=dynamic_shapes))
    frames = conv_frames(module)
    report = api.apply_strategy(module, strategy)
    api.lower_to_linalg(module)
    used: dict[str, int] = {}
    for decision in report.lowered:
        key = f"{decision.strategy}/{decision.case}"
        used[key] = used.get(key, 0) + 1
    done = compile_for(module, flags, transients=wants_external_transients(module),  # as the `iree` runner does
                       keep_source=True, blas_gemms=wants_blas_gemms(HOST))
    assert done.source is not None  # keep_source
    return IreeBuild(done.vmfb, module_bytecode(module), list(flags), used, done.warnings, frames,
                     done.source, done.flags, done.transient_bytes, done.blas_gemms)


def iree_variant(name: str, build: IreeBuild, build_s: float, runtime_flags: Sequence[str] = ()) -> Variant:
    """The module on the run's device for `threads`, or, with runtime flags (a
    knob, knobs.py) and local-task, on a device of its own driver."""

    def instantiate(threads: int, inputs: Sequence[torch.Tensor]) -> Instance:
        driver = runtime_driver(threads)
        config = knob_config(driver, runtime_flags) if runtime_flags and driver == "local-task" \
            else runtime_config(driver)
        entry = Entry(build.vmfb, config)  # called as the `iree` runner calls it, transient storage included
        args = [upload(config.device, as_numpy(t)) for t in inputs]

        def call() -> object:
            return entry(*args)

        return Instance(call, lambda: to_float64(first(call())))

    info: dict[str, Any] = {"strategies_used": build.strategies_used, "iree_flags": build.flags}
    if runtime_flags:
        info["iree_runtime_flags"] = list(runtime_flags)
    if build.warnings:
        info["iree_warnings"] = build.warnings[:2000]
    return Variant(name, instantiate, build_s, info)


_KNOB_DEVICES: dict[tuple[str, tuple[str, ...]], iree_rt.HalDevice] = {}


def knob_config(driver: str, runtime_flags: Sequence[str]) -> iree_rt.Config:
    """A device on a fresh `driver` created while `runtime_flags` were in force
    (local-task reads its executor flags when the driver is created), the flags
    then set back to their defaults; one per (driver, flags) per process."""
    key = (driver, tuple(runtime_flags))
    if key not in _KNOB_DEVICES:
        before_driver()
        iree_rt.flags.parse_flags(*runtime_flags)
        try:
            hal_driver = iree_rt._binding.create_hal_driver(driver)
        finally:
            iree_rt.flags.parse_flags(*knobs.runtime_defaults(runtime_flags))
        _KNOB_DEVICES[key] = hal_driver.create_device_by_uri(driver, allocators=list(RUNTIME_ALLOCATORS))
    return iree_rt.Config(device=_KNOB_DEVICES[key])


def timed_build(build: Callable[[], Variant]) -> Variant:
    start = time.perf_counter()
    variant = build()
    if not variant.build_s:
        variant.build_s = time.perf_counter() - start
    return variant
