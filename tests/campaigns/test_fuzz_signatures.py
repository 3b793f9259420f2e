"""The signature campaign (tests/campaigns/fuzz_signatures.py) with a fixed
seed, kept small for `make test`: 6 random configs (static/AUTO/DYNAMIC dims,
sizes at output 1 and 0, every dtype, a strategy in rotation), each probed
with other sizes, the wrong dtype, rank and count, on both runners. The full
campaign: `python -m tests.campaigns.fuzz_signatures --examples 300`."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.campaigns.fuzz_signatures import Config, build, check_signature_config, probes, signature_configs

QUIET = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(derandomize=True, max_examples=6, **QUIET)
@given(signature_configs())
def test_every_call_matches_or_raises_a_package_error(config: Config) -> None:
    check_signature_config(config, ("refbackend", "iree"))


def test_probes_reach_output_sizes_1_and_0_and_every_wrong_input() -> None:
    """The probes of one config include the sizes making an output 1 and 0, and each wrong input."""
    config: Config = dict(rank=1, transposed=False, groups=2, in_per_group=2, out_per_group=1, kernel=[3], stride=[1],
                          dilation=[1], padding=[0], output_padding=[0], batch=2, spatial=[5], bias=True, dtype="f16",
                          strategy="auto", dims=["dynamic", "auto", "dynamic"])
    _, x = build(config)
    labels = [label for label, _ in probes(config, x)]
    assert {"dim 2 = 3", "dim 2 = 2", "wrong dtype", "wrong rank", "no input", "two inputs"} <= set(labels)
    counts = check_signature_config(config, ("refbackend",))
    assert counts["match"] >= 3 and counts["refused"] >= 5, counts
