"""Named iree-compile flag sets for llvm-cpu, and the runtime thread count.

`IREE_TARGET_FLAGS` (runners/iree.py) selects the device and `target-cpu=host`
(another CPU: `runners/target.Target`); a flag set adds tuning on top, chosen
per target architecture (`tuned_for`). The measured effect of each set is in
docs/performance.md ("Compiler flags"); `TUNED` is the set the `iree` runner
compiles with unless told otherwise, and the one the benchmark uses by default
for the plugin's strategies and for the upstream baseline alike.
"""

from __future__ import annotations

from torch_grouped_conv.errors import InputError

FLAG_SETS: dict[str, list[str]] = {
    # IREE's defaults for llvm-cpu (direct convolution codegen).
    "default": [],
    # Convolutions -> im2col + matmul in global optimization; matmul codegen
    # then does the heavy lifting.
    "im2col": ["--iree-global-opt-use-im2col-for-convs"],
    # Data tiling: operands of matmul-like ops are packed into
    # cache/register-friendly tiles (the suggested path of --iree-opt-data-tiling).
    "data-tiling": ["--iree-opt-data-tiling"],
    # The same through IREE's global-optimization path: encodings become packs
    # early, and a pack with inner tiles stays out of its producer's dispatch.
    "data-tiling-global": ["--iree-global-opt-data-tiling"],
    "data-tiling+ukernels": ["--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=all"],
    # Fuse tensor.pad into its consumer's dispatch (no separate padded copy).
    "fuse-pad": ["--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops"],
    "im2col+data-tiling": ["--iree-global-opt-use-im2col-for-convs", "--iree-opt-data-tiling"],
    # Hand-written microkernels (mmt4d, pack, unpack) for data-tiled matmuls.
    "im2col+data-tiling+ukernels": [
        "--iree-global-opt-use-im2col-for-convs", "--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=all",
    ],
}

# The `iree` runner's default (and the benchmark's): data tiling through the
# global-optimization path, measured better on whole networks side by side
# (docs/performance.md, "Compiler flags"): the dispatch-creation path of
# --iree-opt-data-tiling fuses a 1x1 GEMM's activation pack into the depthwise
# conv before it, whose tiles of 16 then cross its rows.
TUNED = "data-tiling-global"
# The default for modules with a dynamic dim past the leading one of a boundary
# tensor (channels, spatial or kernel dims; a dynamic batch keeps `TUNED`):
# IREE 3.13's data tiling fails on such modules in classes the fuzz campaign
# found (seeds 301/302: a batch-1 transposed 1x1 conv with dynamic channels,
# "'affine.delinearize_index' op no basis element may be statically
# non-positive", then "exceeded stack allocation limit"), and compiles them
# without it.
TUNED_DYNAMIC = "default"


def flag_set(name: str) -> list[str]:
    if name not in FLAG_SETS:
        raise ValueError(f"unknown IREE flag set {name!r}; choose one of {', '.join(FLAG_SETS)}")
    return list(FLAG_SETS[name])


def runtime_driver(threads: int) -> str:
    """The IREE HAL driver matching PyTorch at `threads` threads.

    One thread: `local-sync` runs dispatches inline on the calling thread, as
    PyTorch does with torch.set_num_threads(1). `local-task` would hand every
    dispatch to a worker thread and wait for it; on a loaded machine each such
    hand-off can cost a scheduler tick (we measured call times quantized to
    4 ms steps). More threads: `local-task` with `threads` workers.
    """
    return "local-sync" if threads == 1 else "local-task"


# The device allocator: `caching` keeps freed device buffers for reuse, so a
# module's transient buffers (an im2col matrix, a packed operand) are not
# mapped and page-faulted afresh on every call (as ONNX Runtime's arena and
# PyTorch's allocator avoid too). Measured in docs/performance.md ("Device
# allocator"): writing a fresh 98 MB buffer costs 38 ms per call, 3.5 ms cached.
RUNTIME_ALLOCATORS = ["caching"]


def runtime_thread_flags(threads: int) -> list[str]:
    """IREE runtime flags that cap the local-task executor at `threads` workers
    (one topology group per worker), to match torch.set_num_threads(threads)."""
    return [f"--task_topology_max_group_count={threads}"]


def set_runtime_threads(threads: int) -> None:
    """Apply `runtime_thread_flags` process-wide. Must run before the first
    local-task device is created in this process (see `TaskWorkers`)."""
    TaskWorkers.claim(threads)


# Architectures whose llvm-cpu backend in IREE 3.13 has data-tiled matmul
# layouts (tile shapes for x86 AVX2/AVX-512, arm64 NEON/SVE/i8mm, riscv64 +v):
# there `TUNED` (data tiling) applies. Elsewhere IREE would leave the
# encodings unresolved, so the default set is used. Ukernels stay at IREE's
# own default for the target (on arm64 that already includes mmt4d); on
# x86-64 `data-tiling+ukernels` measured no gain (docs/performance.md).
DATA_TILING_ARCHES = frozenset({"x86_64", "aarch64", "riscv64"})


def tuned_for(arch: str, dynamic_inner_dims: bool) -> str:
    """The default flag set for a module on `arch`: `TUNED` (data tiling)
    where IREE data-tiles for that architecture, `TUNED_DYNAMIC` for modules
    with dynamic inner dims (see above), `default` elsewhere."""
    if arch not in DATA_TILING_ARCHES:
        return "default"
    return TUNED_DYNAMIC if dynamic_inner_dims else TUNED


# The distribution tiles of data-tiled GEMMs (`--iree-llvmcpu-matmul-tile-bytes`,
# the bytes of operand tiles one workgroup takes): IREE 3.13's default keeps
# one 16-row LHS tile per workgroup for long-K GEMMs, so a GEMM with a few row
# tiles streams its whole RHS once per row tile (r3d_18's layer-1 GEMM, 4 row
# tiles over a 331 MiB im2col matrix: 283 ms, 143 with all 4 rows in one
# workgroup). On a host with at least 2 MiB of L2 per core the runner gives
# half the L2: measured on the Intel Xeon (2 MiB L2), resnet50 -5 %, convnext
# -7 %, resnext50 -3 % at 1 thread (docs/performance.md, "Compiler flags").
# Smaller L2s (the AMD EPYC VM's 1 MiB) keep IREE's default, as measured there.
MATMUL_TILE_MIN_L2 = 2 * 1024 * 1024
MATMUL_TILE_FLAG = "--iree-llvmcpu-matmul-tile-bytes"


def matmul_tile_flags(l2_bytes: int | None) -> list[str]:
    """`--iree-llvmcpu-matmul-tile-bytes` = half the L2 per core, for an L2 of
    at least `MATMUL_TILE_MIN_L2`; nothing (IREE's default) otherwise or when
    the cache size is unknown."""
    if l2_bytes is None or l2_bytes < MATMUL_TILE_MIN_L2:
        return []
    return [f"{MATMUL_TILE_FLAG}={l2_bytes // 2}"]


def without_flags_named(flags: list[str], others: list[str]) -> list[str]:
    """`flags` less those whose option name (`--name` of `--name=value`) is
    among `others`' (iree-compile refuses a single-valued option twice)."""
    names = {f.partition("=")[0] for f in others}
    return [f for f in flags if f.partition("=")[0] not in names]


def overriding_tile_bytes(base: list[str], tuning: list[str]) -> list[str]:
    """`base` without its matmul tile flag when `tuning` gives one (the caller's value wins)."""
    return without_flags_named(base, [f for f in tuning if f.partition("=")[0] == MATMUL_TILE_FLAG])


def compile_thread_flags(threads: int | None) -> list[str]:
    """iree-compile flags for a module run at `threads` threads: codegen
    splits each dispatch for that many workers (IREE's default assumes 8).
    None: IREE's default."""
    return [] if threads is None else [f"--iree-llvmcpu-number-of-threads={threads}"]


def check_threads(threads: object) -> int | None:
    """`threads` as given to load/save: None (IREE's default) or an int >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads={threads!r}: give a positive integer (1 runs on the calling thread), or None")
    return threads


class TaskWorkers:
    """The local-task driver's worker count. IREE creates the driver, and its
    worker threads, once per process, from the runtime flags set at that time:
    the count can be chosen until the first local-task device exists, then
    it is fixed (`fixed`). `requested` is the count set (None: IREE's default,
    one worker per physical core)."""

    requested: int | None = None
    fixed: bool = False

    @classmethod
    def claim(cls, threads: int) -> None:
        """Make the local-task driver run `threads` workers; InputError if it
        already runs another count."""
        if cls.fixed and cls.requested != threads:
            running = "IREE's default count of" if cls.requested is None else str(cls.requested)
            raise InputError(f"threads={threads}: this process's IREE local-task driver already runs {running} "
                             f"workers (IREE creates them once per process); load with threads="
                             f"{cls.requested if cls.requested is not None else 'None'} or threads=1, "
                             f"or pass threads={threads} to the first IREE load of the process")
        if cls.requested != threads:
            from iree import runtime as iree_rt

            iree_rt.flags.parse_flags(*runtime_thread_flags(threads))
            cls.requested = threads
