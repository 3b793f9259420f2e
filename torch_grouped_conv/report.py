"""The RewriteReport: one entry per `torch.aten.convolution` the plugin saw."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ConvDecision:
    """What happened to one convolution.

    `case` is the lowering taken (`conv`, `depthwise`, `grouped`, ..., prefixed
    `quantized_` and/or `transposed_`), or None when
    the op was refused; then `reason` says why and torch-mlir's own lowering
    handles the op. `strategy` is the strategy actually used for this op (it
    differs from the requested one when a strategy declined or `auto` picked);
    `note` says why.
    """

    location: str
    input_shape: list[int | None] | None
    weight_shape: list[int | None] | None
    groups: int | None
    case: str | None
    reason: str | None = None
    strategy: str | None = None
    note: str | None = None

    @property
    def lowered(self) -> bool:
        return self.case is not None


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

    def summary(self) -> str:
        """A few human-readable lines: counts per case, then each refusal."""
        if self.strategy is None:
            return "plugin off (grouped_conv=None): torch-mlir's own lowering handled every convolution"
        counts = ", ".join(f"{case}={n}" for case, n in self.counts().items()) or "none"
        lines = [self.input_note] if self.input_note else []
        lines += [f"{len(self.decisions)} convolution(s), strategy={self.strategy}: {counts}"]
        lines += [f"  refused at {d.location}: {d.reason}" for d in self.refused]
        lines += [f"  {d.strategy} at {d.location}: {d.note}" for d in self.lowered if d.note]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        as_dict = {
            "strategy": self.strategy,
            "counts": self.counts(),
            "decisions": [asdict(d) for d in self.decisions],
        }
        return {**as_dict, "input_note": self.input_note} if self.input_note else as_dict
