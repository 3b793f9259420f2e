"""Property test: random whole convolution configs, compiled with the plugin,
run, and compared with PyTorch eager.

    python -m e2e_tests.fuzz --examples 200 --out failures.json [--iree-every 4] [--seed 0]

prints one line per failure and closes with "N passed, M failed"; failing
configs are written as JSON, replayable with `check_config(config)` (and
added to cases_coverage.FUZZ_REGRESSIONS as regular e2e cases).
"""

from __future__ import annotations

import argparse
import json
import zlib
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st
from torch.export import Dim

import torch_grouped_conv as tgc

from .tolerances import tolerance

Config = dict[str, Any]
DTYPES = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16}


@st.composite
def conv_configs(draw: st.DrawFn) -> Config:
    """A valid aten.convolution config: G divides C and F, output_padding <
    max(stride, dilation) for transposed convs, every output dim >= 1."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    per = lambda: [draw(st.integers(1, 3)) for _ in range(rank)]  # noqa: E731
    kernel, stride, dilation = per(), per(), per()
    padding = [draw(st.integers(0, 2)) for _ in range(rank)]
    transposed = draw(st.booleans())
    output_padding = [draw(st.integers(0, max(s, d) - 1)) if transposed else 0 for s, d in zip(stride, dilation)]
    spatial = [d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation)]
    dynamic_batch = draw(st.booleans())
    config = dict(
        # torch.export specializes a dynamic dim whose example size is 1
        rank=rank, batch=draw(st.integers(2 if dynamic_batch else 1, 3)), groups=groups,
        in_per_group=draw(st.integers(1, 3)), out_per_group=draw(st.integers(1, 3)),
        kernel=kernel, stride=stride, padding=padding, dilation=dilation, transposed=transposed,
        output_padding=output_padding, spatial=spatial, bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(["f32", "f32", "f64", "f16", "bf16"])),
        dynamic_batch=dynamic_batch,
    )
    assume(all(n >= 1 for n in output_spatial(config)))
    return config


def output_spatial(c: Config) -> list[int]:
    out = []
    for i in range(c["rank"]):
        h, k, s, p, d = c["spatial"][i], c["kernel"][i], c["stride"][i], c["padding"][i], c["dilation"][i]
        if c["transposed"]:
            out.append((h - 1) * s - 2 * p + d * (k - 1) + c["output_padding"][i] + 1)
        else:
            out.append((h + 2 * p - d * (k - 1) - 1) // s + 1)
    return out


def build(c: Config) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(zlib.crc32(json.dumps(c, sort_keys=True).encode()))
    cls = {(False, 1): torch.nn.Conv1d, (False, 2): torch.nn.Conv2d, (False, 3): torch.nn.Conv3d,
           (True, 1): torch.nn.ConvTranspose1d, (True, 2): torch.nn.ConvTranspose2d,
           (True, 3): torch.nn.ConvTranspose3d}[(c["transposed"], c["rank"])]
    kwargs: dict[str, Any] = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
                                  groups=c["groups"], bias=c["bias"])
    if c["transposed"]:
        kwargs["output_padding"] = c["output_padding"]
    dtype = DTYPES[c["dtype"]]
    module = cls(c["groups"] * c["in_per_group"], c["groups"] * c["out_per_group"], c["kernel"], **kwargs)
    x = torch.randn(c["batch"], c["groups"] * c["in_per_group"], *c["spatial"], dtype=dtype)
    return module.to(dtype).eval(), x


def expected_case(c: Config) -> str:
    """The report case the plugin should take for `c`."""
    if c["groups"] == 1:
        case = "conv"
    elif c["in_per_group"] == 1:
        case = "depthwise" if c["out_per_group"] == 1 else "depthwise_multiplier"
    else:
        case = "grouped"
    return f"transposed_{case}" if c["transposed"] else case


def check_config(c: Config, backends: tuple[str, ...] = ("refbackend",)) -> float:
    """Compile `c` with the plugin, run it on `backends`, compare with PyTorch;
    return the max abs error or raise AssertionError / GroupedConvError."""
    module, x = build(c)
    dynamic = ({0: Dim("N", min=1, max=8)},) if c["dynamic_batch"] else None
    compiled = tgc.compile(module, x, dynamic_shapes=dynamic)
    report = tgc.last_report()
    assert report is not None and report.counts() == {expected_case(c): 1}, report.summary() if report else "none"
    with torch.no_grad():
        out = module(x)
    want = out.numpy() if out.dtype == torch.float64 else out.float().numpy()
    rtol, atol = tolerance(x.dtype)
    worst = 0.0
    for backend in backends:
        program = tgc.load(compiled, backend)
        if backend == "iree":
            assert program.program.compile_warnings == "", program.program.compile_warnings  # type: ignore[attr-defined]
        [got] = program(x)
        got = got.astype(np.float32) if got.dtype != np.float64 else got
        assert got.shape == want.shape, f"{backend}: shape {got.shape} != PyTorch {want.shape}"
        err = float(np.abs(got - want).max()) if want.size else 0.0
        assert np.allclose(got, want, rtol=rtol, atol=atol), f"{backend}: max abs error {err}"
        worst = max(worst, err)
    return worst


def uses_iree(c: Config, every: int) -> bool:
    return every > 0 and zlib.crc32(json.dumps(c, sort_keys=True).encode()) % every == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--out", default="failures.json", help="failing configs, as a JSON list")
    parser.add_argument("--iree-every", type=int, default=4, help="also run IREE on 1 config in N (0: never)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    passed, failures = 0, []

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(conv_configs())
    def campaign(c: Config) -> None:
        nonlocal passed
        backends = ("refbackend", "iree") if uses_iree(c, args.iree_every) else ("refbackend",)
        try:
            check_config(c, backends)
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is recorded, the campaign goes on
            failures.append({"config": c, "backends": list(backends), "error": f"{type(e).__name__}: {e}"[:2000]})
            print(f"FAIL {json.dumps(c)}: {failures[-1]['error'][:200]}", flush=True)

    campaign()
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(failures, f, indent=1)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
