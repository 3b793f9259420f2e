"""What machine this is, and its assumed f32 peak (stated, not measured)."""

from __future__ import annotations

import os
import platform
import re

from torch_grouped_conv.cpuinfo import host_fields

# Flops per cycle per core, f32: 2 FMA pipes x 8 lanes (AVX2, 256-bit) x 2 (mul + add).
AVX2_FMA_FLOPS_PER_CYCLE = 2 * 8 * 2
AVX512_FMA_FLOPS_PER_CYCLE = 2 * 16 * 2


def cpuinfo() -> dict[str, str]:
    """The host's model name, nominal MHz and flags (torch_grouped_conv/cpuinfo.py)."""
    fields = host_fields()
    mhz = fields.get("cpu MHz", "")
    return {
        "model": fields.get("model name") or platform.processor(),
        "mhz": mhz if re.fullmatch(r"[\d.]+", mhz) else "0",
        "flags": fields.get("flags", ""),
    }


FAMILIES = (("AMD EPYC", "AMD EPYC"), ("Intel(R) Xeon", "Intel Xeon"), ("Intel Xeon", "Intel Xeon"),
            ("AMD Ryzen", "AMD Ryzen"), ("Intel(R) Core", "Intel Core"))


def family(model: str) -> str:
    """The CPU family a model name belongs to ("AMD EPYC", "Intel Xeon", ...; "other" else):
    docs/performance.md keeps one section per family."""
    return next((name for prefix, name in FAMILIES if model.startswith(prefix)), "other")


def describe(threads: int) -> dict[str, object]:
    """Machine facts and the peak estimate: cores x flops/cycle x GHz (from /proc/cpuinfo)."""
    info = cpuinfo()
    flags = set(info["flags"].split())
    per_cycle = AVX512_FMA_FLOPS_PER_CYCLE if "avx512f" in flags else (
        AVX2_FMA_FLOPS_PER_CYCLE if {"avx2", "fma"} <= flags else 8)
    ghz = float(info["mhz"]) / 1000.0
    peak = threads * per_cycle * ghz
    return {
        "cpu": info["model"],
        "cpu_family": family(info["model"]),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "ghz": round(ghz, 3),
        "simd": "avx512f+fma" if "avx512f" in flags else ("avx2+fma" if {"avx2", "fma"} <= flags else "unknown"),
        "flops_per_cycle_per_core": per_cycle,
        "peak_gflops": round(peak, 1),
        "peak_assumption": (
            f"{threads} cores x {per_cycle} f32 flops/cycle (2 FMA pipes x SIMD lanes x 2) x {ghz:.2f} GHz "
            "(nominal cpu MHz from /proc/cpuinfo; no turbo, no SMT sharing assumed)"
        ),
    }
