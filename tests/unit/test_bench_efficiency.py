"""FLOPs from IREE dispatch names and auto's fraction of the ceiling (pure arithmetic)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.bench import efficiency, output
from torch_grouped_conv.bench.efficiency import dispatch_flops


@pytest.mark.parametrize("name, flops", [
    ("main$async_dispatch_7_batch_matmul_1x256x196x2304_f32", 2 * 1 * 256 * 196 * 2304),
    ("main_dispatch_46_batch_matmul_1x256x16x2304_f32", 2 * 256 * 16 * 2304),
    ("main_dispatch_54_matmul_1024x16x256_f32", 2 * 1024 * 16 * 256),
    ("main_dispatch_3_mmt4d_64x49x36x16x16x1_f32", 2 * 64 * 49 * 36 * 16 * 16),
    ("main_dispatch_0_conv_2d_nchw_fchw_1x64x112x112x3x7x7_f32", 2 * 64 * 112 * 112 * 3 * 49),
    ("main_dispatch_9_depthwise_conv_2d_nchw_chw_1x144x56x56x3x3_f32", 2 * 144 * 56 * 56 * 9),
    ("main_dispatch_2_matmul_like_32x3136x72_f32", 2 * 32 * 3136 * 72),
])
def test_contractions_give_twice_the_product_of_their_loop_ranges(name: str, flops: int) -> None:
    found, how = dispatch_flops(name)
    assert found == flops and how.startswith("2 x ")


@pytest.mark.parametrize("name, why", [
    ("main_dispatch_7_generic_64x3x3x16x16_f32", "`generic` is no contraction"),
    ("main_dispatch_12_elementwise_1x144x56x56_f32", "`elementwise` is no contraction"),
    ("main_dispatch_4_pack_f32", "no loop ranges"),
    ("main_dispatch_5_matmul_Dx64x576_f32", "dynamic loop ranges"),
])
def test_other_dispatches_have_no_flops_and_say_why(name: str, why: str) -> None:
    found, how = dispatch_flops(name)
    assert found is None and why in how


def _row() -> dict:
    top = [{"name": "main_dispatch_1_matmul_100x100x100_f32", "conv": True, "ms": 1.0},
           {"name": "main_dispatch_2_matmul_1x1000x2048_f32", "conv": False, "ms": 0.9},
           {"name": "main_dispatch_3_generic_8x8_f32", "conv": True, "ms": 0.5}]
    return {"name": "net", "section": "networks", "flops": 4_000_000_000,
            "threads": {"1": {"auto": {"median_ms": 40.0}}, "2": {"pytorch": {"median_ms": 1.0}}},
            "breakdown": {"1": {"top_dispatches": top}}}


def test_fraction_of_the_ceiling_overall_and_per_conv_dispatch() -> None:
    result = efficiency.of_row(_row(), {"1": 200.0, "2": 400.0})
    assert set(result) == {"1"}  # auto not timed at 2 threads
    e = result["1"]
    assert e["auto_gflops"] == pytest.approx(100.0) and e["auto_fraction"] == pytest.approx(0.5)
    first, second = e["conv_dispatches"]  # conv dispatches only, costliest first
    assert first["flops"] == 2_000_000 and first["gflops"] == pytest.approx(2.0)
    assert first["fraction"] == pytest.approx(0.01)
    assert second["flops"] is None and second["fraction"] is None and "generic" in second["flops_from"]


def test_no_ceiling_no_fractions() -> None:
    assert efficiency.of_row(_row(), {}) == {}


def test_the_markdown_prints_a_small_table_per_net() -> None:
    row = _row()
    row["efficiency"] = efficiency.of_row(row, {"1": 200.0})
    lines = "\n".join(output.ceiling_lines([row], "1"))
    assert "**net**, 1 thread: auto 100.0 GFLOP/s = 50.0% of the ceiling (200.0 GFLOP/s" in lines
    assert "| `main_dispatch_1_matmul_100x100x100_f32` | 1 | 1.00 | 0.002 | 2.0 | 1.0% |" in lines
    assert "| `main_dispatch_3_generic_8x8_f32` | 1 | 0.500 | — | — | — (`generic` is no contraction" in lines


def test_a_dispatch_run_several_times_per_call_counts_every_run() -> None:
    """resnet50's three 512-channel 3x3 convs at 7x7 share one dispatch function: its ms per
    call sums the 3 runs, so its FLOPs per call are 3 times those its name gives."""
    row = _row()
    row["breakdown"]["1"]["top_dispatches"][0]["runs"] = 3.0
    first = efficiency.of_row(row, {"1": 200.0})["1"]["conv_dispatches"][0]
    assert first["flops"] == 6_000_000 and first["gflops"] == pytest.approx(6.0) and "x 3 runs" in first["flops_from"]


def test_model_flops_count_convs_and_linears_of_one_eager_call() -> None:
    import torch

    from torch_grouped_conv.bench.workloads import model_flops

    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1, groups=4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(16 * 5 * 5, 10)).eval()
    conv = 2 * 16 * 5 * 5 * (8 // 4) * 3 * 3  # 2 x F x OH x OW x C/G x KH x KW
    linear = 2 * 400 * 10
    assert model_flops(model, [torch.randn(1, 8, 5, 5)]) == conv + linear
