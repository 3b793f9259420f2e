"""Property test for quantized convolutions: random per-tensor quantized
configs (tests/support/quantized.py `QConv`) as torch-backend IR, lowered by the
plugin, run on both runners (IREE on every config) and compared exactly with
PyTorch's float64 convolution of q - zero point.

    python -m tests.campaigns.fuzz_quantized --examples 300 --out failures.json [--seed 0]

prints one line per failure and closes with "N passed, M failed"; failing
configs are written as JSON (the `QConv` fields and the strategy), replayable
with `check_quantized(QConv(**fields), strategy)`. Strategies rotate over
`grouped`, `auto` and `im2col`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import zlib

import numpy as np
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

import torch_grouped_conv as tgc
from tests.support.quantized import (
    STORAGE_NUMPY,
    QConv,
    accumulator_ir,
    integer_data,
    lower,
    parse,
    reference_accumulator,
    runner_args,
)


@st.composite
def quantized_configs(draw: st.DrawFn) -> QConv:
    """A valid quantized aten.convolution: G divides C and F, output_padding <
    max(stride, dilation) for transposed convs, every output dim >= 1; any
    ui8/si8 storage and zero point of its range."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 8))
    c_in, c_out = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    per = lambda: tuple(draw(st.integers(1, 3)) for _ in range(rank))  # noqa: E731
    kernel, stride, dilation = per(), per(), per()
    padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    transposed = draw(st.booleans())
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) if transposed else 0
                           for s, d in zip(stride, dilation, strict=False))
    spatial = tuple(d * (k - 1) + 1 + draw(st.integers(0, 4)) for k, d in zip(kernel, dilation, strict=False))
    storage = lambda: draw(st.sampled_from(["ui8", "si8"]))  # noqa: E731
    x_storage, w_storage = storage(), storage()
    zero_point = lambda s: draw(st.integers(int(np.iinfo(STORAGE_NUMPY[s]).min), int(np.iinfo(STORAGE_NUMPY[s]).max)))  # noqa: E731
    conv = QConv(
        "fuzz", spatial, c_in, c_out, groups, kernel, stride, padding, dilation, output_padding, transposed,
        batch=draw(st.integers(1, 2)), input_storage=x_storage, input_zero_point=zero_point(x_storage),
        weight_storage=w_storage, weight_zero_point=zero_point(w_storage), bias=draw(st.booleans()),
        dynamic_batch=draw(st.booleans()),
    )
    assume(all(n >= 1 for n in conv.output_shape[2:]))
    return conv


def expected_case(conv: QConv) -> str:
    c_in_group, c_out_group = conv.c_in // conv.groups, conv.c_out // conv.groups
    if conv.groups == 1:
        case = "conv"
    elif c_in_group == 1 and c_out_group == 1:
        case = "depthwise"
    elif c_in_group == 1:
        case = "depthwise_multiplier"
    else:
        case = "grouped"
    return "quantized_" + ("transposed_" if conv.transposed else "") + case


# Rotated over the campaign: the `_q` ops, and the grouped GEMM on centered
# i32 operands (`im2col`, and `auto`, which picks it or the `_q` ops).
STRATEGIES = ("grouped", "auto", "im2col")


def strategy_for(conv: QConv) -> str:
    return STRATEGIES[zlib.crc32(repr(conv).encode()) % len(STRATEGIES)]


def check_quantized(conv: QConv, strategy: str = "grouped", backends: tuple[str, ...] = tgc.BACKENDS) -> None:
    """Lower `conv` with the plugin's `strategy` and compare its i32 accumulator
    with PyTorch's on `backends`."""
    lowered = lower(parse(accumulator_ir(conv)), strategy)
    assert lowered.report.counts() == {expected_case(conv): 1}, lowered.report.summary()
    x, w, b = integer_data(conv, seed=zlib.crc32(repr(conv).encode()))
    want = reference_accumulator(conv, x, w, b if conv.bias else None)
    for backend in backends:
        program = tgc.load(lowered.module, backend=backend)
        if backend == "iree":
            assert not program.program.compile_warnings, program.program.compile_warnings
        [got] = program(*runner_args(conv, x, w, b))
        np.testing.assert_array_equal(got, want, err_msg=f"{backend}: {conv}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--out", default="quantized_failures.json", help="failing configs, as a JSON list")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    passed, failures = 0, []

    @seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(quantized_configs())
    def campaign(conv: QConv) -> None:
        nonlocal passed
        try:
            check_quantized(conv, strategy_for(conv))
            passed += 1
        except Exception as e:  # noqa: BLE001  (a campaign records every failure and goes on)
            failures.append({**dataclasses.asdict(conv), "strategy": strategy_for(conv)})
            print(f"FAIL {conv}: {str(e).splitlines()[0] if str(e) else type(e).__name__}", flush=True)

    campaign()
    with open(args.out, "w") as f:
        json.dump(failures, f, indent=1)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
