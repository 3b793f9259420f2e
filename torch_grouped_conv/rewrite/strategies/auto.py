"""`auto`: pick a strategy per convolution (rule from the benchmark, see
docs/performance.md). Placeholder rule until measured."""

from __future__ import annotations

from ..plan import Case, ConvPlan
from .registry import PICKERS


def pick_strategy(plan: ConvPlan) -> tuple[str, str]:
    """(strategy, why) for one convolution."""
    if plan.case is Case.DEPTHWISE:
        return "channels-last", "depthwise: NHWC depthwise vectorizes along channels"
    return "channels-last", "default"


PICKERS["auto"] = pick_strategy
