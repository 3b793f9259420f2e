"""`--strategies STRATEGY@FLAGSET` and `--threads`: parsing (pure functions)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.bench import knobs
from torch_grouped_conv.bench.run import (
    BenchUsageError,
    compile_threads,
    known_variant,
    main,
    parse_threads,
    variant_spec,
)
from torch_grouped_conv.runners.iree_flags import flag_set


def test_plain_strategy_uses_the_run_flags() -> None:
    assert variant_spec("taps", ["--x"]) == ("taps", "taps", ["--x"])


def test_flag_set_suffix_overrides_the_run_flags() -> None:
    assert variant_spec("auto@data-tiling", []) == ("auto@data-tiling", "auto", flag_set("data-tiling"))
    assert variant_spec("upstream@default", ["--x"]) == ("upstream@default", None, [])


def test_known_variants() -> None:
    assert known_variant("matmul") and known_variant("im2col@fuse-pad") and known_variant("upstream@default")
    assert not known_variant("upstream")  # the baseline is always there; only upstream@FLAGS is extra
    assert not known_variant("auto@nope") and not known_variant("nope@default") and not known_variant("nope")


def test_unknown_variant_is_a_usage_error(capsys) -> None:
    assert main(["--strategies", "auto@nope", "--smoke", "--no-models"]) == 2
    assert "unknown strategies ['auto@nope']" in capsys.readouterr().err


def test_threads() -> None:
    assert parse_threads("1,2") == [1, 2] and parse_threads("2") == [2] and parse_threads("1,1,4") == [1, 1, 4]
    for bad in ("", "x", "0", "1,-2", "2,3"):
        with pytest.raises(BenchUsageError):
            parse_threads(bad)


def test_knobs_add_compile_and_runtime_flags() -> None:
    assert variant_spec("auto+threads=2", ["--x"]) == ("auto+threads=2", "auto",
                                                      ["--x", "--iree-llvmcpu-number-of-threads=2"])
    label, strategy, flags = variant_spec("upstream@default+tile-bytes=65536+spin-us=50", ["--x"])
    assert strategy is None and flags == ["--iree-llvmcpu-matmul-tile-bytes=65536", "--task_worker_spin_us=50"]
    assert knobs.split_runtime(flags) == (["--iree-llvmcpu-matmul-tile-bytes=65536"], ["--task_worker_spin_us=50"])
    assert knobs.runtime_defaults(["--task_worker_spin_us=50"]) == ["--task_worker_spin_us=0"]


def test_known_knob_variants() -> None:
    assert known_variant("auto+threads=2") and known_variant("upstream+spin-us=0")
    assert known_variant("auto@default+tile-bytes=1024")
    assert not known_variant("auto+nope=1") and not known_variant("auto+threads=x")
    assert not known_variant("auto+threads") and not known_variant("nope+threads=2")
    assert not known_variant("auto@nope+threads=2")


def test_a_runtime_knob_gets_its_own_local_task_device() -> None:
    from torch_grouped_conv.bench.variants import knob_config
    from torch_grouped_conv.runners.iree import runtime_config

    spun = knob_config("local-task", ["--task_worker_spin_us=50"])
    assert spun.device is knob_config("local-task", ["--task_worker_spin_us=50"]).device  # one per flags
    assert spun.device is not runtime_config("local-task").device


def test_a_process_with_another_worker_count_is_a_usage_error(monkeypatch, capsys, tmp_path) -> None:
    from torch_grouped_conv.runners.iree_flags import TaskWorkers

    monkeypatch.setattr(TaskWorkers, "fixed", True)
    monkeypatch.setattr(TaskWorkers, "requested", 2)
    assert main(["--smoke", "--threads", "1,3", "--out-dir", str(tmp_path)]) == 2
    assert "already runs 2 workers" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_variants_are_compiled_for_the_run_threads_unless_a_knob_says_otherwise() -> None:
    run_flags = ["--x", "--iree-llvmcpu-number-of-threads=2"]
    thread_flags = ["--iree-llvmcpu-number-of-threads=2"]
    assert variant_spec("auto@default", run_flags, thread_flags)[2] == thread_flags
    assert variant_spec("auto+threads=1", run_flags, thread_flags)[2] == ["--x", "--iree-llvmcpu-number-of-threads=1"]
    assert compile_threads(0) is None and compile_threads(2) == 2  # 0: IREE's default (8)
    with pytest.raises(BenchUsageError, match="--compile-threads -1"):
        compile_threads(-1)


def test_tuning_variants() -> None:
    """`auto:TUNING` (rewrite/tuning.py): auto only, a known tuning, with flag sets and knobs too."""
    assert known_variant("auto:default") and known_variant("auto:intel-avx512@default+tile-bytes=1024")
    assert not known_variant("taps:default") and not known_variant("auto:zen9") and not known_variant("auto:")
    assert variant_spec("auto:intel-avx512", ["--x"]) == ("auto:intel-avx512", "auto:intel-avx512", ["--x"])
