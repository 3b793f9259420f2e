"""Where an IREE module's time goes: convolution dispatches vs everything else.

Measurement: `iree-benchmark-module` (iree-base-runtime) runs `main` a fixed
number of times with HAL profiling `--device_profiling_mode=host-execution`,
which the local CPU drivers support in IREE 3.13 (`dispatch-events` is not
implemented there); `iree-profile dispatch --format=jsonl` then gives the
summed host execution time of every dispatch function. Per call:
conv dispatches, other dispatches, and the rest of the call's wall time
(runtime overhead, waits between dispatches). This is a separate run from the
steady-state timing, in a fresh process, and is reported beside it.

Attribution rule (dispatch names alone cannot tell: `taps` convs are
`..._elementwise_...` generics, and a BatchNorm is one too). Every op the
plugin (or torch-mlir) emits for a convolution carries the location of the
`torch.aten.convolution` it came from. We compile the same linalg module to
IREE's flow level with debug info, and a dispatch counts as **conv** when
its body holds an op whose location's innermost frame is the innermost frame
of some `torch.aten.convolution` in the module (for torchvision and
torch.nn models, the ConvNd forward line in torch/nn/modules/conv.py). So a
conv dispatch includes whatever IREE fused into it (bias, BatchNorm, ReLU
epilogues) and the pads and layout copies emitted for the conv; dispatches
holding only other ops (standalone elementwise, pooling, the classifier) are
**other**.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from iree.compiler.tools.binaries import find_tool
from torch_mlir import ir

from torch_grouped_conv.runners.iree_flags import RUNTIME_ALLOCATORS, runtime_driver, runtime_thread_flags

PROFILE_CALLS = 10
TOP_DISPATCHES = 12  # the costliest dispatches kept in the JSON (`top_dispatches`)
TOP_CONV_DISPATCHES = 5  # ... and the costliest conv dispatches, if not among them (efficiency.py)
# IREE's dispatches (flow.executable) and the runner's hand-written ones (stream.executable: runners/blas.py)
_EXECUTABLE = re.compile(r"^\s*(?:flow|stream)\.executable private @(\S+) \{", re.M)
_EXPORT = re.compile(r"(?:flow|stream)\.executable\.export public @(\S+)")


def innermost_frame(location: str) -> str:
    """`loc(callsite("a.py":3:0 at "b.py":9:0))` -> `"a.py":3:0` (the callee);
    `loc("a.py":3:0)` -> `"a.py":3:0`."""
    text = location.strip()
    text = text[4:-1] if text.startswith("loc(") and text.endswith(")") else text
    while text.startswith("callsite("):
        text = text[len("callsite("):]
    match = re.match(r'("[^"]*":\d+:\d+)', text)
    return match.group(1) if match else text


def conv_frames(torch_module: ir.Module) -> set[str]:
    """Innermost location frames of every torch.aten.convolution in a torch-backend module."""
    frames: set[str] = set()

    def visit(op: ir.Operation) -> None:
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    if inner.operation.name == "torch.aten.convolution":
                        frames.add(innermost_frame(str(inner.location)))
                    visit(inner.operation)

    visit(torch_module.operation)
    return frames


def split_executables(flow_text: str) -> dict[str, str]:
    """Export name of every dispatch function -> the text of its flow.executable
    (from its header to its closing brace at the module's indentation)."""
    bodies: dict[str, str] = {}
    for match in _EXECUTABLE.finditer(flow_text):
        indent = match.group(0)[:len(match.group(0)) - len(match.group(0).lstrip())].strip("\n")
        end = re.compile(rf"^{indent}}}", re.M).search(flow_text, match.end())
        body = flow_text[match.start():end.end() if end else len(flow_text)]
        for export in _EXPORT.findall(body):
            bodies[export] = body
    return bodies


def is_conv_dispatch(body: str, frames: set[str]) -> bool:
    """Whether a dispatch body holds an op whose innermost frame is a conv's:
    the frame opens a location (`loc(F)`, `loc(callsite(F at ...`, inside
    `fused[...]`), not a caller further out (`... at callsite(F at ...`)."""
    for frame in frames:
        escaped = re.escape(frame)
        if re.search(rf"(?<!at )callsite\({escaped} at|loc\({escaped}\)|[\[,] ?{escaped}[,\]]", body):
            return True
    return False


def conv_dispatches(compile_source: bytes, compile_flags: Sequence[str], frames: set[str]) -> dict[str, bool]:
    """Dispatch function name -> conv or not, from iree-compile --compile-to=flow
    on the profiled module's exact iree-compile input and flags (`IreeBuild`'s
    `compile_source` / `compile_flags`: with the runner's data-tiling hints, a
    compile without them tiles other GEMMs and names other dispatches)."""
    with tempfile.TemporaryDirectory(prefix="tgc_breakdown_") as tmp:
        source, output = Path(tmp, "input.mlirbc"), Path(tmp, "flow.mlir")
        source.write_bytes(compile_source)
        command = [find_tool("iree-compile"), str(source), "-o", str(output), *compile_flags,
                   "--compile-to=flow", "--mlir-print-debuginfo", "--mlir-print-local-scope",
                   "--mlir-elide-resource-strings-if-larger=16"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"iree-compile --compile-to=flow failed: {done.stderr.strip()[:400]}")
        bodies = split_executables(output.read_text())
    return {name: is_conv_dispatch(body, frames) for name, body in bodies.items()}


@dataclass(frozen=True)
class Breakdown:
    """Per-call milliseconds of one profiled run."""

    wall_ms: float
    conv_ms: float
    other_ms: float
    conv_dispatches: int  # distinct dispatch functions attributed to conv
    other_dispatches: int
    calls: int = PROFILE_CALLS
    # the costliest dispatches: (name, conv, ms per call, runs per call: a dispatch function serves
    # every op of its shape, e.g. resnet50's three 512-channel 3x3 convs at 7x7 run one function 3 times)
    top: tuple[tuple[str, bool, float, float], ...] = ()

    @property
    def rest_ms(self) -> float:
        return max(0.0, self.wall_ms - self.conv_ms - self.other_ms)

    def to_dict(self) -> dict[str, object]:
        return {"wall_ms": self.wall_ms, "conv_ms": self.conv_ms, "other_ms": self.other_ms,
                "rest_ms": self.rest_ms, "conv_dispatches": self.conv_dispatches,
                "other_dispatches": self.other_dispatches, "profiled_calls": self.calls,
                "top_dispatches": [{"name": n, "conv": c, "ms": ms, "runs": runs} for n, c, ms, runs in self.top]}


def profile(vmfb: bytes, inputs: list[np.ndarray], threads: int, kinds: dict[str, bool],
            calls: int = PROFILE_CALLS, transient_bytes: int | None = None,
            runtime_flags: Sequence[str] = ()) -> Breakdown:
    """Run `main` `calls` times under iree-benchmark-module with host-execution
    profiling; a module that takes transient storage (`transient_bytes`) gets
    one buffer of that size, as the runner passes it (runners/transients.py);
    `runtime_flags`: more of the tool's flags (the BLAS plugin, runners/blas.py)."""
    driver = runtime_driver(threads)
    with tempfile.TemporaryDirectory(prefix="tgc_profile_") as tmp:
        module, prof = Path(tmp, "module.vmfb"), Path(tmp, "run.ireeprof")
        module.write_bytes(vmfb)
        input_flags = []
        for i, array in enumerate(inputs):
            path = Path(tmp, f"input{i}.npy")
            np.save(path, np.ascontiguousarray(array))
            input_flags.append(f"--input=@{path}")
        if transient_bytes is not None:
            input_flags.append(f"--input=&{max(transient_bytes, 1)}xi8")  # a buffer the tool allocates once
        thread_flags = runtime_thread_flags(threads) if driver == "local-task" else []
        command = [_runtime_tool("iree-benchmark-module"), f"--module={module}", f"--device={driver}",
                   "--function=main", *input_flags, *thread_flags, *runtime_flags,
                   *(f"--device_allocator={a}" for a in RUNTIME_ALLOCATORS),
                   "--device_profiling_mode=host-execution", f"--device_profiling_output={prof}",
                   f"--benchmark_min_time={calls}x", "--benchmark_repetitions=1",
                   "--benchmark_format=json"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"iree-benchmark-module failed: {done.stderr.strip()[:400]}")
        wall_ms = _wall_ms(done.stdout)
        report = subprocess.run([_runtime_tool("iree-profile"), "dispatch", "--format=jsonl", str(prof)],
                                capture_output=True, text=True, check=True).stdout
    return summarize(report, kinds, wall_ms, calls)


def summarize(jsonl: str, kinds: dict[str, bool], wall_ms: float, calls: int = PROFILE_CALLS) -> Breakdown:
    """Sum `iree-profile dispatch --format=jsonl` groups into conv / other per call.
    A dispatch missing from `kinds` (not seen at flow level) counts as other."""
    conv_ns = other_ns = 0.0
    conv_n = other_n = 0
    each: list[tuple[str, bool, float, float]] = []
    for line in jsonl.splitlines():
        row = json.loads(line)
        if row.get("type") != "host_dispatch_group":
            continue
        conv = kinds.get(row["key"], False)
        each.append((row["key"], conv, row["total_ns"] / calls / 1e6, row.get("count", calls) / calls))
        if conv:
            conv_ns, conv_n = conv_ns + row["total_ns"], conv_n + 1
        else:
            other_ns, other_n = other_ns + row["total_ns"], other_n + 1
    ranked = sorted(each, key=lambda e: -e[2])
    top_conv = [e for e in ranked if e[1]][:TOP_CONV_DISPATCHES]
    top = tuple(e for e in ranked if e in ranked[:TOP_DISPATCHES] or e in top_conv)
    return Breakdown(wall_ms, conv_ns / calls / 1e6, other_ns / calls / 1e6, conv_n, other_n, calls, top)


def _wall_ms(benchmark_json: str) -> float:
    data = json.loads(benchmark_json[benchmark_json.index("{"):])
    (bench,) = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration"][:1]
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[bench.get("time_unit", "ns")]
    return float(bench["real_time"]) * scale


def _runtime_tool(name: str) -> str:
    from iree import _runtime_libs

    path = Path(_runtime_libs.__file__).resolve().parent / name
    if not path.is_file():
        raise RuntimeError(f"{name} not found beside iree._runtime_libs ({path.parent})")
    return str(path)
