"""The shape suite ships inside the package, identical to the project's shared copy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torch_grouped_conv.bench.shapes import DEFAULT_SHAPES, load_shapes

REPO = Path(__file__).resolve().parents[2]
# ../shared beside a checkout (/work/main -> /work/shared); a worktree one level deeper sees ../../shared.
SHARED_CANDIDATES = [REPO.parent / "shared" / "bench" / "shapes.json",
                     REPO.parent.parent / "shared" / "bench" / "shapes.json"]


def test_packaged_suite_is_inside_the_package_and_loads() -> None:
    assert DEFAULT_SHAPES.parent == REPO / "torch_grouped_conv" / "bench"
    assert len(load_shapes(DEFAULT_SHAPES, "core")) == 20 and len(load_shapes(DEFAULT_SHAPES, "extra")) == 10


def test_packaged_suite_is_identical_to_the_shared_one() -> None:
    shared = next((p for p in SHARED_CANDIDATES if p.is_file()), None)
    if shared is None:
        pytest.skip("no ../shared/bench/shapes.json beside this checkout")
    assert DEFAULT_SHAPES.read_bytes() == shared.read_bytes(), f"copy {shared} to {DEFAULT_SHAPES}"


def test_setup_py_ships_the_suite_as_package_data() -> None:
    setup = (REPO / "setup.py").read_text()
    assert re.search(r'package_data=\{[^}]*"torch_grouped_conv\.bench": \["shapes\.json"\]', setup)
