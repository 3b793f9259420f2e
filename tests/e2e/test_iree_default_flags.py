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
    assert TUNED == "data-tiling-global"
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


def transposed_1x1_output_1():  # -> (torch module, its compiled ir.Module)
    """Fuzz seed 503's conv: transposed 1x1, groups 13, output length 1, dynamic batch (found with `grouped`)."""
    import torch
    from torch.export import Dim

    import torch_grouped_conv as tgc

    conv = torch.nn.ConvTranspose1d(91, 91, 1, stride=2, padding=2, groups=13).eval()
    return conv, tgc.compile(conv, torch.randn(2, 91, 3), grouped_conv="grouped",
                             dynamic_shapes=({0: Dim("N", min=1, max=8)},))


def test_default_flags_fall_back_without_data_tiling_on_its_known_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """iree-compile 3.13 fails on this module with data tiling through the
    dispatch-creation path (`data-tiling`: "exceeded stack allocation limit");
    the default global-optimization path compiles it data-tiled. With a
    failing default the runner compiles it without data tiling and says why;
    given explicitly, the failing flag is kept and the error raised."""
    import numpy as np
    import torch

    from torch_grouped_conv.errors import CompileError
    from torch_grouped_conv.runners import iree_flags

    conv, module = transposed_1x1_output_1()
    x = torch.randn(3, 91, 3)
    with torch.no_grad():
        want = conv(x).numpy()
    tuned = iree.IreeProgram(module)
    assert tuned.data_tiling_fallback is None and tuned.compile_warnings == ""
    np.testing.assert_allclose(tuned(x.numpy())[0], want, rtol=1e-5, atol=1e-5)

    monkeypatch.setattr(iree_flags, "TUNED", "data-tiling")
    assert iree.default_flags(module) == flag_set("data-tiling")
    with pytest.raises(CompileError, match="exceeded stack allocation limit"):
        iree.compile_module(module, flag_set("data-tiling"))
    program = iree.IreeProgram(module)
    assert program.data_tiling_fallback is not None and "exceeded stack allocation limit" in program.data_tiling_fallback
    assert program.compile_warnings == ""
    np.testing.assert_allclose(program(x.numpy())[0], want, rtol=1e-5, atol=1e-5)


def test_modules_that_compile_keep_data_tiling() -> None:
    import torch

    import torch_grouped_conv as tgc

    module = tgc.compile(torch.nn.Conv2d(4, 8, 3).eval(), torch.randn(1, 4, 8, 8))
    assert iree.IreeProgram(module).data_tiling_fallback is None
