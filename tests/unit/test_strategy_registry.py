"""The strategy registry: one `Strategy` per name, `STRATEGIES` in registration
order, the default with an emitter for every case (float and quantized)."""

from __future__ import annotations

import pytest

import torch_grouped_conv as tgc
from torch_grouped_conv.rewrite.plan import Case
from torch_grouped_conv.rewrite.strategies import QUANTIZED_STRATEGIES, STRATEGIES
from torch_grouped_conv.rewrite.strategies.strategy import DEFAULT_STRATEGY, REGISTRY, Strategy, register


def test_strategies_in_registration_order() -> None:
    assert STRATEGIES == tuple(REGISTRY) == tgc.STRATEGIES
    assert STRATEGIES[0] == DEFAULT_STRATEGY and STRATEGIES[-1] == "auto"
    named = ("grouped", "split", "channels-last", "im2col", "taps", "matmul", "auto")
    assert [s for s in STRATEGIES if s in named] == list(named)
    assert QUANTIZED_STRATEGIES == ("im2col",)


def test_default_has_every_case() -> None:
    default = REGISTRY[DEFAULT_STRATEGY]
    assert set(default.emitters) == set(Case) and set(default.quantized_emitters) == set(Case)


def test_only_auto_picks() -> None:
    assert [name for name, s in REGISTRY.items() if s.pick is not None] == ["auto"]
    assert all(s.emitters for name, s in REGISTRY.items() if name != "auto")


def test_register_rejects_a_second_strategy_of_one_name() -> None:
    with pytest.raises(ValueError, match="'taps' is already registered"):
        register(Strategy("taps"))
    assert REGISTRY["taps"].emitters


def test_register_rejects_a_picker_with_emitters() -> None:
    with pytest.raises(ValueError, match="picks other strategies"):
        register(Strategy("both", emitters=REGISTRY["matmul"].emitters, pick=lambda plan: ("grouped", "")))
    assert "both" not in REGISTRY
