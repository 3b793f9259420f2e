"""Time quantized convolutions (ONNX QuantizeLinear -> QLinearConv ->
DequantizeLinear) on IREE llvm-cpu at one thread: torch-mlir's own lowering,
the plugin's `grouped` (`*_q` ops) and `auto` (im2col on centered i32 for
non-depthwise convs), and onnxruntime's QLinearConv at one thread.

    python -m tests.campaigns.quantized_bench [--repeats 20]

prints a markdown table of median milliseconds per call (the variants
interleaved, after one warm-up call each) and checks that every IREE variant
gives torch-mlir's output exactly.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from iree import runtime as iree_rt
from torch_mlir import ir

from tests.support.quantized import QConv, lowered_qlinearconv, qlinearconv_model
from torch_grouped_conv.runners.iree import compile_to_vmfb
from torch_grouped_conv.runners.iree_flags import runtime_driver


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

SHAPES = [
    QConv("grouped_g4_64to128_56", (56, 56), 64, 128, 4, (3, 3), padding=(1, 1)),
    QConv("resnext_g32_128_28", (28, 28), 128, 128, 32, (3, 3), padding=(1, 1)),
    QConv("conv_64_28", (28, 28), 64, 64, 1, (3, 3), padding=(1, 1)),
    QConv("pointwise_64to128_28", (28, 28), 64, 128, 1, (1, 1)),
    QConv("depthwise_144_56", (56, 56), 144, 144, 144, (3, 3), padding=(1, 1)),
]
VARIANTS = {"upstream": None, "grouped": "grouped", "auto": "auto"}


def time_interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    import onnxruntime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    print("| shape | onnxruntime | upstream | grouped | auto | auto's strategy |")
    print("|---|---|---|---|---|---|")
    for conv in SHAPES:
        model = qlinearconv_model(conv)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(model.model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
        programs = {name: IreeBenchProgram(lowered_qlinearconv(conv, strategy).module, [], [model.input],
                                           runtime_driver(1))
                    for name, strategy in VARIANTS.items()}
        reference = programs["upstream"].output()
        for name, program in programs.items():
            assert np.array_equal(program.output(), reference), f"{conv.name}: {name} differs from upstream"
        calls: dict[str, Callable[[], object]] = {"onnxruntime": lambda s=session, m=model: s.run(None, {"x": m.input})}
        calls.update(programs)
        ms = time_interleaved(calls, args.repeats)
        [decision] = lowered_qlinearconv(conv, "auto").report.decisions
        print(f"| {conv.name} | {ms['onnxruntime']:.2f} | {ms['upstream']:.2f} | {ms['grouped']:.2f} | "
              f"{ms['auto']:.2f} | {decision.strategy} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
