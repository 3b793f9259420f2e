"""`im2col` with a large f32 matrix writes it in the GEMM's tiled layout
(`im2col.blocking`, one linalg.batch_mmt4d): on both runners it matches
PyTorch eager, on the wav2vec2 positional conv it was measured on and on
forms that exercise the tiling's edges: F/G not a multiple of the tile
(zero weight rows), output rows not a multiple of it (padded columns,
cropped), batch 2, stride and dilation per dim, 3D, groups == 1 under
`matmul`. Below the threshold the same configs keep the plain batch_matmul."""

from __future__ import annotations

import pytest

from tests.support.compiled import check_matches_eager, compiled, op_names
from tests.support.configs import ConvConfig
from torch_grouped_conv import BACKENDS
from torch_grouped_conv.rewrite.tuning import DEFAULT

# name -> (config, the strategy `auto` picks for it)
CONFIGS: dict[str, tuple[ConvConfig, str]] = {
    # wav2vec2's positional conv embedding: 94 MiB
    "wav2vec2_posconv": (ConvConfig(c_in=768, groups=16, kernel=128, padding=64, spatial=(250,)), "im2col"),
    # Fg = 18 (two tiles, 14 zero rows), output 75 x 133 (133 = 8 tiles + 5), batch 2: 46 MiB
    "g4_b2_strided_dilated": (ConvConfig(c_in=40, c_out=72, groups=4, kernel=(5, 3), stride=(2, 1), padding=(2, 3),
                                         dilation=(1, 2), batch=2, spatial=(150, 131)), "im2col"),
    # r3d_18-like 3x3x3, groups == 1 (auto: `matmul`, im2col + GEMM), F = 40: 42 MiB
    "conv3d_g1": (ConvConfig(c_in=32, c_out=40, groups=1, spatial=(8, 40, 40), bias=False), "matmul"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_blocked_im2col_matches_eager(name: str, backend: str) -> None:
    config, strategy = CONFIGS[name]
    module, report = compiled(config, "auto")
    (decision,) = report.decisions
    assert decision.strategy == strategy and "GEMM tiles (batch_mmt4d)" in (decision.note or ""), decision
    names = op_names(module)
    assert names.count("linalg.batch_mmt4d") == 1 and "linalg.batch_matmul" not in names
    check_matches_eager(config, "auto", backend, name)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_below_the_threshold_the_gemm_stays_plain(name: str) -> None:
    """The same conv on a quarter of the length (or depth) along the first spatial dim: under 32 MiB."""
    config, strategy = CONFIGS[name]
    small = config.replace(spatial=(config.spatial[0] // 4, *config.spatial[1:]))
    module, report = compiled(small, "auto")
    (decision,) = report.decisions
    assert decision.strategy == strategy and "GEMM tiles" not in (decision.note or ""), decision
    names = op_names(module)
    assert "linalg.batch_mmt4d" not in names and "linalg.batch_matmul" in names
    assert DEFAULT.blocked_im2col_bytes == 32 << 20  # the suite's tuning (tests/conftest.py)
