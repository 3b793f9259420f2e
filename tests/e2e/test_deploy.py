"""Deploy: `tgc.save` writes an IREE module that runs with IREE's runtime
alone, for this machine or another one, with a sidecar recording how it was
made; `tgc.load(path)` runs it here with the same input checks; `threads=`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_grouped_conv as tgc
from tests.support.standalone import run_standalone
from torch_grouped_conv.runners import iree
from torch_grouped_conv.runners.iree_flags import flag_set
from torch_grouped_conv.runners.target import Target, host_arch


def mobilenet_like() -> torch.nn.Module:
    """A small MobileNet-style stack: stem, depthwise, pointwise, strided depthwise, pointwise."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.ReLU6(),
        torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.nn.ReLU6(),
        torch.nn.Conv2d(16, 24, 1),
        torch.nn.Conv2d(24, 24, 3, stride=2, padding=1, groups=24), torch.nn.ReLU6(),
        torch.nn.Conv2d(24, 32, 1),
    ).eval()


@pytest.fixture(scope="module")
def stack() -> tuple[torch.nn.Module, torch.Tensor, object]:
    model, x = mobilenet_like(), torch.randn(1, 3, 32, 32)
    return model, x, tgc.compile(model, x, grouped_conv="auto")


def expected(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).numpy()


def test_saved_module_runs_with_iree_runtime_alone(stack, tmp_path: Path) -> None:
    model, x, module = stack
    saved = tgc.save(module, tmp_path / "model.vmfb")
    assert saved.path.stat().st_size > 0 and saved.sidecar == tmp_path / "model.vmfb.json"
    np.testing.assert_allclose(run_standalone(saved.path, x.numpy()), expected(model, x), rtol=1e-4, atol=1e-5)


def test_sidecar_records_how_it_was_made(stack, tmp_path: Path) -> None:
    _, x, module = stack
    tgc.compile(mobilenet_like(), x, grouped_conv="auto")  # the report recorded is the last one
    saved = tgc.save(module, tmp_path / "model.vmfb")
    record = json.loads((tmp_path / "model.vmfb.json").read_text())
    assert record == saved.record
    assert record["entry"] == "main"
    assert record["signature"]["inputs"] == [{"shape": [1, 3, 32, 32], "dtype": "float32", "storage": "float32"}]
    assert record["signature"]["results"] == [{"shape": [1, 32, 8, 8], "dtype": "float32", "storage": "float32"}]
    assert record["iree_compile"]["flags"] == iree.IREE_TARGET_FLAGS + flag_set("data-tiling-global")
    assert record["iree_compile"]["command"].startswith("iree-compile ")
    assert " ".join(record["iree_compile"]["flags"]) in record["iree_compile"]["command"]
    assert record["iree_compile"]["retuned_dispatches"] == list(saved.compilation.retuned)
    assert record["target"]["host"] is True and record["target"]["arch"] == host_arch()
    assert record["versions"]["iree-base-compiler"] == "3.13.0" and record["versions"]["torch-mlir"]
    assert record["report"]["summary"].startswith("5 convolution(s), strategy=auto")
    assert sum(record["report"]["counts"].values()) == 5


def test_recorded_command_reproduces_the_module(stack, tmp_path: Path) -> None:
    """keep_source writes the exact iree-compile input; the recorded command,
    run by hand on it, gives the same bytes. This stack's depthwise convs are
    taps dispatches the runner retunes (runners/dispatch_tiles.py), so the
    command is the two iree-compile runs with the edit between them."""
    import shlex

    from iree.compiler.tools.binaries import find_tool

    _, _, module = stack
    saved = tgc.save(module, tmp_path / "model.vmfb", keep_source=True)
    assert saved.source == tmp_path / "model.vmfb.mlirbc" and saved.source.stat().st_size > 0
    assert saved.record["iree_compile"]["retuned_dispatches"], "the stack has taps dispatches to retune"
    steps = [shlex.split(step) for step in saved.command.split(" && ")]
    assert [step[0] for step in steps] == ["iree-compile", "python", "iree-compile"]
    assert steps[0][:2] == ["iree-compile", "model.vmfb.mlirbc"] and steps[2][2:4] == ["-o", "model.vmfb"]
    again = tmp_path / "again"
    again.mkdir()
    (again / "model.vmfb.mlirbc").write_bytes(saved.source.read_bytes())
    tools = {"iree-compile": find_tool("iree-compile"), "python": sys.executable}
    for step in steps:
        subprocess.run([tools[step[0]], *step[1:]], cwd=again, check=True, capture_output=True, timeout=300)
    assert (again / "model.vmfb").read_bytes() == saved.path.read_bytes()


def test_load_a_saved_module_checks_inputs(stack, tmp_path: Path) -> None:
    model, x, module = stack
    tgc.save(module, tmp_path / "model.vmfb", threads=1)
    run = tgc.load(tmp_path / "model.vmfb")
    assert run.program.threads == 1  # the count it was compiled for
    np.testing.assert_allclose(run(x)[0], expected(model, x), rtol=1e-4, atol=1e-5)
    with pytest.raises(tgc.InputError, match="input 0: dtype float64"):
        run(x.double())
    with pytest.raises(tgc.InputError, match="dim 2 must be 32"):
        run(torch.randn(1, 3, 33, 32))
    with pytest.raises(tgc.InputError, match="1 inputs given|2 inputs given"):
        run(x, x)


def test_load_refuses_a_changed_or_foreign_file(stack, tmp_path: Path) -> None:
    _, _, module = stack
    (tmp_path / "bare.vmfb").write_bytes(b"x")
    with pytest.raises(tgc.InputError, match="has no sidecar"):
        tgc.load(tmp_path / "bare.vmfb")
    saved = tgc.save(module, tmp_path / "model.vmfb")
    with pytest.raises(tgc.InputError, match="backend='iree'"):
        tgc.load(saved.path, backend="refbackend")
    record = json.loads(saved.sidecar.read_text())
    saved.path.write_bytes(saved.path.read_bytes() + b"\0")
    with pytest.raises(tgc.InputError, match="does not match its sidecar"):
        tgc.load(saved.path)
    with pytest.raises(tgc.InputError, match="does not exist"):
        tgc.load(tmp_path / "missing.vmfb")
    assert record["vmfb"] == "model.vmfb"


def test_dynamic_batch_is_recorded_and_accepted(tmp_path: Path) -> None:
    from torch.export import Dim

    conv = torch.nn.Conv2d(8, 16, 3, groups=4).eval()
    module = tgc.compile(conv, torch.randn(2, 8, 10, 10), grouped_conv="auto",
                         dynamic_shapes=({0: Dim("N", min=1, max=16)},))
    saved = tgc.save(module, tmp_path / "dyn.vmfb")
    assert saved.record["signature"]["inputs"][0]["shape"] == [None, 8, 10, 10]
    x = torch.randn(3, 8, 10, 10)
    np.testing.assert_allclose(tgc.load(saved.path)(x)[0], expected(conv, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run_standalone(saved.path, x.numpy()), expected(conv, x), rtol=1e-4, atol=1e-5)


def test_save_a_module_lowered_from_torch_ir(tmp_path: Path) -> None:
    """`lower` (raw torch IR) then the linalg pipeline: any frontend's module saves."""
    from torch_mlir import fx

    from torch_grouped_conv.stages import lower_to_linalg

    conv, x = torch.nn.Conv2d(16, 32, 3, groups=4).eval(), torch.randn(1, 16, 12, 12)
    raw = fx.export_and_import(conv, x, output_type="raw")
    report = tgc.lower(raw, "grouped")
    lower_to_linalg(raw)
    saved = tgc.save(raw, tmp_path / "lowered.vmfb", report=report)
    assert saved.record["report"]["counts"] == {"grouped": 1}
    np.testing.assert_allclose(tgc.load(saved.path)(x)[0], expected(conv, x), rtol=1e-4, atol=1e-5)


def test_torch_ir_is_refused_before_compiling(tmp_path: Path) -> None:
    conv, x = torch.nn.Conv2d(4, 8, 3).eval(), torch.randn(1, 4, 8, 8)
    with pytest.raises(tgc.InputError, match="torch IR"):
        tgc.save(tgc.compile(conv, x, output_type="torch"), tmp_path / "t.vmfb")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("triple", ["aarch64-unknown-linux-gnu", "riscv64-unknown-linux-gnu"])
def test_cross_compile_for_another_architecture(stack, tmp_path: Path, triple: str) -> None:
    _, _, module = stack
    saved = tgc.save(module, tmp_path / "cross.vmfb", target=Target(triple=triple))
    assert saved.path.stat().st_size > 1000
    assert f"--iree-llvmcpu-target-triple={triple}" in saved.record["iree_compile"]["flags"]
    assert "--iree-llvmcpu-target-cpu=generic" in saved.record["iree_compile"]["flags"]
    assert "--iree-global-opt-data-tiling" in saved.record["iree_compile"]["flags"]  # IREE data-tiles both
    assert saved.record["target"]["arch"] == triple.split("-")[0]
    assert saved.record["target"]["compiled_for"]["triple"] == triple
    if triple.startswith("riscv64"):  # RV64GC with the lp64d ABI, as Linux needs
        assert saved.record["target"]["compiled_for"]["features"] == "+m,+a,+f,+d,+c"
        assert "--iree-llvmcpu-target-abi=lp64d" in saved.record["iree_compile"]["flags"]
    if triple.split("-")[0] != host_arch():
        with pytest.raises(tgc.InputError, match="cannot run on this"):
            tgc.load(saved.path)
        with pytest.raises(tgc.InputError, match="cannot run on this"):
            tgc.load(module, backend="iree", target=Target(triple=triple))


@pytest.mark.skipif(host_arch() != "x86_64", reason="an x86-64 baseline CPU runs on x86-64 hosts only")
def test_baseline_x86_64_v3_runs_here(stack, tmp_path: Path) -> None:
    model, x, module = stack
    target = Target(cpu="x86-64-v3")
    saved = tgc.save(module, tmp_path / "v3.vmfb", target=target)
    assert "--iree-llvmcpu-target-cpu=x86-64-v3" in saved.record["iree_compile"]["flags"]
    assert "--iree-llvmcpu-target-cpu=host" not in saved.record["iree_compile"]["flags"]
    np.testing.assert_allclose(run_standalone(saved.path, x.numpy()), expected(model, x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(tgc.load(module, backend="iree", target=target)(x)[0], expected(model, x),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("target", "complaint"), [
    (Target(triple="bogus-unknown-nothing"), "createTargetMachine"),
    (Target(cpu="no-such-cpu"), "not a recognized processor|Unknown CPU"),
    (Target(triple="x86_64-unknown-linux-gnu", features="+no-such-feature"), "not a recognized feature"),
])
def test_a_target_the_compiler_cannot_build_is_one_clear_line(stack, tmp_path: Path, target: Target,
                                                              complaint: str) -> None:
    _, _, module = stack
    with pytest.raises(tgc.InputError, match=complaint) as error:
        tgc.save(module, tmp_path / "bad.vmfb", target=target)
    assert "\n" not in str(error.value) and "iree-compile cannot build for target" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_per_target_tuning() -> None:
    """Data tiling where IREE data-tiles for the architecture, not elsewhere."""
    from torch_mlir import ir

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse("func.func private @main(tensor<1x4x5x5xf32>) -> tensor<1x6x5x5xf32>")
        for triple in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "riscv64-unknown-linux-gnu"):
            assert iree.default_flags(module, Target(triple=triple)) == flag_set("data-tiling-global")
        assert iree.default_flags(module, Target(triple="wasm32-unknown-unknown")) == flag_set("default")


@pytest.mark.parametrize("threads", [1, None])
def test_threads_give_correct_results(stack, threads: int | None) -> None:
    """threads=1 and IREE's default here; threads=2 in a fresh process below."""
    model, x, module = stack
    program = tgc.load(module, backend="iree", threads=threads).program
    assert ("--iree-llvmcpu-number-of-threads=1" in program.compilation.flags) == (threads == 1)
    np.testing.assert_allclose(program(x.numpy())[0], expected(model, x), rtol=1e-4, atol=1e-5)


WORKERS = """
import os, sys, torch, numpy as np
import torch_grouped_conv as tgc
threads = int(sys.argv[1])
conv, x = torch.nn.Conv2d(16, 32, 3, groups=4).eval(), torch.randn(1, 16, 48, 48)
run = tgc.load(tgc.compile(conv, x, grouped_conv="auto"), backend="iree", threads=threads)
with torch.no_grad():
    np.testing.assert_allclose(run(x)[0], conv(x).numpy(), rtol=1e-4, atol=1e-5)
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
print(sum(n.startswith("iree-worker") for n in names))
print(" ".join(run.program.compilation.flags))
"""


@pytest.mark.parametrize(("threads", "workers"), [(1, 0), (2, 2)])
def test_threads_run_that_many_workers(threads: int, workers: int) -> None:
    """threads=1: local-sync, no worker thread; threads=2: local-task with 2 workers
    (a fresh process: IREE fixes the worker count once per process)."""
    done = subprocess.run([sys.executable, "-c", WORKERS, str(threads)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    count, flags = done.stdout.strip().splitlines()[-2:]
    assert int(count) == workers
    assert f"--iree-llvmcpu-number-of-threads={threads}" in flags.split()


def test_a_second_worker_count_in_one_process_is_refused() -> None:
    from torch_grouped_conv.runners.iree_flags import TaskWorkers

    if not TaskWorkers.fixed:
        iree.runtime_config("local-task")
    other = 7 if TaskWorkers.requested != 7 else 5
    with pytest.raises(tgc.InputError, match=f"threads={other}: this process's IREE local-task driver"):
        iree.program_config(other)
    with pytest.raises(tgc.InputError, match="positive integer"):
        iree.program_config(0)


@pytest.mark.skipif(host_arch() != "x86_64", reason="an x86-64 baseline CPU runs on x86-64 hosts only")
def test_torch_compile_target_and_threads_options() -> None:
    from torch_grouped_conv.frontends import dynamo

    tgc.register_dynamo_backend()
    torch._dynamo.reset()
    dynamo.reset_cache()
    model, x = mobilenet_like(), torch.randn(1, 3, 32, 32)
    fast = torch.compile(model, backend="torch_grouped_conv",
                         options={"target": {"cpu": "x86-64-v3"}, "threads": 1})
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    assert dynamo.STATS["compiled"] == 1 and not dynamo.STATS["fallbacks"]
    [compiled] = dynamo._CACHE.values()
    flags = compiled.program.program.compilation.flags
    assert "--iree-llvmcpu-target-cpu=x86-64-v3" in flags and "--iree-llvmcpu-number-of-threads=1" in flags
    torch._dynamo.reset()
    dynamo.reset_cache()


@pytest.mark.parametrize(("options", "complaint"), [
    ({"target": "x86-64-v3"}, "give a torch_grouped_conv.Target"),
    ({"target": {"cpu": "x86-64-v3"}, "runtime": "refbackend"}, "for runtime='iree'"),
    ({"target": {"triple": "riscv64-unknown-linux-gnu"}}, "cannot run on this machine"),
    ({"threads": 0}, "positive integer"),
])
def test_torch_compile_deploy_options_are_checked(options: dict, complaint: str) -> None:
    from torch_grouped_conv.frontends.dynamo import parse_options

    with pytest.raises(tgc.InputError, match=complaint):
        parse_options(options)


USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"


def test_usage_deploy_recipes_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/usage.md's Deploy section: its ```py blocks run as written, in order, in one
    namespace (```python blocks are the entry-point recipes of test_docs_recipes)."""
    import re

    text = USAGE.read_text()
    section = text[text.index("\n## Deploy"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    blocks = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 3, "the Deploy section lost its recipes"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(USAGE), "exec"), namespace)
    assert (tmp_path / "conv.vmfb.json").is_file() and (tmp_path / "arm.vmfb").stat().st_size > 0
