"""The RewriteReport: one entry per `torch.aten.convolution` the plugin saw."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Shape = Sequence[int | None]


@dataclass(frozen=True)
class ConvDecision:
    """What happened to one convolution.

    `case` is the lowering taken (`conv`, `depthwise`, `grouped`, ..., prefixed
    `quantized_` and/or `transposed_`), or None when
    the op was refused; then `reason` says why and torch-mlir's own lowering
    handles the op. `strategy` is the strategy actually used for this op (it
    differs from the requested one when a strategy declined or `auto` picked);
    `note` says why.

    `module_path` is where the op came from in the model: the PyTorch module
    (`features.1.conv.0.0`, as `model.named_modules()` names it) for models
    imported by `compile`, the name location torch-mlir gave the op otherwise;
    None when the op carries no name. Shapes are as the op has them (`None`
    for a dynamic dim); `flops` is 2 x the multiplications the convolution
    really does (see `conv_flops`), None with dynamic dims.
    """

    location: str
    input_shape: list[int | None] | None
    weight_shape: list[int | None] | None
    groups: int | None
    case: str | None
    reason: str | None = None
    strategy: str | None = None
    note: str | None = None
    module_path: str | None = None
    output_shape: list[int | None] | None = None
    dtype: str | None = None
    flops: int | None = None

    @property
    def lowered(self) -> bool:
        return self.case is not None

    @property
    def why(self) -> str | None:
        """The refusal's reason, or the strategy's note (e.g. what `auto` picked and why)."""
        return self.reason if self.reason is not None else self.note

    @property
    def name(self) -> str:
        """How messages name the op: its module path, else its location."""
        return self.module_path or self.location

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "why": self.why}


@dataclass
class RewriteReport:
    strategy: str | None
    decisions: list[ConvDecision] = field(default_factory=list)
    # Set by `lower` when its input was raw IR: which torch-backend pipeline ran first.
    input_note: str | None = None

    @property
    def lowered(self) -> list[ConvDecision]:
        return [d for d in self.decisions if d.lowered]

    @property
    def refused(self) -> list[ConvDecision]:
        return [d for d in self.decisions if not d.lowered]

    def counts(self) -> dict[str, int]:
        """Convolutions per case taken, plus `refused`."""
        counts = Counter(d.case or "refused" for d in self.decisions)
        return dict(sorted(counts.items()))

    def total_flops(self) -> int | None:
        """The sum of every decision's FLOPs; None if one is unknown (dynamic dims)."""
        flops = [d.flops for d in self.decisions]
        return None if None in flops else sum(f for f in flops if f is not None)

    def summary(self) -> str:
        """A few human-readable lines: counts per case (and per strategy used, when
        that differs from the requested one), then each refusal and each fallback
        note (`auto`'s reasons for its picks are in `to_dict()` / `--report`)."""
        if self.strategy is None:
            return "plugin off (grouped_conv=None): torch-mlir's own lowering handled every convolution"
        counts = ", ".join(f"{case}={n}" for case, n in self.counts().items()) or "none"
        lines = [self.input_note] if self.input_note else []
        lines += [f"{len(self.decisions)} convolution(s), strategy={self.strategy}: {counts}"]
        used = Counter(d.strategy for d in self.lowered)
        if set(used) - {self.strategy}:
            lines += ["  by strategy: " + ", ".join(f"{name}={n}" for name, n in sorted(used.items()))]
        lines += [f"  refused at {d.name}: {d.reason}" for d in self.refused]
        lines += [f"  {d.strategy} at {d.name}: {d.note}" for d in self.lowered if d.note and not _plain_pick(d.note)]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The report as JSON-ready data: one record per convolution (`decisions`,
        each with `why`), the counts and the total FLOPs."""
        as_dict = {
            "strategy": self.strategy,
            "counts": self.counts(),
            "total_flops": self.total_flops(),
            "decisions": [d.to_dict() for d in self.decisions],
        }
        return {**as_dict, "input_note": self.input_note} if self.input_note else as_dict


def _plain_pick(note: str) -> bool:
    """`auto`'s note for a pick that needed no fallback (shown by `--report`, not in the summary)."""
    return note.startswith("auto: ") and "fell back" not in note and "nothing special" not in note


def conv_flops(input_shape: Shape, weight_shape: Shape, output_shape: Shape, *, transposed: bool = False,
               stride: Sequence[int] = (), padding: Sequence[int | None] = (),
               dilation: Sequence[int] = ()) -> int | None:
    """FLOPs of one convolution (2 per multiply-add), None if a size is unknown.

    Layout as `aten.convolution` has it: input [N, C, *s], weight [F, C/G, *k]
    (forward) or [C, F/G, *k] (transposed), output [N, F, *o].

    Forward: 2 * N * F * (C/G) * prod(k) * prod(o) (padding taps counted, the
    usual convention). Transposed: only the real products, input element x
    weight tap, that land inside the output: per spatial dim, the pairs
    (i, j) with 0 <= i*stride - padding + j*dilation < o (the stride's
    inserted zeros and the cropped border are not counted).
    """
    x, w, y, pads = _ints(input_shape), _ints(weight_shape), _ints(output_shape), _ints(padding)
    if x is None or w is None or y is None:
        return None
    if not transposed:
        return 2 * x[0] * w[0] * w[1] * math.prod(w[2:]) * math.prod(y[2:])
    if pads is None:
        return None
    pairs = math.prod(_transposed_pairs(x[2 + d], w[2 + d], y[2 + d], stride[d], pads[d], dilation[d])
                      for d in range(len(x) - 2))
    return 2 * x[0] * x[1] * w[1] * pairs


def _ints(sizes: Sequence[int | None]) -> list[int] | None:
    """The sizes, or None if one is unknown."""
    known = [s for s in sizes if s is not None]
    return known if len(known) == len(sizes) else None


def _transposed_pairs(size: int, kernel: int, out: int, stride: int, padding: int, dilation: int) -> int:
    """#{(i, j): 0 <= i < size, 0 <= j < kernel, 0 <= i*stride - padding + j*dilation < out}."""
    total = 0
    for j in range(kernel):
        offset = j * dilation - padding  # input i lands at output position i*stride + offset
        first = max(0, _ceil_div(-offset, stride))
        last = min(size - 1, (out - 1 - offset) // stride)
        total += max(0, last - first + 1)
    return total


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def render_table(report: RewriteReport) -> Any:
    """The report as a rich Table: one row per convolution (what `to_dict()`
    holds, shapes as input -> output, the weight and dtype in the title)."""
    from rich.table import Table

    dtypes = sorted({d.dtype for d in report.decisions if d.dtype})
    total = report.total_flops()
    table = Table(title=f"{len(report.decisions)} convolution(s), strategy={report.strategy}, "
                        f"dtype {'/'.join(dtypes) or '?'}, "
                        f"total {'?' if total is None else f'{total / 1e6:.1f}'} MFLOPs", title_justify="left")
    for column in ("#", "module", "case", "strategy", "input -> output", "weight", "MFLOPs", "why"):
        table.add_column(column, justify="right" if column in ("#", "MFLOPs") else "left",
                         no_wrap=column != "why", overflow="fold", min_width=16 if column == "why" else None)
    for i, d in enumerate(report.decisions):
        table.add_row(str(i), d.name, d.case or "[red]refused[/red]", d.strategy or "",
                      f"{_shape(d.input_shape)} -> {_shape(d.output_shape)}", _shape(d.weight_shape),
                      "?" if d.flops is None else f"{d.flops / 1e6:.2f}", (d.why or "").removeprefix("auto: "))
    return table


def _shape(shape: Sequence[int | None] | None) -> str:
    return "?" if shape is None else "x".join("?" if s is None else str(s) for s in shape)
