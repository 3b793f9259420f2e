"""Strategy emitters, registered per (strategy, case), and the selector that
picks the emitter for one convolution.

A strategy is a value of `grouped_conv=`. `grouped` is the default emitter set
of `emit.EMITTERS`; every other strategy registers the cases it has something
special for and reuses the default emitter for the others. A strategy may
decline a convolution (e.g. `split` with many groups): the default emitter is
used and the decline, with its reason, is noted in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..emit import EMITTERS, Emitter
from ..plan import Case, ConvPlan

DEFAULT_STRATEGY = "grouped"

STRATEGY_EMITTERS: dict[tuple[str, Case], Emitter] = {}

# strategy -> function returning a reason to decline, or None to accept.
Decliner = Callable[[ConvPlan], "str | None"]
DECLINERS: dict[str, Decliner] = {}

# `auto`'s rule: plan -> (strategy, why). Set by strategies/auto.py.
Picker = Callable[[ConvPlan], tuple[str, str]]
PICKERS: dict[str, Picker] = {}


@dataclass(frozen=True)
class Choice:
    """The emitter for one convolution: the strategy actually used and why."""

    strategy: str
    emitter: Emitter
    note: str | None = None


def emits(strategy: str, *cases: Case) -> Callable[[Emitter], Emitter]:
    """Register `fn` as `strategy`'s emitter for each of `cases`."""

    def register(fn: Emitter) -> Emitter:
        for case in cases:
            key = (strategy, case)
            if key in STRATEGY_EMITTERS:
                raise ValueError(f"{strategy}/{case} already has an emitter: {STRATEGY_EMITTERS[key].__name__}")
            STRATEGY_EMITTERS[key] = fn
        return fn

    return register


def declines(strategy: str) -> Callable[[Decliner], Decliner]:
    def register(fn: Decliner) -> Decliner:
        DECLINERS[strategy] = fn
        return fn

    return register


def choose(strategy: str, plan: ConvPlan) -> Choice:
    """The emitter `strategy` uses for `plan`, falling back to the default with a note."""
    default = EMITTERS[plan.case]
    if strategy != DEFAULT_STRATEGY and not plan.static_kernel:
        # Every alternative emitter unrolls or slices by kernel position: it needs k.
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: kernel size {list(plan.kernel)} is known "
                      f"only at run time; fell back to {DEFAULT_STRATEGY}")
    if strategy != DEFAULT_STRATEGY and None in plan.spec.padding:
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: padding {list(plan.spec.padding)} is known "
                      f"only at run time; fell back to {DEFAULT_STRATEGY}")
    if strategy in PICKERS:
        picked, why = PICKERS[strategy](plan)
        inner = choose(picked, plan)
        return Choice(inner.strategy, inner.emitter, f"{strategy}: {why}" + (f"; {inner.note}" if inner.note else ""))
    if strategy == DEFAULT_STRATEGY:
        return Choice(strategy, default)
    if not (plan.spec.input.is_static and plan.spec.result.is_static):
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: dynamic shape {list(plan.spec.input.shape)}; "
                      f"fell back to {DEFAULT_STRATEGY}")
    if plan.spec.spatial_rank != 2 or plan.spec.transposed or plan.spec.input.dtype not in ("f32", "f64"):
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: it covers 2D forward f32/f64 convolutions; "
                      f"fell back to {DEFAULT_STRATEGY}")
    reason = DECLINERS[strategy](plan) if strategy in DECLINERS else None
    if reason is not None:
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: {reason}; fell back to {DEFAULT_STRATEGY}")
    emitter = STRATEGY_EMITTERS.get((strategy, plan.case))
    if emitter is None:
        return Choice(strategy, default, f"{strategy} has nothing special for {plan.case}; default emitter")
    return Choice(strategy, emitter)
