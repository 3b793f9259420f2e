"""`--strategies STRATEGY@FLAGSET` and `--threads`: parsing (pure functions)."""

from __future__ import annotations

import pytest

from torch_grouped_conv.bench.run import BenchUsageError, known_variant, main, parse_threads, variant_spec
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
