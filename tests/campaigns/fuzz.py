"""Property test: random whole convolution configs, compiled with the plugin
(a strategy in rotation, `auto` included), run on both runners, and compared
with PyTorch eager (f16/bf16: with the model computed in f64 on the same
rounded inputs and weights, tests/support/tolerances.py `reference`).

    python -m tests.campaigns.fuzz --examples 3000 --out failures.json [--seed 0] [--iree-every 1]
                             [--strategies auto,grouped] [--features dynamic_kernel]

prints one line per failure and closes with "N passed, M failed"; failing
configs are written as JSON, replayable with `check_config(config)` (and
added to cases_forms.FUZZ_REGRESSIONS as regular e2e cases).

What a config draws (`conv_configs`): spatial rank 1-3; groups 1-16 with 1-8
input and output channels per group (and 2D depthwise convs of 16, 32 or 48
channels, the channel-blocked taps); kernel, stride, dilation 1-3; padding
0-2 per dim, or "same" (forward, stride 1) / "valid"; transposed with a valid
output_padding; bias; f32/f64/f16/bf16; batched or unbatched input; the
weights as module constants or as runtime inputs; dynamic batch, spatial and
(weights as inputs) channel dims, each dynamic config also run on a second,
larger input; the strategy. `FEATURES` switches on dimensions the campaign
leaves off by default (see there).
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from torch.export import Dim

import torch_grouped_conv as tgc
from tests.campaigns import runner
from tests.campaigns.runner import Config, config_seed
from tests.support.tolerances import reference, tolerance

DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}
STRATEGIES: tuple[str, ...] = tuple(tgc.STRATEGIES)

# Switchable dimensions of the campaign: True draws it (also with `--features NAME`):
# - dynamic_kernel: weights as runtime inputs with dynamic kernel dims. The
#   plugin lowers them (tests/campaigns/test_fuzz.py pins one config; the e2e cases
#   cov_dynk_* / cov_dynw_* cover every rank and case), but the switch stays
#   off: for random configs torch.export itself often cannot keep a kernel dim
#   dynamic ("Constraints violated (K1)": the output-size relation
#   specializes it), so the campaign would count export failures, not plugin
#   ones (seen in a 2026-12-01 run of 450 configs, seed 100).
# Quantized configs are not here: a quantized aten.convolution comes from
# torch-mlir's ONNX importer (QLinearConv), not from a torch.nn module through
# torch.export (its FX importer cannot import a torch.quint8 literal, and
# quantized_decomposed quantize/dequantize leave the conv in float). They need
# an ONNX-built model per config, with the ONNX frontend (branch `quant`).
FEATURES: dict[str, bool] = {"dynamic_kernel": False}

# Keys added since the first campaigns, with the value an older config (e.g. in
# cases_forms.FUZZ_REGRESSIONS) means.
DEFAULTS: Config = {
    "unbatched": False, "weights_as_inputs": False, "dynamic_spatial": None, "dynamic_channels": False,
    "dynamic_kernel": False, "strategy": "grouped",
}


def full(c: Config) -> Config:
    """`c` with every key, older configs filled with `DEFAULTS`."""
    return {**DEFAULTS, **c, "dynamic_spatial": c.get("dynamic_spatial") or [False] * c["rank"]}


@st.composite
def conv_configs(draw: st.DrawFn, features: dict[str, bool] | None = None,
                 strategies: tuple[str, ...] = STRATEGIES) -> Config:
    """A valid aten.convolution config: G divides C and F, output_padding <
    max(stride, dilation) for transposed convs, every output dim >= 1."""
    on = {**FEATURES, **(features or {})}
    strategy = draw(st.sampled_from(strategies))
    # The alternative strategies cover 2D forward f32/f64 static convs and fall back to
    # `grouped` elsewhere: half of their configs are drawn in that domain, so their own
    # emitters (and `auto`'s picks) run often, not one config in ten.
    native = strategy != "grouped" and draw(st.booleans())
    rank = 2 if native else draw(st.integers(1, 3))
    # Small sizes most of the time, the extremes (16 groups, 8 channels per group) often enough.
    groups = draw(st.one_of(st.integers(1, 4), st.integers(1, 16)))
    per = lambda: [draw(st.integers(1, 3)) for _ in range(rank)]  # noqa: E731
    kernel, stride, dilation = per(), per(), per()
    transposed = not native and draw(st.booleans())
    padding: list[int] | str = [draw(st.integers(0, 2)) for _ in range(rank)]
    if not transposed and draw(st.integers(0, 4)) == 0:
        padding = draw(st.sampled_from(["same", "valid"]))
        if padding == "same":
            stride = [1] * rank  # PyTorch: padding='same' needs stride 1
    output_padding = [draw(st.integers(0, max(s, d) - 1)) if transposed else 0 for s, d in zip(stride, dilation, strict=False)]
    spatial = [d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation, strict=False)]
    # One config in six hunts the unit-output class (the IREE "global resources"
    # failures of issue 10): some output spatial dims made exactly 1, and batch 1.
    unit_output = draw(st.integers(0, 5)) == 0
    if unit_output:
        for i in range(rank):
            if draw(st.booleans()):
                kernel, spatial, padding, output_padding = _unit_dim(i, kernel, spatial, padding, output_padding,
                                                                     dilation, transposed)
    in_per_group, out_per_group = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    # One native config in six is depthwise over 16-channel multiples: with these small
    # spatial sizes its f32 form is `taps`' channel-blocked one (taps.blocks_channels).
    if native and draw(st.integers(0, 5)) == 0:
        groups, in_per_group, out_per_group = draw(st.sampled_from([16, 32, 48])), 1, 1
    unbatched = draw(st.integers(0, 4)) == 0
    dynamic_batch = not unbatched and not unit_output and not native and draw(st.booleans())
    weights_as_inputs = draw(st.integers(0, 3)) == 0
    # an example size of 1 would be specialized by torch.export: such dims stay static
    dynamic_spatial = [not native and draw(st.integers(0, 3)) == 0 and s >= 2 for s in spatial]
    # Dynamic channels need the weights as inputs and >= 2 channels per group (a
    # dynamic dim whose example size is 1 is specialized by torch.export).
    dynamic_channels = not native and weights_as_inputs and in_per_group >= 2 and out_per_group >= 2 and draw(st.booleans())
    dynamic_kernel = on["dynamic_kernel"] and weights_as_inputs and draw(st.booleans())
    config = dict(
        # torch.export specializes a dynamic dim whose example size is 1
        rank=rank, batch=1 if unbatched or unit_output else draw(st.integers(2 if dynamic_batch else 1, 3)),
        groups=groups,
        in_per_group=in_per_group, out_per_group=out_per_group,
        kernel=kernel, stride=stride, padding=padding, dilation=dilation, transposed=transposed,
        output_padding=output_padding, spatial=spatial, bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(["f32", "f64"] if native else ["f32", "f32", "f64", "f16", "bf16"])),
        dynamic_batch=dynamic_batch, unbatched=unbatched, weights_as_inputs=weights_as_inputs,
        dynamic_spatial=dynamic_spatial, dynamic_channels=dynamic_channels, dynamic_kernel=dynamic_kernel,
        strategy=strategy,
    )
    out = output_spatial(config)
    assume(all(n >= 1 for n in out))
    # torch.export specializes a dynamic input dim whose output size is 1 in the example
    # ("Constraints violated"): such dims stay static.
    config["dynamic_spatial"] = [d and n >= 2 for d, n in zip(dynamic_spatial, out, strict=False)]
    assume(not (dynamic_kernel and any(k == 1 for k in kernel)))  # a size-1 example would be specialized
    return config


def _unit_dim(i: int, kernel: list[int], spatial: list[int], padding: list[int] | str, output_padding: list[int],
              dilation: list[int], transposed: bool) -> tuple[list[int], list[int], list[int] | str, list[int]]:
    """Make output spatial dim `i` exactly 1: forward, input = the dilated kernel's
    reach with no padding (1 with 'same'); transposed, a 1x... input and kernel."""
    kernel, spatial, output_padding = list(kernel), list(spatial), list(output_padding)
    if transposed:
        kernel[i], spatial[i], output_padding[i] = 1, 1, 0
        padding = [0 if j == i else p for j, p in enumerate(padding)] if isinstance(padding, list) else padding
    elif padding == "same":
        spatial[i] = 1
    else:
        spatial[i] = dilation[i] * (kernel[i] - 1) + 1
        padding = [0 if j == i else p for j, p in enumerate(padding)] if isinstance(padding, list) else padding
    return kernel, spatial, padding, output_padding


def output_spatial(c: Config) -> list[int]:
    out = []
    for i in range(c["rank"]):
        h, k, s, d = c["spatial"][i], c["kernel"][i], c["stride"][i], c["dilation"][i]
        if c["padding"] == "same":
            out.append(h)
            continue
        p = 0 if c["padding"] == "valid" else c["padding"][i]
        if c["transposed"]:
            out.append((h - 1) * s - 2 * p + d * (k - 1) + c["output_padding"][i] + 1)
        else:
            out.append((h + 2 * p - d * (k - 1) - 1) // s + 1)
    return out


CONV_FUNCTIONS = {
    (False, 1): torch.nn.functional.conv1d, (False, 2): torch.nn.functional.conv2d,
    (False, 3): torch.nn.functional.conv3d, (True, 1): torch.nn.functional.conv_transpose1d,
    (True, 2): torch.nn.functional.conv_transpose2d, (True, 3): torch.nn.functional.conv_transpose3d,
}


class Conv(torch.nn.Module):
    """One convolution; weight and bias are parameters, or inputs when `weights_as_inputs`
    (so that their dims can be dynamic)."""

    def __init__(self, c: Config, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.fn = CONV_FUNCTIONS[(c["transposed"], c["rank"])]
        self.kwargs: dict[str, Any] = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                                           groups=c["groups"])
        if c["transposed"]:
            self.kwargs["output_padding"] = c["output_padding"]
        self.weight = None if c["weights_as_inputs"] else torch.nn.Parameter(weight)
        self.bias = None if c["weights_as_inputs"] or bias is None else torch.nn.Parameter(bias)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None = None, b: torch.Tensor | None = None) -> torch.Tensor:
        if w is None:
            w, b = self.weight, self.bias
        return self.fn(x, w, b, **self.kwargs)


def build(c: Config) -> tuple[torch.nn.Module, torch.Tensor]:
    """The module and its example input (weights as inputs: see `example_inputs`)."""
    module, inputs = build_all(c)
    return module, inputs[0]


def build_all(c: Config) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The module (eval mode) and its example inputs: (x,) or, weights as inputs, (x, w[, b])."""
    c = full(c)
    torch.manual_seed(config_seed(c))
    x, w, b = tensors(c, grow=0)
    module = Conv(c, w, b).eval()
    return module, (x, *((w,) + ((b,) if b is not None else ()) if c["weights_as_inputs"] else ()))


def tensors(c: Config, grow: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Input, weight and bias; `grow` > 0 makes every dynamic dim that much larger."""
    dtype = DTYPES[c["dtype"]]
    dyn = grow if c["dynamic_channels"] else 0
    cin, cout = c["groups"] * (c["in_per_group"] + dyn), c["groups"] * (c["out_per_group"] + dyn)
    spatial = [s + (grow * 2 if d else 0) for s, d in zip(c["spatial"], c["dynamic_spatial"], strict=False)]
    kernel = [k + (grow if c["dynamic_kernel"] else 0) for k in c["kernel"]]
    batch = c["batch"] + (grow if c["dynamic_batch"] else 0)
    fan_in = max(1, (c["in_per_group"] + dyn) * int(np.prod(kernel)))
    per_group_in, per_group_out = cin // c["groups"], cout // c["groups"]
    w_shape = [cin, per_group_out, *kernel] if c["transposed"] else [cout, per_group_in, *kernel]
    w = (torch.rand(w_shape) * 2 - 1) / fan_in ** 0.5
    b = (torch.rand(cout) * 2 - 1) / fan_in ** 0.5 if c["bias"] else None
    x = torch.randn(*([] if c["unbatched"] else [batch]), cin, *spatial)
    return x.to(dtype), w.to(dtype), None if b is None else b.to(dtype)


def dynamic_shapes(c: Config) -> tuple[dict[int, Any], ...] | None:
    """torch.export's dynamic_shapes for `build_all(c)`'s inputs, or None when all static."""
    c = full(c)
    lead = 0 if c["unbatched"] else 1
    x: dict[int, Any] = {}
    if c["dynamic_batch"]:
        x[0] = Dim("N", min=1, max=8)
    for i, dynamic in enumerate(c["dynamic_spatial"]):
        if dynamic:  # at least the example size: every output dim stays >= 1
            x[lead + 1 + i] = Dim(f"S{i}", min=c["spatial"][i], max=c["spatial"][i] + 16)
    if not c["weights_as_inputs"]:
        return (x,) if x else None
    w: dict[int, Any] = {}
    if c["dynamic_channels"]:
        cg, fg = Dim("Cg", min=2, max=32), Dim("Fg", min=2, max=32)
        g = c["groups"]
        x[lead] = g * cg if g > 1 else cg
        w = {0: g * cg if g > 1 else cg, 1: fg} if c["transposed"] else {0: g * fg if g > 1 else fg, 1: cg}
    if c["dynamic_kernel"]:
        w.update({2 + i: Dim(f"K{i}", min=k, max=k + 4) for i, k in enumerate(c["kernel"])})
    specs: list[dict[int, Any]] = [x, w]
    if c["bias"]:
        specs.append({0: (c["groups"] * fg if c["groups"] > 1 else fg)} if c["dynamic_channels"] else {})
    return tuple(specs) if any(specs) else None


def is_dynamic(c: Config) -> bool:
    c = full(c)
    return bool(c["dynamic_batch"] or any(c["dynamic_spatial"]) or c["dynamic_channels"] or c["dynamic_kernel"])


def all_inputs(c: Config, module: torch.nn.Module) -> list[tuple[torch.Tensor, ...]]:
    """The example inputs, then, for dynamic configs, a second set with every dynamic dim larger."""
    c = full(c)
    _, example = build_all(c)
    if not is_dynamic(c):
        return [example]
    torch.manual_seed(config_seed(c) + 1)
    x, w, b = tensors(c, grow=1)
    return [example, (x, *((w,) + ((b,) if b is not None else ()) if c["weights_as_inputs"] else ()))]


def expected_case(c: Config) -> str:
    """The report case the plugin should take for `c`."""
    if c["groups"] == 1:
        case = "conv"
    elif c["in_per_group"] == 1:
        case = "depthwise" if c["out_per_group"] == 1 else "depthwise_multiplier"
    else:
        case = "grouped"
    return f"transposed_{case}" if c["transposed"] else case


def check_config(c: Config, backends: tuple[str, ...] = ("refbackend", "iree")) -> float:
    """Compile `c` with the plugin (its strategy), run it on `backends` (on
    every input set of `all_inputs`), compare with PyTorch; return the max abs
    error or raise AssertionError / GroupedConvError."""
    c = full(c)
    module, inputs = build_all(c)
    compiled = tgc.compile(module, *inputs, grouped_conv=c["strategy"], dynamic_shapes=dynamic_shapes(c))
    report = tgc.last_report()
    assert report is not None, "no report"
    assert report.counts() == {expected_case(c): 1}, report.summary()
    rtol, atol = tolerance(DTYPES[c["dtype"]])
    worst = 0.0
    for backend in backends:
        program = tgc.load(compiled, backend)
        if backend == "iree":
            assert program.program.compile_warnings == "", program.program.compile_warnings
        for args in all_inputs(c, module):
            out = reference(module, *args)  # f16/bf16: an f64 computation (tolerances.py)
            want = out.numpy() if out.dtype == torch.float64 else out.float().numpy()
            [got] = program(*args)
            got = got.astype(np.float32) if got.dtype != np.float64 else got
            shapes = [list(a.shape) for a in args]
            assert got.shape == want.shape, f"{backend} on {shapes}: shape {got.shape} != PyTorch {want.shape}"
            err = float(np.abs(got - want).max()) if want.size else 0.0
            assert np.allclose(got, want, rtol=rtol, atol=atol), f"{backend} on {shapes}: max abs error {err}"
            worst = max(worst, err)
    return worst


def check_and_count(c: Config, backends: tuple[str, ...]) -> Counter[str]:
    """`check_config`, then the emitter each convolution actually ran (after any fallback)."""
    check_config(c, backends)
    report = tgc.last_report()
    return Counter(d.strategy for d in (report.decisions if report else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runner.add_arguments(parser, out="failures.json", iree_every=1,
                         iree_help="run IREE on 1 config in N (default: every one; 0: never)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="strategies to rotate (default: all)")
    parser.add_argument("--features", default="", help=f"switch on: {', '.join(FEATURES)} (off by default: see FEATURES)")
    args = parser.parse_args(argv)
    strategies = tuple(s for s in args.strategies.split(",") if s)
    unknown = [s for s in strategies if s not in STRATEGIES] + [f for f in args.features.split(",") if f and f not in FEATURES]
    if unknown or not strategies:
        parser.error(f"unknown strategy/feature {unknown}; strategies: {', '.join(STRATEGIES)}; features: {', '.join(FEATURES)}")
    features = {f: True for f in args.features.split(",") if f}
    outcome = runner.run_campaign(conv_configs(features, strategies), check_and_count, args, shown=200)
    passed, failed, seconds = outcome.passed, len(outcome.failures), outcome.seconds
    print("emitters run: " + ", ".join(f"{name}={n}" for name, n in sorted(outcome.counts.items())))
    print(f"{passed} passed, {failed} failed ({seconds:.0f} s, {seconds / max(passed + failed, 1):.2f} s per config)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
