"""The taps dispatches' vector tiles (runners/dispatch_tiles.py): the rule on
configured generics as iree-compile 3.13 prints them, the text edit, and the
runner's two-phase compile on real convolutions (numbers against PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torch_grouped_conv as tgc
from torch_grouped_conv.runners import dispatch_tiles, iree
from torch_grouped_conv.runners.dispatch_tiles import ConfiguredGeneric, read_generic, retune_taps, taps_vector_sizes
from torch_grouped_conv.runners.retune import main as retune_main


def generic_line(loops: int, inputs: list[list[int]], distribution: list[int], vector: list[int],
                 iterators: str = "parallel") -> str:
    """One configured linalg.generic line in iree-compile's local-scope form."""
    dims = ", ".join(f"d{i}" for i in range(loops))

    def amap(results: list[int]) -> str:
        return f"affine_map<({dims}) -> ({', '.join(f'd{r}' for r in results)})>"

    maps = ", ".join(amap(r) for r in [*inputs, list(range(loops))])
    operands = ", ".join(f"%{i}" for i in range(len(inputs)))
    types = ", ".join("tensor<4xf32>" for _ in inputs)
    return (f'          %99 = linalg.generic {{indexing_maps = [{maps}], iterator_types = '
            f'[{", ".join([chr(34) + iterators + chr(34)] * loops)}]}} ins({operands} : {types}) '
            f'outs(%98 : tensor<4xf32>) attrs =  {{lowering_config = #iree_cpu.lowering_config<distribution = '
            f'[{", ".join(map(str, distribution))}], vector_common_parallel = [{", ".join(map(str, vector))}]>}} {{')


# grouped 3x3 taps over (g, f, oh, ow): 9 input views read (g, oh, ow), 9 weights (g, f), BN's 2 per-channel
GROUPED = ([[0, 2, 3]] * 9) + ([[0, 1]] * 9) + [[0, 1], [0, 1]]
# depthwise 3x3 over (c, oh, ow): 9 views, 9 per-channel weights (c)
DEPTHWISE = ([[0, 1, 2]] * 9) + ([[0]] * 9)
# channel-blocked taps over (c1, oh, ow, c0): the weights vary along the vector (c0)
BLOCKED = ([[0, 1, 2, 3]] * 9) + ([[0, 3]] * 9)


@pytest.mark.parametrize(("loops", "inputs", "distribution", "vector", "expected"), [
    (4, GROUPED, [1, 8, 28, 28], [1, 1, 1, 16], (1, 4, 2, 16)),  # 104g13@28²: f by 4, rows by 2
    (4, GROUPED, [1, 2, 28, 28], [1, 1, 1, 16], (1, 2, 2, 16)),  # f has 2 channels per group: capped
    (3, DEPTHWISE, [48, 56, 56], [1, 1, 16], (1, 4, 16)),  # depthwise: rows by 4
    (3, DEPTHWISE, [48, 2, 56], [1, 1, 16], (1, 2, 16)),  # a 2-row tile caps the unroll
    (3, DEPTHWISE, [48, 56, 56], [1, 2, 16], None),  # IREE already unrolls: left alone
    (4, [[0, 1, 2, 3]] * 9 + [[1]] * 9, [8, 48, 56, 56], [1, 1, 1, 16], (1, 1, 4, 16)),  # batch 8: n is no broadcast
    (4, [[0, 1, 2, 3]] * 27 + [[0]] * 27, [48, 8, 28, 28], [1, 1, 1, 16], (1, 1, 4, 16)),  # 3D depthwise (c, d, h, w)
    (4, [[0, 2, 3]] * 9 + [[0, 1]] * 9, [32, 2, 112, 112], [1, 1, 1, 16], (1, 2, 2, 16)),  # channel multiplier 2
    (4, BLOCKED, [30, 7, 7, 16], [1, 1, 1, 16], None),  # channel-blocked taps: measured no gain
    (3, DEPTHWISE[:4], [48, 56, 56], [1, 1, 16], None),  # too few inputs for a taps window
    (2, [[0, 1]] * 9 + [[0]] * 9, [48, 56], [1, 16], None),  # 1D: no row loop beside the vector
])
def test_the_rule(loops: int, inputs: list[list[int]], distribution: list[int], vector: list[int],
                  expected: tuple[int, ...] | None) -> None:
    read = read_generic(generic_line(loops, inputs, distribution, vector))
    assert read is not None
    generic, _ = read
    assert generic.input_dims == tuple(tuple(d) for d in inputs)
    assert taps_vector_sizes(generic) == expected


def test_reductions_and_other_lines_are_not_read_as_taps() -> None:
    reduction = generic_line(3, DEPTHWISE, [48, 56, 56], [1, 1, 16], iterators="reduction")
    read = read_generic(reduction)
    assert read is not None and not read[0].parallel and taps_vector_sizes(read[0]) is None
    assert read_generic("  %1 = linalg.mmt4d ins(%a, %b : ...) attrs = {lowering_config = "
                        "#iree_cpu.lowering_config<distribution = [1, 16], vector_common_parallel = [1, 16]>}") is None
    strided = generic_line(3, DEPTHWISE, [48, 56, 56], [1, 1, 16]).replace("-> (d0, d1, d2)>, affine_map",
                                                                           "-> (d0, d1 * 2, d2)>, affine_map", 1)
    assert read_generic(strided) is None  # not a projected permutation


def test_the_edit_changes_only_taps_configs() -> None:
    taps = generic_line(4, GROUPED, [1, 8, 28, 28], [1, 1, 1, 16])
    copy = generic_line(3, [[0, 1, 2]], [52, 28, 28], [1, 1, 16])  # a pad's copy: one input
    text = "\n".join(["module {", copy, taps, "}"])
    edited, retuned = retune_taps(text)
    assert [r.describe() for r in retuned] == ["vector tiles [1, 1, 1, 16] -> [1, 4, 2, 16]"]
    lines = edited.split("\n")
    assert lines[1] == copy and lines[0] == "module {" and lines[3] == "}"
    assert "vector_common_parallel = [1, 4, 2, 16]" in lines[2]
    assert lines[2].replace("[1, 4, 2, 16]", "[1, 1, 1, 16]") == taps
    assert retune_taps(edited)[1] == []  # applied once, nothing left to change


def test_the_edit_as_a_command(tmp_path) -> None:
    path = tmp_path / "configured.mlir"
    path.write_text(generic_line(3, DEPTHWISE, [48, 56, 56], [1, 1, 16]))
    assert retune_main([str(path)]) == 0
    assert "vector_common_parallel = [1, 4, 16]" in path.read_text()
    assert retune_main([str(tmp_path / "missing.mlir")]) == 2


def conv_bn_relu(channels: int, groups: int, kernel: int, stride: int) -> torch.nn.Module:
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=groups),
                                torch.nn.BatchNorm2d(channels), torch.nn.ReLU())
    with torch.no_grad():
        block[1].running_mean.uniform_(-0.5, 0.5)
        block[1].running_var.uniform_(0.5, 2.0)
    return block.eval()


@pytest.mark.parametrize(("channels", "groups", "spatial", "kernel", "stride", "retuned"), [
    (104, 13, 28, 3, 1, ["vector tiles [1, 1, 1, 16] -> [1, 4, 2, 16]"]),  # RegNet's grouped conv
    (48, 6, 30, 3, 2, None),  # grouped at stride 2 (de-interleaved rows), retuned
    (144, 144, 28, 3, 1, ["vector tiles [1, 1, 16] -> [1, 4, 16]"]),  # depthwise
    (96, 96, 20, 7, 1, None),  # ConvNeXt-like 7x7 depthwise
    (960, 960, 7, 3, 1, []),  # channel-blocked taps: IREE's tiles kept
    (32, 1, 14, 1, 1, []),  # a 1x1 conv: no taps generic, one iree-compile run
])
def test_runner_retunes_taps_dispatches_and_results_hold(channels: int, groups: int, spatial: int, kernel: int,
                                                         stride: int, retuned: list[str] | None) -> None:
    block = conv_bn_relu(channels, groups, kernel, stride)
    x = torch.randn(1, channels, spatial, spatial)
    module = tgc.compile(block, x, grouped_conv="auto")
    program = iree.IreeProgram(module, threads=1)
    if retuned is None:
        assert program.retuned_dispatches, "expected at least one retuned taps dispatch"
    else:
        assert list(program.retuned_dispatches) == retuned
    assert program.compile_warnings == ""
    with torch.no_grad():
        expected = block(x).numpy()
    np.testing.assert_allclose(program(x.numpy())[0], expected, rtol=1e-4, atol=1e-4)


def test_two_runs_without_an_edit_give_the_single_run_bytes() -> None:
    """A module with a taps-sized generic but nothing to retune (channel-blocked
    taps) goes through both runs; its bytes are the single run's, so the
    sidecar's one-step command still reproduces it."""
    block = conv_bn_relu(960, 960, 3, 1)
    x = torch.randn(1, 960, 7, 7)
    module = tgc.compile(block, x, grouped_conv="auto")
    done = iree.compile_for(module, keep_source=True)
    assert done.retuned == () and done.source is not None
    single = iree.invoke_iree_compile(done.source, list(done.flags))
    assert single.returncode == 0 and single.vmfb == done.vmfb


def test_a_failing_second_run_falls_back_to_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured text iree-compile refuses (here: an edit that breaks it) costs
    the retuning, not the module."""
    monkeypatch.setattr(iree, "retune_taps",
                        lambda text: ("not mlir", [dispatch_tiles.Retuned((1, 16), (4, 16))]))
    block = conv_bn_relu(104, 13, 3, 1)
    x = torch.randn(1, 104, 14, 14)
    program = iree.IreeProgram(tgc.compile(block, x, grouped_conv="auto"), threads=1)
    assert program.retuned_dispatches == ()
    with torch.no_grad():
        np.testing.assert_allclose(program(x.numpy())[0], block(x).numpy(), rtol=1e-4, atol=1e-4)


def test_configured_generic_is_a_plain_record() -> None:
    generic = ConfiguredGeneric((1, 8, 28, 28), (1, 1, 1, 16), tuple(tuple(d) for d in GROUPED), True)
    assert taps_vector_sizes(generic) == (1, 4, 2, 16)
