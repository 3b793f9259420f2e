"""IREE knobs a variant spec can turn on top of its flag set:
`STRATEGY[@FLAGSET][+KNOB=VALUE...]`, e.g. `auto+threads=2`,
`auto@data-tiling+tile-bytes=65536+spin-us=50`.

A compile knob adds an iree-compile flag; a runtime knob runs the variant on
its own local-task driver created with that runtime flag (variants.py), so it
can be timed beside the same module on the run's default driver in one
process. Each knob was checked against IREE 3.13's `iree-compile --help` /
`iree-benchmark-module --help`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch_grouped_conv.runners.iree_flags import without_flags_named


@dataclass(frozen=True)
class Knob:
    name: str
    flag: str
    runtime: bool  # a runtime flag (its own driver), else an iree-compile flag
    about: str
    default: int | None = None  # a runtime flag's value when not given (set back after use)

    def as_flag(self, value: int) -> str:
        return f"{self.flag}={value}"


KNOBS = {k.name: k for k in (
    Knob("threads", "--iree-llvmcpu-number-of-threads", False,
         "threads codegen distributes work for (IREE's default assumes 8)"),
    Knob("tile-bytes", "--iree-llvmcpu-matmul-tile-bytes", False,
         "distribution tile size of data-tiled matmul operands, in bytes"),
    Knob("spin-us", "--task_worker_spin_us", True,
         "how long a local-task worker spins for more work before it sleeps (IREE's default 0)", 0),
)}
RUNTIME_FLAG_PREFIX = "--task_"


def parse(text: str) -> list[str] | None:
    """The flags of `+KNOB=VALUE+...` (without the leading strategy part), or
    None if a knob is unknown or its value is not a non-negative integer."""
    flags = []
    for item in [t for t in text.split("+") if t]:
        name, _, value = item.partition("=")
        if name not in KNOBS or not value.isdigit():
            return None
        flags.append(KNOBS[name].as_flag(int(value)))
    return flags


def merge(flags: list[str], knob_flags: list[str]) -> list[str]:
    """`flags` with `knob_flags` on top: a knob replaces a flag of the same name (iree-compile
    refuses a flag given twice)."""
    return without_flags_named(flags, knob_flags) + knob_flags


def split_runtime(flags: list[str]) -> tuple[list[str], list[str]]:
    """(iree-compile flags, runtime flags) of a variant's flag list."""
    runtime = [f for f in flags if f.startswith(RUNTIME_FLAG_PREFIX)]
    return [f for f in flags if f not in runtime], runtime


def runtime_defaults(runtime_flags: Sequence[str]) -> list[str]:
    """The flags that set these runtime knobs back to their defaults."""
    by_flag = {k.flag: k for k in KNOBS.values() if k.runtime}
    knobs = [by_flag[f.partition("=")[0]] for f in runtime_flags if f.partition("=")[0] in by_flag]
    return [k.as_flag(k.default or 0) for k in knobs]
