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

from torch_grouped_conv.rewrite.plan import Case, ConvPlan
from torch_grouped_conv.rewrite.strategies.grouped import Emitter
from torch_grouped_conv.rewrite.strategies.grouped_quantized import default_emitter

DEFAULT_STRATEGY = "grouped"

# Strategies whose emitters use only type-generic ops (copies, reshapes,
# named matmuls): given a quantized plan's operands centered to i32
# (q - zero point, see pattern.emit_plan) they compute its exact accumulator.
QUANTIZED_STRATEGIES = ("im2col",)

STRATEGY_EMITTERS: dict[tuple[str, Case], Emitter] = {}

# strategy -> function returning a reason to decline, or None to accept.
Decliner = Callable[[ConvPlan], "str | None"]
DECLINERS: dict[str, Decliner] = {}


@dataclass(frozen=True)
class Coverage:
    """Which convolutions a strategy's emitters handle; outside it the
    strategy declines (default emitter, with a note naming the parameter)."""

    ranks: tuple[int, ...] = (2,)
    transposed: bool = False
    dtypes: tuple[str, ...] = ("f32", "f64")
    dynamic_batch: bool = False  # a dynamic N (dim 0) is fine
    dynamic_spatial: bool = False  # dynamic spatial dims are fine (sizes from tensor.dim)

    def refusal(self, plan: ConvPlan) -> str | None:
        spec = plan.spec
        allowed = {0} if self.dynamic_batch else set()
        if self.dynamic_spatial:
            allowed |= set(range(2, 2 + spec.spatial_rank))
        if any(d is None and i not in allowed for info in (spec.input, spec.result) for i, d in enumerate(info.shape)):
            dims = ", ".join("?" if d is None else str(d) for d in spec.input.shape)
            static = ["channel"] + ([] if self.dynamic_spatial else ["spatial"])
            what = f"{' or '.join(static)} dims" if self.dynamic_batch else "shapes"
            return f"dynamic shape [{dims}] (its emitters size {what} statically)"
        if spec.spatial_rank not in self.ranks:
            return f"{spec.spatial_rank}D convolution (it covers spatial ranks {list(self.ranks)})"
        if spec.transposed and not self.transposed:
            return "transposed convolution (it covers forward ones)"
        if spec.input.dtype not in self.dtypes:
            return f"dtype {spec.input.dtype} (it covers {', '.join(self.dtypes)})"
        return None


# strategy -> what it covers; strategies not listed cover `Coverage()` (2D forward f32/f64, static).
COVERAGE: dict[str, Coverage] = {}

# What the quantized strategies cover: 2D forward, static shapes (the centered
# i32 operands are what was measured and tested; docs/design.md).
QUANTIZED_COVERAGE = Coverage(ranks=(2,), dtypes=("!torch.quint8", "!torch.qint8"))


def quantized_refusal(strategy: str, plan: ConvPlan) -> str | None:
    """Why `strategy` declines a quantized plan, or None."""
    if strategy not in QUANTIZED_STRATEGIES:
        return f"it covers f32/f64 convolutions (quantized: {', '.join(QUANTIZED_STRATEGIES)})"
    return QUANTIZED_COVERAGE.refusal(plan)


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
    default = default_emitter(plan)
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
    reason = quantized_refusal(strategy, plan) if plan.quant is not None else (
        COVERAGE.get(strategy, Coverage()).refusal(plan))
    if reason is None and strategy in DECLINERS:
        reason = DECLINERS[strategy](plan)
    if reason is not None:
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: {reason}; fell back to {DEFAULT_STRATEGY}")
    emitter = STRATEGY_EMITTERS.get((strategy, plan.case))
    if emitter is None:
        return Choice(strategy, default, f"{strategy} has nothing special for {plan.case}; default emitter")
    return Choice(strategy, emitter)
