"""`--strategies STRATEGY@FLAGSET`: parsing of the benchmark's variant names (pure functions)."""

from __future__ import annotations

from benchmarks.run import known_variant, main, variant_spec
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
