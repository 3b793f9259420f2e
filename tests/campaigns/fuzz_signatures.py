"""Property campaign over compiled signatures: every call either matches
PyTorch or raises one of the package's errors.

    python -m tests.campaigns.fuzz_signatures --examples 300 --out signature_failures.json [--seed 0]
                                              [--iree-every 3]

A config (`signature_configs`) is one convolution (rank 1-3, forward or
transposed, groups, stride/dilation/padding, f32/f64/f16/bf16, a strategy in
rotation) with an example input whose sizes often make an output dim 1, and
a choice per dim of the input: static, `Dim.AUTO` or `Dim.DYNAMIC` (AUTO
where torch.export must specialize: the channels, an example size of 1). It is
compiled (a GroupedConvError there is an allowed outcome: torch.export
rejecting a size or a dim choice, said in one line; a CompileError is
counted apart, as "compile refused (CompileError)"), then called on each
runner with probes (`probes`): the example; each dim one larger and one
smaller, and at the sizes that make its output 1 and 0; the wrong dtype; the
wrong rank; no input and one too many. For each probe:

- PyTorch (eager; f16/bf16 computed in f64, tests/support/tolerances.py)
  returns a result: ours must be the same shape and allclose, or a
  `tgc.GroupedConvError` (a refusal is always allowed, a wrong answer never);
- PyTorch raises: ours must raise a `tgc.GroupedConvError` (never accept a
  shape the model rejects);
- the example itself must be accepted and match.

Prints one line per failure and "N passed, M failed" (configs), with the
count of probes per outcome; failing configs are written as JSON.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from torch.export import Dim

import torch_grouped_conv as tgc
from tests.campaigns import runner
from tests.campaigns.runner import Config, config_seed
from tests.support.tolerances import reference, tolerance

DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}
WRONG_DTYPE = {"f32": torch.float64, "f64": torch.float32, "f16": torch.float32, "bf16": torch.float16}
MODULES = {(False, 1): torch.nn.Conv1d, (False, 2): torch.nn.Conv2d, (False, 3): torch.nn.Conv3d,
           (True, 1): torch.nn.ConvTranspose1d, (True, 2): torch.nn.ConvTranspose2d, (True, 3): torch.nn.ConvTranspose3d}
DIM_CHOICES = ("static", "auto", "dynamic")


@st.composite
def signature_configs(draw: st.DrawFn, strategies: tuple[str, ...] = tuple(tgc.STRATEGIES)) -> Config:
    rank = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    per = lambda low, high: [draw(st.integers(low, high)) for _ in range(rank)]  # noqa: E731
    kernel, stride, dilation, padding = per(1, 3), per(1, 2), per(1, 2), per(0, 1)
    output_padding = [draw(st.integers(0, max(s, d) - 1)) if transposed else 0 for s, d in zip(stride, dilation,
                                                                                                strict=True)]
    # spatial sizes around the smallest valid one (output 1), sometimes below it (an input PyTorch rejects)
    spatial = [max(1, minimum_size(c_k, c_s, c_d, c_p, transposed) + draw(st.integers(-1, 3)))
               for c_k, c_s, c_d, c_p in zip(kernel, stride, dilation, padding, strict=True)]
    batch = draw(st.integers(1, 3))
    # Dim.DYNAMIC on a dim torch.export must specialize (the channels, fixed by the
    # weight; an example size of 1) only makes it refuse the export: AUTO there.
    dims = [draw(st.sampled_from(DIM_CHOICES)) for _ in range(rank + 2)]
    dims = [("auto" if k == "dynamic" and (i == 1 or ([batch, 0, *spatial][i] < 2)) else k) for i, k in enumerate(dims)]
    return dict(
        rank=rank, transposed=transposed, groups=draw(st.sampled_from([1, 2, 3, 4])),
        in_per_group=draw(st.integers(1, 3)), out_per_group=draw(st.integers(1, 3)),
        kernel=kernel, stride=stride, dilation=dilation, padding=padding, output_padding=output_padding,
        batch=batch, spatial=spatial, bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(list(DTYPES))), strategy=draw(st.sampled_from(strategies)), dims=dims,
    )


def minimum_size(kernel: int, stride: int, dilation: int, padding: int, transposed: bool) -> int:
    """The smallest input size whose output size is 1 (or more, when no size gives exactly 1)."""
    for size in range(1, 64):
        if output_size(size, kernel, stride, dilation, padding, 0, transposed) >= 1:
            return size
    return 64


def output_size(size: int, kernel: int, stride: int, dilation: int, padding: int, output_padding: int,
                transposed: bool) -> int:
    if transposed:
        return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def build(c: Config) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(config_seed(c))
    cin, cout = c["groups"] * c["in_per_group"], c["groups"] * c["out_per_group"]
    kwargs: dict[str, Any] = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                                  groups=c["groups"], bias=c["bias"])
    if c["transposed"]:
        kwargs["output_padding"] = c["output_padding"]
    module = MODULES[(c["transposed"], c["rank"])](cin, cout, c["kernel"], **kwargs).eval().to(DTYPES[c["dtype"]])
    x = torch.randn(c["batch"], cin, *c["spatial"]).to(DTYPES[c["dtype"]])
    return module, x


def dynamic_shapes(c: Config) -> tuple[dict[int, Any]] | None:
    choice = {"auto": Dim.AUTO, "dynamic": Dim.DYNAMIC}
    dims = {i: choice[k] for i, k in enumerate(c["dims"]) if k in choice}
    return (dims,) if dims else None


def probes(c: Config, x: torch.Tensor) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    """(label, inputs) to call the compiled module with."""
    found: list[tuple[str, tuple[torch.Tensor, ...]]] = [("example", (x,))]
    shape = list(x.shape)
    for dim in range(len(shape)):
        sizes = {shape[dim] + 1, shape[dim] - 1}
        if dim >= 2:
            i = dim - 2
            low = minimum_size(c["kernel"][i], c["stride"][i], c["dilation"][i], c["padding"][i], c["transposed"])
            sizes |= {low, low - 1}
        for size in sorted(s for s in sizes if s >= 1 and s != shape[dim]):
            other = list(shape)
            other[dim] = size
            found.append((f"dim {dim} = {size}", (torch.randn(other).to(x.dtype),)))
    found.append(("wrong dtype", (x.to(WRONG_DTYPE[c["dtype"]]),)))
    found.append(("wrong rank", (x[0],)))
    found += [("no input", ()), ("two inputs", (x, x))]
    return found


def outcome(module: torch.nn.Module, program: Any, inputs: tuple[torch.Tensor, ...], dtype: torch.dtype) -> str:
    """'match' or 'refused' (allowed), else raise AssertionError saying what went wrong."""
    try:
        expected = reference(module, *inputs)
    except Exception:  # noqa: BLE001 - PyTorch rejects the input: so must we
        expected = None
    try:
        [got] = program(*inputs)
    except tgc.GroupedConvError:
        return "refused"
    if expected is None:
        raise AssertionError(f"accepted an input PyTorch rejects: returned shape {got.shape}")
    want = expected.double().numpy()
    assert got.shape == want.shape, f"shape {got.shape} != PyTorch {want.shape}"
    rtol, atol = tolerance(dtype)
    assert np.allclose(got.astype(np.float64), want, rtol=rtol, atol=atol), (
        f"max abs error {float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0}")
    return "match"


def check_signature_config(c: Config, backends: tuple[str, ...] = ("refbackend", "iree")) -> Counter[str]:
    """The property for one config; returns the count of probe outcomes
    (a compile refused with a GroupedConvError counts as 'compile refused')."""
    module, x = build(c)
    try:
        compiled = tgc.compile(module, x, grouped_conv=c["strategy"], dynamic_shapes=dynamic_shapes(c))
    except tgc.GroupedConvError as e:
        assert not isinstance(e, tgc.InputError) or "\n" not in str(e), f"a multi-line input error: {e}"
        return Counter({f"compile refused ({type(e).__name__})": 1})
    counts: Counter[str] = Counter()
    for backend in backends:
        program = tgc.load(compiled, backend=backend)
        for label, inputs in probes(c, x):
            try:
                result = outcome(module, program, inputs, DTYPES[c["dtype"]])
            except AssertionError as e:
                shapes = [list(t.shape) for t in inputs]
                raise AssertionError(f"{backend}, {label} {shapes}: {e}") from None
            assert not (label == "example" and result != "match"), f"{backend} refused the example input"
            counts[result] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runner.add_arguments(parser, out="signature_failures.json", iree_every=3,
                         iree_help="run IREE on 1 config in N (0: never)")
    args = parser.parse_args(argv)
    outcome = runner.run_campaign(signature_configs(), check_signature_config, args, shown=300)
    print("probes: " + ", ".join(f"{k}={n}" for k, n in sorted(outcome.counts.items())))
    print(f"{outcome.passed} passed, {len(outcome.failures)} failed ({outcome.seconds:.0f} s)")
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
