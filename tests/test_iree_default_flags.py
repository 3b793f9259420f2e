"""The `iree` runner compiles with the `TUNED` flag set unless given flags."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from torch_mlir import ir

from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.iree_flags import TUNED, TUNED_DYNAMIC, flag_set


def compile_command(iree_command: Callable[..., list[str]], extra_flags: list[str] | None) -> list[str]:
    with ir.Context(), ir.Location.unknown():
        return iree_command(ir.Module.create(), extra_flags)


def test_default_is_tuned(iree_command: Callable[..., list[str]]) -> None:
    assert TUNED == "data-tiling"
    command = compile_command(iree_command, None)
    assert command[-len(flag_set(TUNED)):] == flag_set(TUNED)
    assert all(flag in command for flag in iree.IREE_TARGET_FLAGS)


def test_explicit_flags_replace_the_default(iree_command: Callable[..., list[str]]) -> None:
    assert not set(flag_set(TUNED)) & set(compile_command(iree_command, []))
    assert compile_command(iree_command, ["--iree-opt-level=O2"])[-1] == "--iree-opt-level=O2"



@pytest.mark.parametrize(("signature", "dynamic"), [
    ("(tensor<?x4x5x5xf32>) -> tensor<?x6x5x5xf32>", False),  # a dynamic batch keeps data tiling
    ("(tensor<1x?x5x5xf32>, i64) -> tensor<1x6x5x5xf32>", True),
    ("(tensor<2x4x5x5xf32>) -> tensor<2x6x5x?xf32>", True),
])
def test_dynamic_inner_dims_compile_without_data_tiling(signature: str, dynamic: bool) -> None:
    """TUNED_DYNAMIC (see iree_flags) for modules with a dynamic dim past the leading one."""
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(f"func.func private @main{signature}")
        assert iree.has_dynamic_inner_dims(module) is dynamic
        assert iree.default_flags(module) == flag_set(TUNED_DYNAMIC if dynamic else TUNED)
