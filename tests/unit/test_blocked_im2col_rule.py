"""When `im2col` writes its matrix in the GEMM's tiled layout (`im2col.blocking`):
a pure function of the plan, and the note `auto` reports for it."""

from __future__ import annotations

import pytest

from torch_grouped_conv.rewrite.plan import ConvPlan, plan_convolution
from torch_grouped_conv.rewrite.read.spec import ConvSpec, TensorInfo
from torch_grouped_conv.rewrite.strategies.auto import pick_strategy, pick_tuned
from torch_grouped_conv.rewrite.strategies.im2col import BLOCK, blocking
from torch_grouped_conv.rewrite.tuning import DEFAULT, INTEL_AVX512, tuned_for

BLOCKED_MIN_BYTES = DEFAULT.blocked_im2col_bytes  # the suite runs under `default` (tests/conftest.py)


def plan_1d(c: int, groups: int, kernel: int, length: int, dtype: str = "f32", batch: int | None = 1,
            transposed: bool = False) -> ConvPlan:
    """Conv1d(c, c, kernel, padding=kernel // 2, groups) on [batch, c, length] (batch None: dynamic)."""
    pad = kernel // 2
    out = length + 2 * pad - kernel + 1
    spec = ConvSpec(
        location="loc(unknown)",
        input=TensorInfo((batch, c, length), dtype),
        weight=TensorInfo((c, c // groups, kernel), dtype),
        result=TensorInfo((batch, c, out), dtype),
        has_bias=True, stride=(1,), padding=(pad,), dilation=(1,), output_padding=(0,), transposed=transposed,
        groups=groups,
    )
    planned = plan_convolution(spec)
    assert isinstance(planned, ConvPlan), planned
    return planned


def col_bytes(c: int, kernel: int, out: int) -> int:
    return 4 * c * kernel * out  # G * Cg * k * P f32 values


def test_wav2vec2_positional_conv_is_blocked() -> None:
    """768 channels, k = 128, groups 16, length 250 (output 251): a 94 MiB matrix."""
    tiles = blocking(plan_1d(768, 16, 128, 250))
    assert tiles is not None
    assert tiles.col_bytes == col_bytes(768, 128, 251)
    assert (tiles.m_tiles, tiles.n_tiles) == (3, 16)  # Fg = 48 = 3 tiles; 251 -> 16 tiles of 16
    strategy, why = pick_strategy(plan_1d(768, 16, 128, 250))
    assert strategy == "im2col" and "im2col matrix 94 MiB, written in 16x16 GEMM tiles (batch_mmt4d)" in why


def test_threshold_is_the_boundary() -> None:
    """k = 129 with padding 64 keeps the output length: the matrix is exactly c * 129 * L * 4 bytes."""
    c, kernel = 64, 129
    length = BLOCKED_MIN_BYTES // (4 * c * kernel)  # largest length below the threshold
    assert col_bytes(c, kernel, length) < BLOCKED_MIN_BYTES <= col_bytes(c, kernel, length + 1)
    assert blocking(plan_1d(c, 4, kernel, length)) is None
    assert blocking(plan_1d(c, 4, kernel, length + 1)) is not None
    assert "GEMM tiles" not in pick_strategy(plan_1d(c, 4, kernel, length))[1]


@pytest.mark.parametrize(("dtype", "batch", "transposed"), [
    ("f16", 1, False),
    ("f64", 1, False),
    ("f32", None, False),  # dynamic batch
    ("f32", 1, True),
])
def test_only_static_f32_forward_convs(dtype: str, batch: int | None, transposed: bool) -> None:
    assert blocking(plan_1d(768, 16, 128, 250, dtype=dtype, batch=batch, transposed=transposed)) is None


def test_rows_narrower_than_a_tile_stay_plain() -> None:
    """The last output dim below BLOCK would pad most of every tile: not blocked, however large."""
    narrow = plan_1d(4096, 1, 1023, BLOCK - 1)  # ~250 MiB matrix, rows of 15
    assert narrow.spec.result.shape[-1] == BLOCK - 1
    assert blocking(narrow) is None


def test_intel_tuning_tiles_from_4_mib() -> None:
    """Under `intel-avx512` the boundary is 4 MiB (resnet50's 7x7 stem: 7.4 MB), under `default` 32 MiB."""
    c, kernel = 64, 129
    length = INTEL_AVX512.blocked_im2col_bytes // (4 * c * kernel)
    assert col_bytes(c, kernel, length) < INTEL_AVX512.blocked_im2col_bytes <= col_bytes(c, kernel, length + 1)
    with tuned_for(INTEL_AVX512):
        assert blocking(plan_1d(c, 4, kernel, length)) is None
        assert blocking(plan_1d(c, 4, kernel, length + 1)) is not None
        assert "GEMM tiles" in pick_strategy(plan_1d(c, 4, kernel, length + 1))[1]
    assert blocking(plan_1d(c, 4, kernel, length + 1)) is None  # default: below 32 MiB
    assert blocking(plan_1d(c, 4, kernel, length + 1), INTEL_AVX512) is not None  # the tuning given wins
    assert "GEMM tiles" in pick_tuned(plan_1d(c, 4, kernel, length + 1), INTEL_AVX512)[1]
