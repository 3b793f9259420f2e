"""Which emitter a strategy uses for one convolution, and the report note that says why."""

from __future__ import annotations

from dataclasses import dataclass

from torch_grouped_conv.rewrite.emit.convolution import Emitter
from torch_grouped_conv.rewrite.plan import ConvPlan
from torch_grouped_conv.rewrite.strategies.strategy import DEFAULT_STRATEGY, REGISTRY, default_emitter


@dataclass(frozen=True)
class Choice:
    """The emitter for one convolution: the strategy actually used and why.

    `flat`: a strategy's own emitter, which takes the flat layout and, for a
    quantized plan, centered i32 operands; False for the default emitter of
    the case (grouped layout, `*_q` operands; see emit/convolution.py)."""

    strategy: str
    emitter: Emitter
    note: str | None = None
    flat: bool = False


def choose(strategy: str, plan: ConvPlan) -> Choice:
    """The emitter `strategy` uses for `plan`, falling back to the default with a note."""
    default = default_emitter(plan)
    if strategy != DEFAULT_STRATEGY:
        reason = _runtime_window(plan)
        if reason is not None:
            return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: {reason}; fell back to {DEFAULT_STRATEGY}")
    chosen = REGISTRY[strategy]
    if chosen.pick is not None:
        picked, why = chosen.pick(plan)
        inner = choose(picked, plan)
        return Choice(inner.strategy, inner.emitter, f"{strategy}: {why}" + (f"; {inner.note}" if inner.note else ""),
                      inner.flat)
    if strategy == DEFAULT_STRATEGY:
        return Choice(strategy, default)
    reason = chosen.refusal(plan)
    if reason is not None:
        return Choice(DEFAULT_STRATEGY, default, f"{strategy} declined: {reason}; fell back to {DEFAULT_STRATEGY}")
    emitter = chosen.emitter(plan)
    if emitter is None:
        return Choice(strategy, default, f"{strategy} has nothing special for {plan.case}; default emitter")
    return Choice(strategy, emitter, flat=True)


def _runtime_window(plan: ConvPlan) -> str | None:
    """Every emitter but the default unrolls or slices by kernel position: it needs k and the padding."""
    if not plan.static_kernel:
        return f"kernel size {list(plan.kernel)} is known only at run time"
    if None in plan.spec.padding:
        return f"padding {list(plan.spec.padding)} is known only at run time"
    return None
