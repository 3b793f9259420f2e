"""The CPU family the plugin's choices are tuned for: the two thresholds
whose best value was measured to differ between the CPU families the project
is built on (docs/performance.md, "The `auto` rule" and "Large im2col
matrices"); everything else holds on both.

- `default`: as measured on AMD EPYC (Zen 4) VMs, used for every CPU not
  recognized below. `auto` runs grouped convs with C/G*prod(k) <= 72 as taps,
  larger ones as a grouped GEMM (at C/G = 16, 512g32@14^2, taps 0.889 ms
  against the GEMM's 0.765 there); im2col matrices of >= 32 MiB are written
  in the GEMM's tiled layout (smaller ones measured mixed: whole resnet50
  unchanged).
- `intel-avx512`: Intel CPUs with AVX-512 (Xeon VMs: IREE 3.13's f32 GEMM
  kernel reaches ~80 % of a ceiling twice the AMD VM's, while the taps' FMAs
  scale with it): forward grouped convs as taps up to C/G*prod(k) = 144 (C/G =
  16 at 3x3: 512g32@14^2 1.34 -> 0.68 ms, groups4_64to128_56 2.75 -> 1.50 ms at
  1 thread, side by side with the grouped GEMM; transposed ones keep 72,
  auto.TRANSPOSED_GROUPED_TAPS); im2col matrices tiled from 4 MiB (the 7x7
  stems' 7.4 MB: resnet50 78.8 -> 77.0 ms at 1 thread, 50.1 -> 48.5 at 2,
  resnext50 87.3 -> 85.0, alternated; the 3x3 stems' 1.3 MB lost).

Which one applies, first match wins: `tuned_for(...)` around the rewrite (the
CLI does it for `--target`), the environment variable `TGC_TUNING`
(`default` / `intel-avx512`), else the host CPU (/proc/cpuinfo: vendor
GenuineIntel with avx512f -> `intel-avx512`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

from torch_grouped_conv.cpuinfo import host_fields, parse
from torch_grouped_conv.errors import InputError

ENV_VAR = "TGC_TUNING"


@dataclass(frozen=True)
class Tuning:
    """The CPU-family choices: `auto`'s rule 3 (rewrite/strategies/auto.py),
    the tiled im2col (rewrite/strategies/im2col.py, `blocking`), and whether
    the `iree` runner calls MKL for its GEMMs (runners/blas.py)."""

    name: str
    grouped_taps: int  # forward grouped convs with C/G * prod(kernel) up to this run as `taps`
    blocked_im2col_bytes: int  # f32 im2col matrices of at least this are written in the GEMM's tiles
    measured_on: str
    blas_gemms: bool = False  # the `iree` runner's f32 GEMMs through MKL (runners/blas.py), in-process modules only


DEFAULT = Tuning("default", grouped_taps=72, blocked_im2col_bytes=32 << 20, measured_on="AMD EPYC (Zen 4)")
INTEL_AVX512 = Tuning("intel-avx512", grouped_taps=144, blocked_im2col_bytes=4 << 20,
                      measured_on="Intel Xeon (AVX-512, Sapphire Rapids class)", blas_gemms=True)
TUNINGS = {t.name: t for t in (DEFAULT, INTEL_AVX512)}

# LLVM CPU names of Intel cores with AVX-512 (a named --target CPU picks the tuning by these).
INTEL_AVX512_CPUS = frozenset({
    "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server", "tigerlake",
    "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids",
})

_ACTIVE: ContextVar[Tuning | None] = ContextVar("tgc_tuning", default=None)


def named(name: str) -> Tuning:
    """The tuning called `name` (InputError naming the choices otherwise)."""
    if name not in TUNINGS:
        raise InputError(f"unknown tuning {name!r}; choose one of {', '.join(TUNINGS)}")
    return TUNINGS[name]


def for_fields(fields: Mapping[str, str]) -> Tuning:
    """The tuning for a CPU's /proc/cpuinfo fields (`cpuinfo.parse`)."""
    intel = fields.get("vendor_id") == "GenuineIntel" and "avx512f" in fields.get("flags", "").split()
    return INTEL_AVX512 if intel else DEFAULT


def from_cpuinfo(text: str) -> Tuning:
    """The tuning for the CPU a /proc/cpuinfo text describes (its first processor)."""
    return for_fields(parse(text))


def host() -> Tuning:
    """The host CPU's tuning (`default` where /proc/cpuinfo is missing)."""
    return for_fields(host_fields())


def for_cpu(cpu: str | None) -> Tuning:
    """The tuning for an LLVM CPU name: None or `host` -> the host's; a known
    Intel AVX-512 core -> `intel-avx512`; any other -> `default`."""
    if cpu in (None, "host"):
        return host()
    return INTEL_AVX512 if cpu in INTEL_AVX512_CPUS else DEFAULT


def active() -> Tuning:
    """The tuning in force now (module docstring: context, then TGC_TUNING, then the host)."""
    chosen = _ACTIVE.get()
    if chosen is not None:
        return chosen
    env = os.environ.get(ENV_VAR)
    if env:
        return named(env)
    return host()


@contextlib.contextmanager
def tuned_for(tuning: Tuning | str) -> Iterator[Tuning]:
    """The plugin picks for `tuning` (a Tuning or its name) inside the block, in this thread or task."""
    chosen = named(tuning) if isinstance(tuning, str) else tuning
    token = _ACTIVE.set(chosen)
    try:
        yield chosen
    finally:
        _ACTIVE.reset(token)
