"""The fuzz property (tests/campaigns/fuzz.py) with a fixed seed, kept cheap for CI:
20 random conv configs (rank 1-3, groups up to 16 with up to 8 channels per
group, stride/padding/dilation, 'same'/'valid', transposed with valid
output_padding, bias, f32/f64/f16/bf16, batched or unbatched, weights as
constants or inputs, dynamic batch/spatial/channel dims, a strategy in
rotation) on both runners; that the generator reaches every dimension it
claims; that each dimension switched off in `FEATURES` is lowered on a pinned
config; and the campaign's failures replayed with the strategy they failed
under. `make fuzz` runs the long campaign."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import torch_grouped_conv as tgc
from tests.campaigns.fuzz import (
    FEATURES,
    STRATEGIES,
    Config,
    build_all,
    check_config,
    conv_configs,
    dynamic_shapes,
    full,
    output_spatial,
)
from tests.support.cases_forms import FUZZ_REGRESSIONS

QUIET = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@settings(derandomize=True, max_examples=20, **QUIET)
@given(conv_configs())
def test_random_convolutions_match_pytorch(config: Config) -> None:
    check_config(config, ("refbackend", "iree"))


@pytest.mark.parametrize("config", [c for c, _ in FUZZ_REGRESSIONS if "strategy" in c],
                         ids=lambda c: f"{c['strategy']}-{'dyn' if c['dynamic_channels'] else 'static'}-{c['dtype']}")
def test_regression_with_its_strategy(config: Config) -> None:
    """A campaign failure replayed with the strategy it failed under (its e2e
    case, cov_fuzz_*, runs the default one)."""
    check_config(config, ("refbackend", "iree"))


def traits(c: Config) -> list[str]:
    """What a config exercises, as labels (for the coverage check below)."""
    labels = [f"strategy={c['strategy']}", f"rank={c['rank']}", f"dtype={c['dtype']}"]
    labels += [name for name in ("transposed", "unbatched", "weights_as_inputs", "dynamic_batch", "dynamic_channels",
                                 "dynamic_kernel", "bias") if c.get(name)]
    labels += ["dynamic_spatial"] if any(c["dynamic_spatial"]) else []
    labels += [f"padding={c['padding']}"] if isinstance(c["padding"], str) else []
    labels += ["groups>8"] if c["groups"] > 8 else []
    labels += ["8 per group"] if 8 in (c["in_per_group"], c["out_per_group"]) else []
    labels += ["unit output"] if c["batch"] == 1 and all(n == 1 for n in output_spatial(c)) else []
    return labels


def test_generator_reaches_every_dimension() -> None:
    """No compile: 600 draws cover every strategy and every dimension of the campaign."""
    seen: Counter[str] = Counter()

    @settings(derandomize=True, max_examples=600, **QUIET)
    @given(conv_configs())
    def collect(c: Config) -> None:
        seen.update(traits(c))

    collect()
    wanted = [f"strategy={s}" for s in STRATEGIES] + [f"rank={r}" for r in (1, 2, 3)]
    wanted += [f"dtype={d}" for d in ("f32", "f64", "f16", "bf16")] + ["padding=same", "padding=valid", "groups>8"]
    wanted += ["8 per group", "transposed", "unbatched", "weights_as_inputs", "dynamic_batch", "dynamic_channels",
               "dynamic_spatial", "bias", "unit output"]
    wanted += [name for name, on in FEATURES.items() if on]
    assert [w for w in wanted if not seen[w]] == [], dict(seen)


# One config per switched-off feature: a 2D grouped conv with the feature on.
FEATURE_CONFIGS: dict[str, Config] = {
    "dynamic_kernel": dict(rank=2, batch=1, groups=2, in_per_group=2, out_per_group=2, kernel=[3, 3], stride=[1, 1],
                           padding=[1, 1], dilation=[1, 1], transposed=False, output_padding=[0, 0], spatial=[6, 6],
                           bias=True, dtype="f32", dynamic_batch=False, weights_as_inputs=True, dynamic_kernel=True),
}


@pytest.mark.parametrize("feature", list(FEATURES))
def test_feature_config_is_lowered(feature: str) -> None:
    """Each switchable dimension's config is lowered by the plugin (no refusal),
    whether or not the campaign draws it (see FEATURES in tests/campaigns/fuzz.py)."""
    config = full(FEATURE_CONFIGS[feature])
    module, inputs = build_all(config)
    tgc.compile(module, *inputs, dynamic_shapes=dynamic_shapes(config), output_type="torch")
    report = tgc.last_report()
    assert report is not None and report.refused == [] and len(report.decisions) == 1, (
        report.summary() if report else "no report")


def test_dynamic_configs_run_a_second_larger_input() -> None:
    """A dynamic config is checked on its example and on inputs with every dynamic dim grown."""
    from tests.campaigns.fuzz import all_inputs

    config = full(dict(FEATURE_CONFIGS["dynamic_kernel"], dynamic_kernel=False, dynamic_channels=True,
                       dynamic_batch=True, batch=2, dynamic_spatial=[True, False]))
    module, _ = build_all(config)
    (x0, w0, b0), (x1, w1, b1) = all_inputs(config, module)
    assert (list(x0.shape), list(x1.shape)) == ([2, 4, 6, 6], [3, 6, 8, 6])
    assert (list(w0.shape), list(w1.shape)) == ([4, 2, 3, 3], [6, 3, 3, 3])
    assert (list(b0.shape), list(b1.shape)) == ([4], [6])
    assert module(x1, w1, b1).shape == torch.Size([3, 6, 8, 6])
