"""`auto` per CPU family (rewrite/tuning.py).

Under `intel-avx512` the convs whose pick it moves (C/G = 16 grouped 3x3
convs -> taps, with BatchNorm + ReLU after them, stride 1 and 2, batch 1 and
2) compile to what the rule says and match PyTorch eager (f32 tolerance) on
both runners and an f64 computation; under `default` the same convs stay on
the grouped GEMM. Its tiled im2col from 4 MiB: a 7x7 stride-2 stem (7.4 MB
matrix) becomes one batch_mmt4d, checked the same way. Which
tuning applies: the host (/proc/cpuinfo), TGC_TUNING, `tuned_for`, the CLI's
`--target-cpu`. Layout: input [N,C,H,W], weight [F,C/G,3,3].
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import torch_grouped_conv as tgc
from tests.support.cli import model_source, run_cli
from tests.support.compiled import assert_close, load, op_names
from tests.support.configs import ConvConfig
from tests.support.tolerances import reference
from torch_grouped_conv import BACKENDS
from torch_grouped_conv.errors import InputError
from torch_grouped_conv.rewrite import tuning
from torch_grouped_conv.rewrite.tuning import DEFAULT, INTEL_AVX512, tuned_for
from torch_grouped_conv.runners.target import Target

# name: (config, its pick under default, under intel-avx512)
MOVED = {
    "grouped_cg16": (ConvConfig(c_in=64, c_out=64, groups=4, spatial=(12, 10)), "im2col", "taps"),
    "grouped_cg16_s2_b2": (ConvConfig(c_in=32, c_out=48, groups=2, stride=2, batch=2, spatial=(11, 11)), "im2col", "taps"),
    "grouped_cg16_f8_nobias": (ConvConfig(c_in=64, c_out=32, groups=4, bias=False, spatial=(7, 9)), "im2col", "taps"),
}


def compile_auto(model: torch.nn.Module, x: torch.Tensor, chosen: tuning.Tuning):
    with tuned_for(chosen):
        module = tgc.compile(model, x, grouped_conv="auto")
    report = tgc.last_report()
    assert report is not None
    return module, report


@pytest.mark.parametrize("name", list(MOVED))
def test_default_keeps_the_gemm(name: str) -> None:
    config, default, _ = MOVED[name]
    _, report = compile_auto(config.make_module().eval(), config.make_input(), DEFAULT)
    assert [d.strategy for d in report.decisions] == [default], report.summary()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MOVED))
def test_intel_pick_matches_eager_and_f64(name: str, backend: str) -> None:
    config, _, intel = MOVED[name]
    model = torch.nn.Sequential(config.make_module(), torch.nn.BatchNorm2d(config.c_out or config.c_in),
                                torch.nn.ReLU()).eval()
    torch.nn.init.uniform_(model[1].running_var, 0.5, 2.0)
    torch.nn.init.normal_(model[1].running_mean)
    x = config.make_input()
    module, report = compile_auto(model, x, INTEL_AVX512)
    (decision,) = report.decisions
    assert decision.strategy == intel and "intel-avx512 tuning" in (decision.note or ""), decision
    (actual,) = load(module, backend)(x)
    assert_close(actual, reference(model, x), f"{name} on {backend}")
    with torch.no_grad():
        wide = model.double()(x.double()).numpy()
    assert abs(actual.astype("float64") - wide).max() <= 1e-4 * max(1.0, abs(wide).max()), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_intel_tiles_the_stem_im2col(backend: str) -> None:
    """resnet50's stem (3 -> 64, 7x7 stride 2 at 224^2, + BN + ReLU): tiled under intel-avx512 only."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False), torch.nn.BatchNorm2d(64),
                                torch.nn.ReLU()).eval()
    torch.nn.init.uniform_(model[1].running_var, 0.5, 2.0)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    plain, report = compile_auto(model, x, DEFAULT)
    assert "GEMM tiles" not in (report.decisions[0].note or "")
    module, report = compile_auto(model, x, INTEL_AVX512)
    (decision,) = report.decisions
    assert decision.strategy == "matmul" and "im2col matrix 7 MiB, written in 16x16 GEMM tiles" in (decision.note or ""), \
        decision
    assert "linalg.batch_mmt4d" in op_names(module) and "linalg.batch_mmt4d" not in op_names(plain)
    (actual,) = load(module, backend)(x)
    assert_close(actual, reference(model, x), f"stem on {backend}")
    with torch.no_grad():
        wide = model.double()(x.double()).numpy()
    assert abs(actual.astype("float64") - wide).max() <= 1e-4 * max(1.0, abs(wide).max())


@pytest.mark.parametrize(("cpuinfo", "expected"), [
    ("vendor_id\t: GenuineIntel\nflags\t\t: fpu sse avx2 avx512f avx512bw\n", INTEL_AVX512),
    ("vendor_id\t: GenuineIntel\nflags\t\t: fpu sse avx2 fma\n", DEFAULT),  # no AVX-512 (client cores)
    ("vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512bw\n", DEFAULT),  # Zen 4
    ("", DEFAULT),
    # two processors: the first one's fields count
    ("vendor_id\t: GenuineIntel\nflags\t: avx512f\n\nvendor_id\t: AuthenticAMD\nflags\t: sse\n", INTEL_AVX512),
])
def test_family_from_cpuinfo(cpuinfo: str, expected: tuning.Tuning) -> None:
    assert tuning.from_cpuinfo(cpuinfo) == expected


@pytest.mark.parametrize(("target", "expected"), [
    (Target(triple="x86_64-unknown-linux-gnu", cpu="sapphirerapids"), INTEL_AVX512),
    (Target(triple="x86_64-unknown-linux-gnu", cpu="skylake-avx512"), INTEL_AVX512),
    (Target(triple="x86_64-unknown-linux-gnu", cpu="znver4"), DEFAULT),
    (Target(triple="x86_64-unknown-linux-gnu"), DEFAULT),  # generic x86-64
    (Target(cpu="x86-64-v3"), DEFAULT),
    (Target(triple="aarch64-unknown-linux-gnu", cpu="neoverse-n1"), DEFAULT),
])
def test_family_from_a_target(target: Target, expected: tuning.Tuning) -> None:
    assert target.tuning == expected


def test_host_target_follows_the_host() -> None:
    assert Target().tuning == tuning.host()


def test_context_then_environment_then_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tuning.ENV_VAR, raising=False)
    assert tuning.active() == tuning.host()
    monkeypatch.setenv(tuning.ENV_VAR, "intel-avx512")
    assert tuning.active() == INTEL_AVX512
    with tuned_for("default"):
        assert tuning.active() == DEFAULT
    assert tuning.active() == INTEL_AVX512
    monkeypatch.setenv(tuning.ENV_VAR, "zen9")
    with pytest.raises(InputError, match="unknown tuning 'zen9'; choose one of default, intel-avx512"):
        tuning.active()


def test_cli_target_cpu_picks_its_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compile -o X.vmfb --target-cpu`: the report names the target's tuning,
    whatever the host (and TGC_TUNING, which the suite pins)."""
    model_file = tmp_path / "g16.py"
    model_file.write_text(model_source("Conv2d(64, 64, 3, padding=1, groups=4)"))
    picks = {}
    for cpu in ("sapphirerapids", "znver4"):
        out, records = tmp_path / f"{cpu}.vmfb", tmp_path / f"{cpu}.json"
        code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,64,14,14", "-o", str(out),
                               "--target-triple", "x86_64-unknown-linux-gnu", "--target-cpu", cpu,
                               "--json", str(records))
        assert code == 0, err
        (conv,) = json.loads(records.read_text())["report"]["decisions"]
        picks[cpu] = (conv["strategy"], conv["why"])
    assert picks["sapphirerapids"][0] == "taps" and "intel-avx512 tuning" in picks["sapphirerapids"][1], picks
    assert picks["znver4"][0] == "im2col", picks


def test_cli_bad_tuning_is_one_line_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad TGC_TUNING: exit 2, one line naming the choices, nothing written, no export started."""
    monkeypatch.setenv(tuning.ENV_VAR, "zen9")
    model_file = tmp_path / "g16.py"
    model_file.write_text(model_source("Conv2d(64, 64, 3, padding=1, groups=4)"))
    out = tmp_path / "out.mlir"
    code, _, err = run_cli(capsys, "compile", f"{model_file}:make", "--input-shape", "1,64,14,14", "-o", str(out))
    assert code == 2 and not out.exists()
    assert err.strip() == "torch-grouped-conv: error: unknown tuning 'zen9'; choose one of default, intel-avx512"
