"""What a compiled module's dynamic dims may be: torch.export's ranges and
relations, carried on `@main` and checked by the runners before a call.

A dynamic dim is not "any size". torch.export traces a model under one range
per symbol (a conv with kernel 3 needs a width of at least 3: `s0` in
[3, oo)) and with dims tied to each other (`x.shape[1] == 2*s1 ==
w.shape[0]`). The compiled code assumes both; a call outside them computes
an empty or negative-sized result, or garbage, where PyTorch raises. The
torch.export frontend writes them on `@main` (`record_dim_constraints`, one
JSON string attribute, `CONSTRAINTS_ATTR`, which survives the lowering):

    {"dims": [[input, dim, symbol, scale, offset], ...],   # shape[input][dim] == scale*symbol + offset
     "ranges": {symbol: [min, max or null]}}

`read_dim_constraints` reads it back and `DimConstraints.problem` checks a
call's shapes. A dim whose expression is not `scale*symbol + offset` (one
symbol) is left unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch_mlir import ir

CONSTRAINTS_ATTR = "torch_grouped_conv.input_dim_constraints"


@dataclass(frozen=True)
class DimRule:
    """Dim `dim` of input `input` is `scale * symbol + offset`."""

    input: int
    dim: int
    symbol: str
    scale: int
    offset: int

    def size(self, value: int) -> int:
        return self.scale * value + self.offset

    def where(self) -> str:
        return f"input {self.input} dim {self.dim}"


@dataclass(frozen=True)
class DimConstraints:
    rules: tuple[DimRule, ...]
    ranges: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def problem(self, shapes: Sequence[Sequence[int]]) -> str | None:
        """What is wrong with a call's input shapes (None: nothing); shapes
        already have the module's ranks (Signature checks ranks first)."""
        values: dict[str, tuple[int, DimRule]] = {}
        for rule in sorted(self.rules, key=lambda r: (r.scale != 1 or r.offset != 0, r.input, r.dim)):
            n = shapes[rule.input][rule.dim]
            bound = values.get(rule.symbol)
            if bound is not None and rule.size(bound[0]) != n:
                first = bound[1]
                return (f"{rule.where()} is {n}, but {first.where()} is {shapes[first.input][first.dim]}: the module "
                        f"was compiled with {rule.where()} = {_expression(rule)} where {first.where()} = "
                        f"{_expression(first)}; pass sizes that agree")
            if bound is None and (n - rule.offset) % rule.scale == 0:
                values[rule.symbol] = ((n - rule.offset) // rule.scale, rule)
            elif bound is None:
                return (f"{rule.where()} is {n}, the module was compiled for {_expression(rule)} there; "
                        "pass a size of that form")
        return self._out_of_range(values, shapes)

    def _out_of_range(self, values: dict[str, tuple[int, DimRule]], shapes: Sequence[Sequence[int]]) -> str | None:
        for symbol, (value, rule) in values.items():
            low, high = self.ranges.get(symbol, (0, None))
            if value < low or (high is not None and value > high):
                top = "" if high is None else str(rule.size(high))
                return (f"{rule.where()} is {shapes[rule.input][rule.dim]}, the module was compiled for sizes "
                        f"{rule.size(low)}..{top} there (torch.export's range for it); pass a size in that range, "
                        "or export with a wider one")
        return None


def _expression(rule: DimRule) -> str:
    scaled = rule.symbol if rule.scale == 1 else f"{rule.scale}*{rule.symbol}"
    return scaled if rule.offset == 0 else f"{scaled} + {rule.offset}"


def record_dim_constraints(main: ir.Operation, constraints: DimConstraints) -> None:
    """Write `constraints` on the entry function `main` (nothing when there are no rules)."""
    if not constraints.rules:
        return
    text = json.dumps({"dims": [[r.input, r.dim, r.symbol, r.scale, r.offset] for r in constraints.rules],
                       "ranges": {s: list(r) for s, r in constraints.ranges.items()}})
    main.attributes[CONSTRAINTS_ATTR] = ir.StringAttr.get(text, context=main.context)


def read_dim_constraints(main: ir.Operation) -> DimConstraints | None:
    """The constraints written on `main`, or None (none recorded, or unreadable)."""
    if CONSTRAINTS_ATTR not in main.attributes:
        return None
    try:
        data = json.loads(ir.StringAttr(main.attributes[CONSTRAINTS_ATTR]).value)
        rules = tuple(DimRule(int(i), int(d), str(s), int(k), int(o)) for i, d, s, k, o in data["dims"])
        ranges = {str(s): (int(lo), None if hi is None else int(hi)) for s, (lo, hi) in data["ranges"].items()}
    except (ValueError, KeyError, TypeError):
        return None
    return DimConstraints(rules, ranges)
