"""The data-tiled GEMMs' distribution tiles (`iree_flags.matmul_tile_flags`):
the host's L2 read from sysfs, the flag it gives, what iree-compile 3.13 does
with it on a GEMM with 4 row tiles, and a conv compiled with it against PyTorch."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from iree.compiler.tools.binaries import find_tool

import torch_grouped_conv as tgc
from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.iree_flags import (
    MATMUL_TILE_FLAG,
    TUNED,
    flag_set,
    matmul_tile_flags,
    overriding_tile_bytes,
)
from torch_grouped_conv.runners.target import HOST, Target, host_l2_bytes, parse_cache_size

MIB = 1024 * 1024


@pytest.mark.parametrize(("text", "size"), [
    ("2048K", 2 * MIB), ("1M", MIB), ("512", 512), ("32K\n", 32 * 1024), ("", None), ("big", None), ("1.5M", None),
])
def test_sysfs_cache_sizes(text: str, size: int | None) -> None:
    assert parse_cache_size(text) == size


def fake_cache(root: Path, entries: list[tuple[str, str, str]]) -> str:
    for i, (level, kind, size) in enumerate(entries):
        index = root / f"index{i}"
        index.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (index / name).write_text(value + "\n")
    return str(root)


def test_host_l2_is_the_level_2_cache(tmp_path: Path) -> None:
    cpu = fake_cache(tmp_path, [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"),
                                ("3", "Unified", "105M")])
    assert host_l2_bytes.__wrapped__(cpu) == 2 * MIB
    (tmp_path / "l1only").mkdir()
    assert host_l2_bytes.__wrapped__(fake_cache(tmp_path / "l1only", [("1", "Data", "32K")])) is None
    assert host_l2_bytes.__wrapped__(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(("l2", "flags"), [
    (2 * MIB, [f"{MATMUL_TILE_FLAG}={MIB}"]), (4 * MIB, [f"{MATMUL_TILE_FLAG}={2 * MIB}"]),
    (MIB, []), (512 * 1024, []), (None, []),
])
def test_tile_bytes_are_half_an_l2_of_2_mib_or_more(l2: int | None, flags: list[str]) -> None:
    assert matmul_tile_flags(l2) == flags


def test_only_the_host_target_gets_the_flag() -> None:
    tile = [f for f in iree.target_flags(HOST) if f.startswith(MATMUL_TILE_FLAG)]
    l2 = host_l2_bytes()
    assert tile == ([f"{MATMUL_TILE_FLAG}={l2 // 2}"] if l2 is not None and l2 >= 2 * MIB else [])
    other = iree.target_flags(Target(triple="x86_64-unknown-linux-gnu", cpu="x86-64-v3"))
    assert not any(f.startswith(MATMUL_TILE_FLAG) for f in other)


def test_a_callers_tile_bytes_replace_the_hosts() -> None:
    base = ["--iree-llvmcpu-target-cpu=host", f"{MATMUL_TILE_FLAG}={MIB}"]
    assert overriding_tile_bytes(base, [f"{MATMUL_TILE_FLAG}=4096"]) == ["--iree-llvmcpu-target-cpu=host"]
    assert overriding_tile_bytes(base, ["--iree-global-opt-data-tiling"]) == base


GEMM = """func.func @main(%a: tensor<1x64x1728xf32>, %b: tensor<1x1728x4096xf32>) -> tensor<1x64x4096xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x64x4096xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x64x4096xf32>) -> tensor<1x64x4096xf32>
  %r = linalg.batch_matmul ins(%a, %b : tensor<1x64x1728xf32>, tensor<1x1728x4096xf32>)
    outs(%f : tensor<1x64x4096xf32>) -> tensor<1x64x4096xf32>
  return %r : tensor<1x64x4096xf32>
}
"""


def mmt4d_distribution(tmp_path: Path, extra: list[str]) -> list[int]:
    """The workgroup tiles iree-compile configures for the GEMM's batch_mmt4d."""
    source = tmp_path / "gemm.mlir"
    source.write_text(GEMM)
    flags = [*iree.DEVICE_FLAGS, "--iree-llvmcpu-target-cpu=host", "--iree-llvmcpu-number-of-threads=1",
             *flag_set(TUNED), *extra, "--compile-to=executable-configurations", "--mlir-print-local-scope"]
    text = subprocess.run([find_tool("iree-compile"), str(source), "-o", "-", *flags],
                          capture_output=True, text=True, check=True).stdout
    line = next(line for line in text.splitlines() if "batch_mmt4d" in line and "lowering_config" in line)
    found = re.search(r"distribution = \[([0-9, ]+)\]", line)
    assert found is not None, line
    return [int(v) for v in found.group(1).split(",")]


def test_one_mib_puts_the_row_tiles_of_a_long_gemm_in_one_workgroup(tmp_path: Path) -> None:
    """Why the flag: with IREE's default each workgroup takes one 16-row tile,
    so the 4 row tiles each stream the whole RHS; with 1 MiB one takes all 4."""
    default = mmt4d_distribution(tmp_path, [])
    tuned = mmt4d_distribution(tmp_path, matmul_tile_flags(2 * MIB))
    assert default[1] == 1 and tuned[1] > default[1], (default, tuned)


def test_a_conv_compiled_with_the_flag_matches_pytorch() -> None:
    """Correct whatever the host's L2: the flag given explicitly (a 4 MiB L2's)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.randn(1, 64, 28, 28)
    module = tgc.compile(conv, x, grouped_conv="auto")
    program = iree.IreeProgram(module, extra_flags=flag_set(TUNED) + matmul_tile_flags(4 * MIB), threads=1)
    with torch.no_grad():
        np.testing.assert_allclose(program(x.numpy())[0], conv(x).numpy(), rtol=1e-4, atol=1e-4)
