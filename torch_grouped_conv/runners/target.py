"""The CPU an IREE module is compiled for: a small typed `Target`, its
iree-compile flags, and a quick check that the installed compiler can build
for it (before any long work).

The default, `Target()`, is the host: `--iree-llvmcpu-target-cpu=host` (its
triple, CPU and features). Another machine is named by its LLVM triple
(`aarch64-unknown-linux-gnu`, `riscv64-unknown-linux-gnu`,
`x86_64-unknown-linux-gnu`), optionally a CPU (`x86-64-v3`, `neoverse-n1`,
`generic`) and CPU features (`+avx512f`, `+sve`, `+v`).
"""

from __future__ import annotations

import functools
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch_grouped_conv.cpuinfo import host_fields
from torch_grouped_conv.errors import InputError
from torch_grouped_conv.rewrite import tuning

# Architecture aliases, as the first triple component may spell them.
ARCH_ALIASES = {"arm64": "aarch64", "amd64": "x86_64", "x86-64": "x86_64"}
# A RISC-V Linux machine is RV64GC with the lp64d ABI (what Linux distributions
# require); LLVM's generic riscv64 has no F/D, and iree-compile then fails to
# link soft-float calls. Vectors (+v) are opt-in: not every RV64 board has them.
RISCV64_LINUX_FEATURES = "+m,+a,+f,+d,+c"
RISCV64_LINUX_ABI = "lp64d"


def host_arch() -> str:
    machine = platform.machine().lower()
    return ARCH_ALIASES.get(machine, machine)


def host_cpu_name() -> str:
    """The host CPU's model name (/proc/cpuinfo), else what `platform` says."""
    return host_fields().get("model name") or platform.processor() or platform.machine()


CACHE_SIZE_UNITS = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def parse_cache_size(text: str) -> int | None:
    """A sysfs cache size (`2048K`, `1M`, `512`) in bytes, else None."""
    value = text.strip().upper()
    unit = value[-1:]
    number = value[:-1] if unit in CACHE_SIZE_UNITS else value
    return int(number) * CACHE_SIZE_UNITS.get(unit, 1) if number.isdigit() else None


@functools.cache
def host_l2_bytes(cpu_dir: str = "/sys/devices/system/cpu/cpu0/cache") -> int | None:
    """The host's L2 per core in bytes (Linux sysfs: the level-2 data or unified
    cache of cpu0), None where sysfs does not say."""
    for index in sorted(Path(cpu_dir).glob("index*")):
        try:
            level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
            if level == "2" and kind in ("Unified", "Data"):
                return parse_cache_size((index / "size").read_text())
        except OSError:
            continue
    return None


def host_triple() -> str:
    return f"{host_arch()}-unknown-{platform.system().lower()}-gnu"


@dataclass(frozen=True)
class Target:
    """An llvm-cpu target. Every field None means the host.

    - `triple`: LLVM target triple (None: the host's);
    - `cpu`: LLVM CPU name (None: `host` on the host's triple, `generic` on another);
    - `features`: LLVM CPU features, e.g. `+avx2,+fma` (None: the CPU's own; RV64: RV64GC);
    - `abi`: LLVM target ABI (None: the triple's default; RV64: lp64d).
    """

    triple: str | None = None
    cpu: str | None = None
    features: str | None = None
    abi: str | None = None

    def __post_init__(self) -> None:
        for name in ("triple", "cpu", "features", "abi"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip() or value != value.strip()):
                raise InputError(f"Target {name}={value!r}: give a non-empty string without spaces, or None")

    @property
    def is_host(self) -> bool:
        """Compiled for exactly the machine we run on (`target-cpu=host`)."""
        return self.triple is None and self.cpu in (None, "host") and self.features is None and self.abi is None

    @property
    def tuning(self) -> tuning.Tuning:
        """The CPU family `auto` picks for (rewrite/tuning.py): the host's when
        compiling for the host, else by the named CPU (x86-64 only; `default`
        for a generic CPU and other architectures)."""
        if self.is_host:
            return tuning.host()
        if self.arch != "x86_64":
            return tuning.DEFAULT
        return tuning.for_cpu(self.cpu or "generic")

    @property
    def arch(self) -> str:
        """The triple's architecture (`x86_64`, `aarch64`, `riscv64`, ...)."""
        first = (self.triple or host_triple()).split("-")[0].lower()
        return ARCH_ALIASES.get(first, first)

    @property
    def runs_here(self) -> bool:
        """Whether this machine can load the module (same architecture;
        IREE checks CPU features itself when it loads a module)."""
        return self.arch == host_arch()

    def resolved(self) -> dict[str, str | None]:
        """The fields as iree-compile gets them (defaults filled in)."""
        foreign = self.triple is not None
        riscv64 = self.arch == "riscv64" and foreign
        return {
            "triple": self.triple,
            "cpu": self.cpu or ("generic" if foreign else "host"),
            "features": self.features or (RISCV64_LINUX_FEATURES if riscv64 else None),
            "abi": self.abi or (RISCV64_LINUX_ABI if riscv64 else None),
        }

    def flags(self) -> list[str]:
        """iree-compile's target flags (host: `--iree-llvmcpu-target-cpu=host` alone)."""
        names = {"triple": "target-triple", "cpu": "target-cpu", "features": "target-cpu-features",
                 "abi": "target-abi"}
        return [f"--iree-llvmcpu-{names[key]}={value}" for key, value in self.resolved().items() if value is not None]

    def describe(self) -> str:
        """One short phrase: `host (x86_64)`, `aarch64-unknown-linux-gnu cpu=generic`."""
        if self.is_host:
            return f"host ({host_triple()})"
        fields = self.resolved()
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k != "triple" and v is not None)
        return f"{fields['triple'] or host_triple()} {extra}".strip()

    def to_dict(self) -> dict[str, object]:
        """What the sidecar records: the fields given, as compiled, and the arch."""
        record: dict[str, object] = {
            "given": {"triple": self.triple, "cpu": self.cpu, "features": self.features, "abi": self.abi},
            "compiled_for": {**self.resolved(), "triple": self.triple or host_triple()},
            "arch": self.arch, "host": self.is_host}
        if self.resolved()["cpu"] == "host":
            record["host_cpu"] = host_cpu_name()  # what `host` meant when it was compiled
        return record

    @classmethod
    def from_dict(cls, record: dict[str, object]) -> Target:
        given = record.get("given", record)
        if not isinstance(given, dict):
            raise InputError(f"a target record must be a mapping of triple/cpu/features/abi, got {given!r}")
        return cls(**{k: given.get(k) for k in ("triple", "cpu", "features", "abi")})


HOST = Target()

# A module the probe compiles: one small matmul (seconds at most on any target).
_PROBE = """func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x4xf32>) -> tensor<4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<4x4xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<4x4xf32>) -> tensor<4x4xf32>
  %r = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x4xf32>) outs(%acc : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %r : tensor<4x4xf32>
}
"""
# LLVM's complaints that iree-compile only warns about (it then compiles for something else).
_IGNORED_BY_LLVM = ("is not a recognized processor", "is not a recognized feature", "not a recognized CPU")


def check_target(target: Target, device_flags: list[str]) -> None:
    """InputError (one line) unless iree-compile builds a small module for
    `target` cleanly: an unknown triple, CPU, feature or ABI is refused here,
    before the long compile. The host needs no check."""
    if not target.is_host:
        problem = _probe(tuple(device_flags + target.flags()))
        if problem is not None:
            raise InputError(f"iree-compile cannot build for target {target.describe()}: {problem} "
                             "(check the triple, --target-cpu and --target-cpu-features; "
                             "`iree-compile --iree-llvmcpu-list-targets` lists the architectures)")


@functools.lru_cache(maxsize=32)
def _probe(flags: tuple[str, ...]) -> str | None:
    from iree.compiler.tools.binaries import find_tool

    with tempfile.TemporaryDirectory(prefix="torch_grouped_conv_target_") as tmp:
        source, output = Path(tmp, "probe.mlir"), Path(tmp, "probe.vmfb")
        source.write_text(_PROBE)
        done = subprocess.run([find_tool("iree-compile"), str(source), "-o", str(output), *flags],
                              capture_output=True, text=True)
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        ignored = next((line for line in lines if any(sign in line for sign in _IGNORED_BY_LLVM)), None)
        if ignored is not None:
            return ignored
        if done.returncode != 0 or not output.is_file():
            return next((line for line in lines if "error" in line.lower() or "failed" in line.lower()),
                        lines[0] if lines else f"exit code {done.returncode}")
    return None
