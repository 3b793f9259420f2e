"""The host CPU as /proc/cpuinfo describes it, read once per process: the one
reader behind the runner's record of the host (`runners/target.host_cpu_name`),
the CPU family `auto` picks for (`rewrite/tuning.host`) and the benchmark's
machine facts (`bench/machine.cpuinfo`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

CPUINFO = Path("/proc/cpuinfo")


def parse(text: str) -> dict[str, str]:
    """The first processor's fields of a /proc/cpuinfo text (`model name`,
    `vendor_id`, `flags`, `cpu MHz`, ...), names and values stripped."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            fields.setdefault(name.strip(), value.strip())
    return fields


@functools.cache
def host_fields() -> Mapping[str, str]:
    """`parse` of this machine's /proc/cpuinfo (empty where there is none), read-only."""
    return MappingProxyType(parse(CPUINFO.read_text(errors="replace")) if CPUINFO.is_file() else {})
