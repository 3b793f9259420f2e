"""auto's time breakdown: conv dispatches (by the source conv's location) vs the rest."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch_mlir import ir

from tests.support.models import grouped_then_pointwise
from torch_grouped_conv.bench import breakdown
from torch_grouped_conv.bench.variants import compile_iree
from torch_grouped_conv.importer import torch_context
from torch_grouped_conv.runners.iree import compile_for
from torch_grouped_conv.runners.iree_flags import TUNED, flag_set

CONV = '"/x/torch/nn/modules/conv.py":565:0'
NORM = '"/x/torch/nn/modules/batchnorm.py":210:0'


def test_innermost_frame_is_the_callee() -> None:
    assert breakdown.innermost_frame(f'loc(callsite({CONV} at "/m.py":13:0))') == CONV
    assert breakdown.innermost_frame(f"loc({CONV})") == CONV


def test_a_conv_frame_counts_only_where_it_opens_a_location() -> None:
    conv_op = f'%1 = linalg.generic ... loc(callsite({CONV} at callsite("/m.py":15:0 at "/m.py":13:0)))'
    norm_op = f'%2 = arith.mulf ... loc(callsite({NORM} at callsite("/m.py":14:0 at callsite({CONV} at "/m.py":13:0))))'
    fused = f'%3 = arith.addf ... loc(fused[{NORM}, {CONV}])'
    assert breakdown.is_conv_dispatch(conv_op, {CONV})
    assert not breakdown.is_conv_dispatch(norm_op, {CONV})  # conv.py is a caller further out there
    assert breakdown.is_conv_dispatch(fused, {CONV})


def test_split_executables_maps_exports_to_bodies() -> None:
    text = ("  flow.executable private @main_dispatch_0 {\n    flow.executable.export public @main_dispatch_0_matmul_8x8 "
            "workgroups()\n  A\n  }\n  func.func @main() { C }\n  flow.executable private @main_dispatch_1 {\n"
            "    flow.executable.export public @main_dispatch_1_generic_8 workgroups()\n  B\n  }\n  util.global @w = D\n")
    bodies = breakdown.split_executables(text)
    assert set(bodies) == {"main_dispatch_0_matmul_8x8", "main_dispatch_1_generic_8"}
    assert "A" in bodies["main_dispatch_0_matmul_8x8"] and "C" not in bodies["main_dispatch_0_matmul_8x8"]
    assert "B" in bodies["main_dispatch_1_generic_8"] and "D" not in bodies["main_dispatch_1_generic_8"]


def test_summarize_sums_per_call() -> None:
    rows = [{"type": "host_dispatch_group", "key": "d0_conv", "total_ns": 30e6, "count": 30},
            {"type": "host_dispatch_group", "key": "d1_softmax", "total_ns": 10e6},
            {"type": "host_dispatch_group", "key": "d2_unknown", "total_ns": 10e6},
            {"type": "dispatch_summary"}]
    b = breakdown.summarize("\n".join(map(json.dumps, rows)), {"d0_conv": True, "d1_softmax": False},
                            wall_ms=6.0, calls=10)
    assert (b.conv_ms, b.other_ms, b.conv_dispatches, b.other_dispatches) == (3.0, 2.0, 1, 2)
    assert b.rest_ms == 1.0
    assert [name for name, _, _, _ in b.top] == ["d0_conv", "d1_softmax", "d2_unknown"] and b.top[0][1]
    assert b.top[0][3] == 3.0  # 30 runs over 10 calls


class ConvNormSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3, padding=1, groups=4)
        self.norm = nn.BatchNorm2d(32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.conv(x)))
        return torch.softmax(y.flatten(1), dim=-1)


@pytest.mark.parametrize("transients", [False, True])
def test_profiled_breakdown_of_a_real_module(transients: bool) -> None:
    """Profiled as the runner calls it: with transient storage (forced here: the module is small), one buffer."""
    torch.manual_seed(0)
    model, x = ConvNormSoftmax().eval(), torch.randn(1, 16, 28, 28)
    build = compile_iree(model, [x], "auto", [])
    assert build.conv_frames and all("conv.py" in f for f in build.conv_frames)
    kinds = breakdown.conv_dispatches(build.compile_source, build.compile_flags, build.conv_frames)
    assert any(kinds.values()) and not all(kinds.values())  # the conv, and the softmax's reductions
    assert build.transient_bytes is None  # below the runner's threshold (iree.wants_external_transients)
    vmfb, size = build.vmfb, None
    if transients:
        done = compile_for(ir.Module.parse(build.linalg_bytecode, context=torch_context()), build.flags,
                           transients=True)
        vmfb, size = done.vmfb, done.transient_bytes
        assert size is not None
    result = breakdown.profile(vmfb, [x.numpy()], 1, kinds, transient_bytes=size)
    assert result.conv_dispatches >= 1 and result.other_dispatches >= 1
    assert result.conv_ms > 0 and result.other_ms > 0 and result.wall_ms >= 0.5 * (result.conv_ms + result.other_ms)


def test_a_network_row_carries_the_breakdown_in_json_and_markdown() -> None:
    """The model-row plumbing of run.py on a tiny module (the real nets are too slow for CI)."""
    from torch_grouped_conv.bench import efficiency, output, run
    from torch_grouped_conv.bench.variants import UPSTREAM
    from torch_grouped_conv.bench.workloads import Workload, model_flops, standard_variants

    torch.manual_seed(0)
    model, x = ConvNormSoftmax().eval(), torch.randn(1, 16, 28, 28)
    workload = Workload("tiny_net", "networks", [x], lambda: [])
    workload.build = lambda: standard_variants(model, [x], [(UPSTREAM, None, []), ("auto", "auto", [])],
                                               workload.errors, peers=())
    args = run.parse_args(["--rounds", "1", "--block", "2"])
    row = run.bench_workload(workload, [1], args)
    assert set(row["threads"]["1"]) == {"pytorch", "upstream", "auto"}
    assert row["breakdown"]["1"]["conv_ms"] > 0 and row["breakdown"]["1"]["other_dispatches"] >= 1
    row["flops"] = model_flops(model, [x])
    row["efficiency"] = efficiency.of_row(row, {"1": 50.0})
    e = row["efficiency"]["1"]  # overall, and each costly conv dispatch with FLOPs or the reason why not
    assert e["auto_fraction"] == pytest.approx(e["auto_gflops"] / 50.0, abs=1e-4)
    assert e["conv_dispatches"] and all(d["flops"] is not None or d["flops_from"] for d in e["conv_dispatches"])
    results = {"config": {"threads": [1], "mode": "steady", "rounds": 1, "block": 2, "warmup": 3,
                          "iree_drivers": {"1": "local-sync"}, "iree_flags": "", "command": "test", "wall_s": 1.0},
               "machine": {"1": {"cpu": "cpu", "logical_cpus": 2, "simd": "avx2+fma", "ghz": 2.0}}, "rows": [row]}
    results["summary"] = output.summarize(results)
    table = output.markdown(results)
    assert "### Whole networks, 1 thread" in table and "auto: conv / other dispatches / rest ms" in table
    assert "| tiny_net |" in table and "geomean (8 image nets)" in table
    assert "**tiny_net**, 1 thread: auto " in table and "| costliest conv dispatches |" in table


def test_breakdown_names_the_dispatches_of_the_profiled_module() -> None:
    """With the runner's data-tiling hints: every profiled dispatch is classified (none
    missing from the flow-level compile), and both convs' GEMMs count as conv."""
    model, x = grouped_then_pointwise(128, 3, 4)  # K = 32 * 3: the grouped GEMM is marked
    build = compile_iree(model, [x], "auto", flag_set(TUNED))
    assert b"iree.opt.data_tiling" in build.compile_source  # the runner's hints, as compiled
    kinds = breakdown.conv_dispatches(build.compile_source, build.compile_flags, build.conv_frames)
    result = breakdown.profile(build.vmfb, [x.numpy()], 1, kinds)
    names = [name for name, *_ in result.top]
    assert names and all(name in kinds for name in names), (names, sorted(kinds))
    gemms = [name for name in names if "matmul" in name or "mmt4d" in name]
    assert len(gemms) >= 2 and all(kinds[name] for name in gemms), (gemms, kinds)
