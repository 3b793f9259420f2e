"""The fast strategies beyond 2D forward f32 (issue 9): `taps`, `im2col`,
`matmul` and `auto` on 1D and 3D convolutions, transposed convolutions (taps:
the phase decomposition), the channel multiplier (taps), and f16/bf16/f64.
Numbers on both backends against PyTorch eager; the op chain each new form
emits. Layout everywhere: input [N,C,*s], weight [F,C/G,*k] (transposed
[C,F/G,*k]).
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.export import Dim

import torch_grouped_conv as tgc
from tests.support.compiled import assert_close, check_matches_eager, compiled, load, op_names, print_ir
from tests.support.configs import ND_GRID, DynamicBatch, nd
from tests.support.tolerances import reference
from torch_grouped_conv import BACKENDS
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.emit.builders import NO_DATA_TILING
from torch_grouped_conv.rewrite.strategies.taps import MAX_GROUPED_TAPS

GRID = ND_GRID


# Which strategies have an emitter for each case (elsewhere: the default emitter, covered elsewhere).
STRATEGY_CASES = {
    "taps": ("depthwise", "grouped", "depthwise_multiplier"),
    "im2col": ("conv", "grouped", "depthwise_multiplier"),
    "matmul": ("conv",),
}


def untransposed(case: str) -> str:
    return case.removeprefix("transposed_")


RUNS = [(s, name) for s, cases in STRATEGY_CASES.items() for name, c in GRID.items()
        if untransposed(c.case) in cases and not (s == "taps" and "long" in name)]
RUNS += [("auto", name) for name in GRID]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("strategy", "config_name"), RUNS)
def test_matches_eager(strategy: str, config_name: str, backend: str) -> None:
    check_matches_eager(GRID[config_name], strategy, backend, config_name)


@pytest.mark.parametrize(("strategy", "config_name"), RUNS)
def test_strategy_is_not_declined(strategy: str, config_name: str) -> None:
    """Every run above goes through the strategy's own emitter (no fallback
    note). The report is the plugin's, whatever the output type: the module
    test_matches_eager runs is reused."""
    _, report = compiled(GRID[config_name], strategy)
    (decision,) = report.decisions
    assert "declined" not in (decision.note or ""), decision.note
    assert "default emitter" not in (decision.note or ""), decision.note


def emitted(config_name: str, strategy: str) -> Counter[str]:
    module, _ = compiled(GRID[config_name], strategy, "torch")
    return Counter(op_names(module))


NAMED = ("linalg.conv_1d_ncw_fcw", "linalg.conv_3d_ncdhw_fcdhw", "linalg.depthwise_conv_1d_ncw_cw",
         "linalg.depthwise_conv_2d_nchw_chw", "linalg.depthwise_conv_3d_ncdhw_cdhw", "linalg.conv_2d_ngchw_gfchw")


def bias_adds(config_name: str) -> int:
    """The elementwise bias-add generic emit_plan puts after every conv with a bias (builders.add_bias)."""
    return int(GRID[config_name].bias)


def ir_of(config_name: str, strategy: str) -> str:
    return print_ir(compiled(GRID[config_name], strategy, "torch")[0])


def test_taps_3d_op_chain() -> None:
    """3x3x3 depthwise: 27 input views + 27 [C] weight slices into one all-parallel generic."""
    counts = emitted("3d_dw_k3", "taps")
    assert counts["tensor.extract_slice"] == 2 * 27 and counts["linalg.generic"] == 1 + bias_adds("3d_dw_k3"), \
        ir_of("3d_dw_k3", "taps")
    assert counts["arith.mulf"] == 27 and counts["arith.addf"] == 27 + bias_adds("3d_dw_k3")
    assert not [op for op in NAMED if counts[op]] and "reduction" not in ir_of("3d_dw_k3", "taps")


def test_taps_1d_stride_deinterleaves_once() -> None:
    """1D stride 2: one de-interleave (a linalg.transpose of column pairs), then the tap generic (5 taps)."""
    counts = emitted("1d_dw_k5_s2", "taps")
    assert counts["linalg.transpose"] == 1, ir_of("1d_dw_k5_s2", "taps")
    assert counts["linalg.generic"] == 1 + bias_adds("1d_dw_k5_s2") and counts["arith.mulf"] == 5, ir_of("1d_dw_k5_s2", "taps")


def test_taps_deinterleave_cuts_unread_columns() -> None:
    """Stride 3, 11 padded columns: the 3 output columns' taps read columns 0-8
    (phases [3, 3]), so the input is cut to 9 columns (one more extract_slice)
    before the transpose; C/G = 2 x 9 taps."""
    counts = emitted("2d_grouped_k3_s3_cut", "taps")
    assert counts["linalg.transpose"] == 1 and counts["tensor.extract_slice"] == 2 * 18 + 1, \
        ir_of("2d_grouped_k3_s3_cut", "taps")


def test_multiplier_taps_op_chain() -> None:
    """groups = C, F = 2C: one generic over (n, c, j, *o), 27 taps, weight [F] -> [C, 2] per tap."""
    counts = emitted("3d_multiplier_m2", "taps")
    assert counts["linalg.generic"] == 1 + bias_adds("3d_multiplier_m2") and counts["arith.mulf"] == 27, \
        ir_of("3d_multiplier_m2", "taps")
    assert counts["tensor.expand_shape"] >= 27 and not [op for op in NAMED if counts[op]]


@pytest.mark.parametrize(("config_name", "phases", "products"), [
    # k=3, s=2 per dim: phases take {2, 1} taps -> 4+2+2+1 = 9 products, not 4*9.
    ("t2d_dw_k3_s2_op1", 4, 9),
    # k=4, s=2: 2 taps per phase.
    ("t1d_dw_k4_s2", 2, 4),
    # grouped C/G = 2: 2 * 9 products over the 4 phases.
    ("t2d_grouped_g4_s2", 4, 18),
    # k=3, d=2, s=3: tap offsets 0, 2, 4 fall in distinct phases: 9 phases of one tap.
    ("t2d_dw_k3_s3_d2", 9, 9),
])
def test_transposed_taps_phase_decomposition(config_name: str, phases: int, products: int) -> None:
    """One generic per output phase, each reading the undilated input with
    stride 1; the products total prod(k) * C/G, none on an inserted zero; one
    interleaving generic selects by phase (one arith.select per phase block)."""
    counts = emitted(config_name, "taps")
    text = ir_of(config_name, "taps")
    # + weight flip, interleave, accumulator add, bias add
    assert counts["linalg.generic"] == phases + 3 + bias_adds(config_name), text
    assert counts["arith.mulf"] == products and counts["arith.select"] == phases, text
    assert counts["tensor.concat"] == 0 and counts["tensor.insert_slice"] == 1, text  # the zero insertion only
    assert not [op for op in NAMED if counts[op]]


def test_transposed_phase_with_no_taps_is_bias_only() -> None:
    """k=2, s=3: per dim one of the 3 phases reads only inserted zeros, so 4 of
    the 9 phases carry one tap each; the other 5 emit no generic and are zeros in the interleave."""
    counts = emitted("t2d_dw_k2_s3", "taps")
    text = ir_of("t2d_dw_k2_s3", "taps")
    assert counts["arith.mulf"] == 4 and counts["arith.select"] == 4, text
    assert counts["linalg.generic"] == 4 + 3 + bias_adds("t2d_dw_k2_s3"), text


@pytest.mark.parametrize(("config_name", "strategy", "contractions"), [
    # k=3, s=2 per dim: phases take {2, 1} taps; C/G = 2 -> K = 8, 4, 4, 2
    ("t2d_grouped_g4_s2", "im2col", [8, 4, 4, 2]),
    # groups == 1, C = 6: the same phases, K = 6 * taps
    ("t2d_conv_k3_s2_op1", "matmul", [24, 12, 12, 6]),
    # k=4, s=2 in 1D: 2 taps per phase, C = 5
    ("t1d_conv_k4_s2", "matmul", [10, 10]),
    # k=3, d=2, s=3: tap offsets 0, 2, 4 fall in distinct phases: 9 one-tap phases, C/G = 4
    ("t2d_grouped_s3_d2", "im2col", [4] * 9),
])
def test_transposed_gemm_phase_decomposition(config_name: str, strategy: str, contractions: list[int]) -> None:
    """One batch_matmul per output phase with taps, K = C/G * (the phase's
    taps): the reductions sum to C/G * prod(k), so no product touches an
    inserted zero; no named conv; one interleaving select per phase."""
    module, _ = compiled(GRID[config_name], strategy, "torch")
    text = print_ir(module)
    counts = Counter(op_names(module))
    matmuls = [line for line in text.splitlines() if "linalg.batch_matmul" in line]
    found = sorted(int(line.split("ins(")[1].split("tensor<")[1].split("x")[2]) for line in matmuls)
    assert found == sorted(contractions), text
    assert counts["arith.select"] == len(contractions) and not [op for op in NAMED if counts[op]], text


def test_one_tap_phase_is_not_data_tiled() -> None:
    """groups == 1 phases are data-tiled like any groups == 1 GEMM, except the
    one-tap phase, whose weight is a plain slice of the flipped constant (see
    im2col.emit_im2col_phases)."""
    text = ir_of("t2d_conv_wide_k3_s2", "matmul")
    matmuls = [line for line in text.splitlines() if "linalg.batch_matmul" in line]
    untiled = [line for line in matmuls if NO_DATA_TILING in line]
    assert len(matmuls) == 4 and len(untiled) == 1 and "1x64x128xf32" in untiled[0], text


def test_im2col_long_1d_kernel_is_one_batch_matmul() -> None:
    """Conv1d k=16, groups=2, C/G=8: one im2col generic, one batch_matmul with K = 128."""
    counts = emitted("1d_grouped_long_k16", "im2col")
    text = ir_of("1d_grouped_long_k16", "im2col")
    assert counts["linalg.batch_matmul"] == 1 and counts["linalg.generic"] == 1 + bias_adds("1d_grouped_long_k16"), text
    assert "tensor<2x8x128xf32>" in text and counts["linalg.transpose"] == 2


def test_matmul_3d_1x1_is_one_matmul_per_batch_form() -> None:
    counts = emitted("3d_conv1x1", "matmul")
    text = ir_of("3d_conv1x1", "matmul")
    assert counts["linalg.generic"] == 1 + bias_adds("3d_conv1x1") and counts["linalg.conv_3d_ncdhw_fcdhw"] == 0, text
    assert ir_of("3d_conv1x1", "matmul").count('"reduction"') == 1


@pytest.mark.parametrize(("config_name", "strategy", "extf"), [
    ("f16_1d_grouped_g2", "taps", 2 * 4 * 3),  # both factors of C/G * k = 12 products
    ("bf16_3d_dw_k3", "taps", 2 * 27),
])
def test_half_precision_taps_extend_per_element_and_round_once(config_name: str, strategy: str, extf: int) -> None:
    counts = emitted(config_name, strategy)
    text = ir_of(config_name, strategy)
    assert counts["arith.extf"] >= extf and counts["arith.truncf"] == 1, text
    assert counts["linalg.generic"] <= 3 + bias_adds(config_name)


def test_half_precision_im2col_matmul_accumulates_in_f32() -> None:
    text = ir_of("f16_2d_grouped_cg16", "im2col")
    assert "linalg.batch_matmul" in text
    matmul_line = next(line for line in text.splitlines() if "linalg.batch_matmul" in line)
    assert "f16>, tensor<" in matmul_line and "f32>) -> tensor<" in matmul_line, matmul_line


def test_grouped_taps_decline_counts_per_group_products() -> None:
    c_in = 2 * (MAX_GROUPED_TAPS // 27 + 1)  # C/G * 27 > MAX_GROUPED_TAPS
    config = nd(3, c_in, c_in, 2, 3, padding=1, batch=1)
    tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="taps", output_type="torch")
    report = tgc.last_report()
    assert report is not None
    (decision,) = report.decisions
    products = c_in // 2 * 27
    assert decision.strategy == "grouped" and f"{products} products > {MAX_GROUPED_TAPS}" in (decision.note or "")


@pytest.mark.parametrize("strategy", ["split", "channels-last"])
def test_2d_only_strategies_decline_3d_with_the_rank(strategy: str) -> None:
    _, report = compiled(GRID["3d_grouped_g2"], strategy, "torch")
    (decision,) = report.decisions
    assert decision.strategy == "grouped"
    assert decision.note == (f"{strategy} declined: 3D convolution (it covers spatial ranks [2]); "
                             "fell back to grouped")



# Dynamic spatial dims (and a dynamic batch with them) through the fast forms: every
# view, generic, im2col matrix and reshape takes its sizes from tensor.dim.
# (config, strategy, the emitter that must run, {dim: (example, other sizes)}).
DYNAMIC_SPATIAL = [
    ("3d_dw_k3", "taps", "taps", {4: (4, (7, 3))}),
    # last-dim stride 2: the de-interleave's width from tensor.dim, the input padded by stride - 1
    ("1d_dw_k5_s2", "taps", "taps", {2: (13, (20, 7, 8))}),
    ("3d_dw_k3_s2", "auto", "taps", {3: (6, (9,)), 4: (4, (7, 6))}),
    ("3d_dw_k3", "auto", "taps", {2: (5, (3,)), 4: (4, (9,))}),
    ("1d_grouped_g2_d2", "taps", "taps", {0: (2, (1, 3)), 2: (13, (20, 6))}),
    ("3d_multiplier_m2", "taps", "taps", {3: (6, (11,))}),
    ("1d_grouped_long_k16", "im2col", "im2col", {2: (13, (40, 9))}),
    ("3d_grouped_g2", "im2col", "im2col", {2: (5, (8, 3))}),
    ("1d_conv1x1_s2", "matmul", "matmul", {2: (13, (21,))}),
    ("3d_conv1x1", "matmul", "matmul", {0: (2, (1,)), 3: (6, (10,)), 4: (4, (3,))}),
    ("1d_conv_k3_few", "matmul", "matmul", {2: (13, (30,))}),
    # transposed by output phase: block sizes ceil(O/s), the undilated input's size and the
    # read padding from tensor.dim
    ("t2d_grouped_g4_s2", "im2col", "im2col", {3: (9, (14, 5))}),
    ("t2d_conv_k3_s2_op1", "auto", "matmul", {0: (2, (1,)), 2: (7, (12,))}),
    ("t2d_dw_k3_s2_op1", "taps", "taps", {2: (7, (10, 4)), 3: (9, (5, 12))}),
    ("t2d_dw_k3_s3_d2", "auto", "taps", {3: (9, (13, 4))}),
    ("t3d_multiplier_s2", "taps", "taps", {4: (4, (7, 3))}),
]


def dynamic_spatial_id(case: tuple[str, str, str, dict[int, tuple[int, tuple[int, ...]]]]) -> str:
    return f"{case[0]}-{case[1]}-dims{''.join(map(str, case[3]))}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", DYNAMIC_SPATIAL, ids=dynamic_spatial_id)
def test_dynamic_spatial_matches_eager(case: tuple[str, str, str, dict[int, tuple[int, tuple[int, ...]]]],
                                       backend: str) -> None:
    """One compile with the dims dynamic; the example size and others, each against eager."""
    config_name, strategy, emitter, dims = case
    config = GRID[config_name]
    example = list(config.input_shape)
    for axis, (size, _) in dims.items():
        example[axis] = size
    eager = config.make_module().eval()
    torch.manual_seed(0)
    module = tgc.compile(eager, torch.randn(*example, dtype=config.dtype), grouped_conv=strategy,
                         dynamic_shapes=({axis: Dim(f"d{axis}", min=1 if axis == 0 else 3, max=64) for axis in dims},))
    calls = []
    for i in range(1 + max(len(others) for _, others in dims.values())):
        shape = list(example)
        for axis, (size, others) in dims.items():
            shape[axis] = ([size, *others])[min(i, len(others))]
        calls.append((i + 1, shape))
    check_dynamic_module(module, tgc.last_report(), emitter, backend, eager, config.dtype, calls, config_name)


def check_dynamic_module(module: object, report: RewriteReport | None, emitter: str, backend: str, eager: torch.nn.Module,
                         dtype: torch.dtype, calls: list[tuple[int, list[int]]], label: str) -> None:
    """One compiled dynamic module: `emitter` ran undeclined, IREE compiled it
    without warnings, and each call (seed, input shape) matches eager."""
    assert report is not None
    (decision,) = report.decisions
    assert decision.strategy == emitter and "declined" not in (decision.note or ""), decision.note
    program = load(module, backend)
    for seed, shape in calls:
        torch.manual_seed(seed)
        x = torch.randn(*shape, dtype=dtype)
        want = reference(eager, x)  # f16/bf16: an f64 computation
        (got,) = program(x)
        assert_close(got, want, f"{label} at {shape}")


def test_dynamic_spatial_im2col_sizes_from_tensor_dim() -> None:
    """A dynamic length stays `?` through the im2col matrix [G, K, P] and the GEMM."""
    config = GRID["1d_grouped_long_k16"]
    module = tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="im2col",
                         output_type="torch", dynamic_shapes=({2: Dim("L", min=3, max=64)},))
    text = print_ir(module)
    assert "tensor<2x128x?xf32>" in text and Counter(op_names(module))["linalg.batch_matmul"] == 1, text


# Dynamic batch through taps (the batch size from tensor.dim): forward, stride 2
# (de-interleave), grouped, multiplier, transposed by phase.
DYNAMIC_BATCH = ["1d_dw_k5_s2", "3d_dw_k3", "1d_grouped_g2_d2", "1d_multiplier_m2", "t2d_dw_k3_s2_op1",
                 "t2d_grouped_g4_s2"]


# Dynamic batch through the grouped GEMM and the matmul (P = N*prod(O) collapsed
# with N from tensor.dim): 1x1 strided, 3D 1x1, a long 1D kernel, grouped
# dilated, grouped transposed; (config, strategy, the emitter that must run).
DYNAMIC_BATCH_GEMM = [("1d_conv1x1_s2", "matmul", "matmul"), ("3d_conv1x1", "matmul", "matmul"),
                      ("1d_grouped_long_k16", "im2col", "im2col"), ("1d_grouped_g2_d2", "im2col", "im2col"),
                      ("t2d_grouped_g4_s2", "im2col", "im2col"), ("1d_grouped_long_k16", "auto", "im2col"),
                      ("t2d_conv1x1_s2", "matmul", "matmul")]
DYNAMIC_BATCH_CASES = [(name, strategy, "taps") for name in DYNAMIC_BATCH for strategy in ("taps", "auto")] + \
    DYNAMIC_BATCH_GEMM


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("config_name", "strategy", "emitter"), DYNAMIC_BATCH_CASES)
def test_dynamic_batch_matches_eager(config_name: str, strategy: str, emitter: str, backend: str) -> None:
    """One compile, batches 1, 3 and 2 (the export example), each against eager."""
    config = GRID[config_name]
    # an example batch of 1 would be specialized by torch.export
    module, report = compiled(DynamicBatch(config.replace(batch=max(2, config.batch)), max=8), strategy)
    calls = [(batch, [batch, *config.input_shape[1:]]) for batch in (1, 3, 2)]
    check_dynamic_module(module, report, emitter, backend, config.make_module().eval(), config.dtype, calls,
                         config_name)


def test_dynamic_batch_taps_sizes_from_tensor_dim() -> None:
    """The batch stays `?` through the taps generic; its size comes from tensor.dim."""
    config = GRID["1d_dw_k5_s2"]
    module = tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv="taps", output_type="torch",
                         dynamic_shapes=({0: Dim("N", min=1, max=8)},))
    counts = Counter(op_names(module))
    text = print_ir(module)
    assert counts["tensor.dim"] >= 1 and counts["arith.mulf"] == 5, text
    assert "tensor<?x6x7xf32>" in text, text  # the [N, C, Wo] tap views


def test_im2col_declines_grouped_transposed_1x1_and_the_fallback_compiles() -> None:
    """Found by the fuzz campaign: iree-compile 3.13 crashes on im2col's
    batch_matmul when the weight is a pure transpose (grouped transposed 1x1)."""
    config = nd(1, 9, 6, 3, 1, stride=2, padding=1, transposed=True, bias=False, batch=3)
    _, report = compiled(config, "im2col")
    (decision,) = report.decisions
    assert decision.strategy == "grouped"
    assert "im2col declined: transposed groups=3 with kernel [1]" in (decision.note or ""), decision.note
    check_matches_eager(config, "im2col", "iree", "grouped transposed 1x1")


def test_dynamic_spatial_transposed_keeps_the_phases() -> None:
    """A dynamic width leaves the phase decomposition as it is: one GEMM per
    phase (im2col) or one taps generic per phase, and the interleave."""
    config = GRID["t2d_grouped_g4_s2"]
    for strategy, op in (("im2col", "linalg.batch_matmul"), ("taps", "arith.select")):
        module = tgc.compile(config.make_module().eval(), config.make_input(), grouped_conv=strategy,
                             output_type="torch", dynamic_shapes=({3: Dim("W", min=3, max=64)},))
        counts = Counter(op_names(module))
        assert counts[op] == 4 and counts["arith.select"] == 4, print_ir(module)
        assert counts["tensor.dim"] >= 1 and not [named for named in NAMED if counts[named]], print_ir(module)
