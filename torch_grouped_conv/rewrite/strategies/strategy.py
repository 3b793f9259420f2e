"""The `Strategy` object and the registry of strategies (the values of `grouped_conv=`).

A strategy is one frozen `Strategy`, declared by its module next to its
emitters and registered once with `register`. `grouped` is the default: an
emitter for every case, float and quantized. Every other strategy has
emitters for the cases it has something special for (the default emitter
serves the others), covers some convolutions (`Coverage`) and may decline
one (`decline`, e.g. `split` with many groups): the default emitter is then
used and the decline, with its reason, noted in the report (`choice.choose`).
`auto` has no emitters: its `pick` names the strategy for each convolution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch_grouped_conv.rewrite.emit.convolution import Emitter
from torch_grouped_conv.rewrite.plan import Case, ConvPlan

DEFAULT_STRATEGY = "grouped"

# A plan -> why the strategy declines it, or None to accept.
Decliner = Callable[[ConvPlan], "str | None"]
# `auto`'s rule: a plan -> (strategy, why).
Picker = Callable[[ConvPlan], tuple[str, str]]


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


# What a strategy that takes quantized plans covers of them: 2D forward, static
# shapes (the centered i32 operands are what was measured and tested; docs/design.md).
QUANTIZED_COVERAGE = Coverage(ranks=(2,), dtypes=("!torch.quint8", "!torch.qint8"))


@dataclass(frozen=True)
class Strategy:
    """One value of `grouped_conv=`.

    `emitters`: the strategy's own emitter per case (`Emitter`, flat layout,
    see emit/convolution.py); `coverage`: the float convolutions they handle;
    `decline`: a further reason to leave a plan to the default emitter;
    `pick`: for `auto`, the strategy to use per plan (then no emitters);
    `quantized`: whether it takes quantized plans (its emitters then get
    i32 operands centered on their zero points, an exact integer conv, and
    `QUANTIZED_COVERAGE` applies); `quantized_emitters`: the default's own
    quantized emitter per case (`grouped` only: `*_q` ops on the stored i8).
    """

    name: str
    emitters: Mapping[Case, Emitter] = field(default_factory=dict)
    coverage: Coverage = Coverage()
    decline: Decliner | None = None
    pick: Picker | None = None
    quantized: bool = False
    quantized_emitters: Mapping[Case, Emitter] = field(default_factory=dict)

    def emitter(self, plan: ConvPlan) -> Emitter | None:
        """This strategy's own emitter for `plan`, or None (nothing special for its case)."""
        if plan.quant is not None and self.quantized_emitters:
            return self.quantized_emitters.get(plan.case)
        return self.emitters.get(plan.case)

    def refusal(self, plan: ConvPlan) -> str | None:
        """Why this strategy declines `plan` (coverage, then `decline`), or None."""
        if plan.quant is not None:
            if not self.quantized:
                return f"it covers f32/f64 convolutions (quantized: {', '.join(quantized_strategies())})"
            reason = QUANTIZED_COVERAGE.refusal(plan)
        else:
            reason = self.coverage.refusal(plan)
        if reason is None and self.decline is not None:
            reason = self.decline(plan)
        return reason


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add `strategy` to the registry (registration order is `STRATEGIES`' order); a name is registered once."""
    if strategy.name in REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} is already registered")
    if strategy.pick is not None and (strategy.emitters or strategy.quantized_emitters):
        raise ValueError(f"strategy {strategy.name!r} picks other strategies: it has no emitters of its own")
    REGISTRY[strategy.name] = strategy
    return strategy


def strategy_names() -> tuple[str, ...]:
    """Every registered strategy, in registration order."""
    return tuple(REGISTRY)


def quantized_strategies() -> tuple[str, ...]:
    """The strategies besides the default whose emitters take quantized plans."""
    return tuple(name for name, s in REGISTRY.items() if s.quantized and name != DEFAULT_STRATEGY)


def default_emitter(plan: ConvPlan) -> Emitter:
    """The default strategy's emitter for `plan` (it has one per case, float and quantized)."""
    emitter = REGISTRY[DEFAULT_STRATEGY].emitter(plan)
    assert emitter is not None, f"{DEFAULT_STRATEGY} has an emitter for every case ({plan.case})"
    return emitter
