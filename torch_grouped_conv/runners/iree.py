"""The IREE runner: iree-compile (llvm-cpu, host CPU) and the IREE runtime.

The compiler runs as the `iree-compile` tool shipped in iree-base-compiler so
that its warnings can be captured: a module we emit must compile without any.
"""

from __future__ import annotations

import atexit
import gc
import io
import math
import os
import shlex
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from iree import runtime as iree_rt
from iree.compiler.tools.binaries import find_tool
from torch_mlir import ir

from torch_grouped_conv.errors import CompileError, InputError
from torch_grouped_conv.rewrite.emit.builders import NO_DATA_TILING
from torch_grouped_conv.rewrite.tuning import active
from torch_grouped_conv.runners.blas import before_driver, register, rewrite_gemms, warn_unavailable
from torch_grouped_conv.runners.common import module_bytecode
from torch_grouped_conv.runners.dispatch_tiles import (
    CONFIGURE_FLAGS,
    RESUME_FLAGS,
    has_taps_generic,
    phased,
    retune_taps,
)
from torch_grouped_conv.runners.iree_flags import (
    RUNTIME_ALLOCATORS,
    TaskWorkers,
    check_threads,
    compile_thread_flags,
    flag_set,
    matmul_tile_flags,
    overriding_tile_bytes,
    tuned_for,
)
from torch_grouped_conv.runners.signature import Signature, read_signature
from torch_grouped_conv.runners.target import HOST, Target, check_target, host_l2_bytes
from torch_grouped_conv.runners.transients import (
    TransientPool,
    add_transient_storage,
    invoke,
    module_transient_size,
    transient_size,
)

# The device: IREE's local HAL with llvm-cpu executables.
DEVICE_FLAGS = ["--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu"]
# Keep f64 as f64: the default demotion to f32 retypes dense_resource
# weight constants without converting their data, and fails to verify.
KEEP_F64_FLAGS = ["--iree-input-demote-f64-to-f32=false"]


def target_flags(target: Target = HOST) -> list[str]:
    """Flags that select the device and the CPU (`target.flags()`), and for the
    host the GEMM tile size its L2 calls for (`iree_flags.matmul_tile_flags`);
    tuning flags go on top."""
    cache = matmul_tile_flags(host_l2_bytes()) if target.is_host else []
    return DEVICE_FLAGS + target.flags() + KEEP_F64_FLAGS + cache


# The host target's flags (`--iree-llvmcpu-target-cpu=host`: AVX2/AVX-512 where present).
IREE_TARGET_FLAGS = target_flags(HOST)

# IREE 3.13 inlines small constants (<= 256 bytes) into dispatches, where its
# bf16 emulation retypes a bf16 constant to f32 without converting the data
# ("'arith.constant' op failed to verify that all of {value, result} have same
# type"). Modules with bf16 at the boundary keep constants out of dispatches.
BF16_FLAGS = ["--iree-flow-inline-constants-max-byte-length=0"]


def boundary_types(module: ir.Module) -> list[ir.Type]:
    """The argument and result types of the module's top-level functions."""
    types: list[ir.Type] = []
    for op in module.body.operations:
        if "function_type" in op.attributes:
            signature = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
            types += [*signature.inputs, *signature.results]
    return types


def has_bf16_boundary(module: ir.Module) -> bool:
    """Whether a top-level function takes or returns bf16 values (tensors or scalars)."""
    return any(isinstance(t.element_type if isinstance(t, ir.ShapedType) else t, ir.BF16Type)
               for t in boundary_types(module))


def has_dynamic_dims(module: ir.Module) -> bool:
    """Whether a top-level function takes or returns a tensor with any dynamic dim."""
    return any(isinstance(t, ir.RankedTensorType) and not t.has_static_shape for t in boundary_types(module))


# From this size on (bytes) an intermediate tensor makes the runner pass the
# module's transient storage itself (runners/transients.py): below it IREE's
# own pools serve the transients well, and the extra ABI costs iree-compile
# ~0.1 s per module (0.60 -> 0.73 s on a small conv).
TRANSIENTS_MIN_BYTES = 16 << 20


def largest_intermediate_bytes(module: ir.Module) -> int:
    """The byte size of the largest static tensor an op of `module` produces,
    constants (the weights, not transients) aside."""
    largest = 0

    def visit(op: ir.Operation) -> ir.WalkResult:
        nonlocal largest
        if op.name != "arith.constant":
            for result in op.results:
                if isinstance(result.type, ir.RankedTensorType) and result.type.has_static_shape:
                    bits = getattr(result.type.element_type, "width", 64)
                    largest = max(largest, math.prod(result.type.shape) * max(bits, 8) // 8)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return largest


def wants_external_transients(module: ir.Module) -> bool:
    """Whether the `iree` runner gives `module`'s `@main` its transient storage:
    static shapes and an intermediate of at least `TRANSIENTS_MIN_BYTES` (an
    im2col matrix of wav2vec2's, r3d_18's or a 3D grouped conv's size)."""
    return not has_dynamic_dims(module) and largest_intermediate_bytes(module) >= TRANSIENTS_MIN_BYTES


def has_dynamic_inner_dims(module: ir.Module) -> bool:
    """Whether a top-level function takes or returns a tensor with a dynamic
    dim past its leading one (see `iree_flags.TUNED_DYNAMIC`)."""
    return any(isinstance(t, ir.RankedTensorType) and any(t.is_dynamic_dim(i) for i in range(1, t.rank))
               for t in boundary_types(module))


def default_flags(module: ir.Module, target: Target = HOST) -> list[str]:
    """`TUNED`, or `TUNED_DYNAMIC` for modules with dynamic inner dims; the
    `default` set on architectures IREE does not data-tile (`iree_flags.tuned_for`)."""
    return flag_set(tuned_for(target.arch, has_dynamic_inner_dims(module)))


# Named matmul-like ops IREE's data tiling takes (its default op family "matmul").
MATMUL_OPS = frozenset({"linalg.matmul", "linalg.batch_matmul", "linalg.matvec", "linalg.vecmat",
                        "linalg.batch_matvec", "linalg.batch_vecmat"})
DATA_TILING_HINT = "iree.opt.data_tiling"
DATA_TILING_FLAGS = frozenset({"--iree-opt-data-tiling", "--iree-dispatch-creation-data-tiling",
                               "--iree-global-opt-data-tiling"})


def _matmul_like_generic(op: ir.Operation) -> bool:
    """A linalg.generic with a reduction loop whose body is out + a * b
    (factors possibly extended): the contractions IREE's data tiling takes."""
    if op.name != "linalg.generic" or "reduction" not in str(op.attributes["iterator_types"]):
        return False
    block = op.regions[0].blocks[0]
    body = [inner.name for inner in block.operations]
    return bool(body) and body[-1] == "linalg.yield" and len(body) >= 3 and body[-2] in ("arith.addf", "arith.addi") \
        and body[-3] in ("arith.mulf", "arith.muli")


def hint_data_tiling(module: ir.Module) -> tuple[ir.Module, bool]:
    """The module to compile and whether data tiling has anything to tile.

    Where the plugin marked GEMMs to keep out of data tiling
    (`builders.NO_DATA_TILING`): a copy with IREE's data-tiling hint on every
    other matmul-like op (IREE annotates every supported contraction unless
    some op already carries the hint, so hinting all but the marked ones
    leaves exactly those untiled), or, when there is no other, the module and
    False (a module whose every GEMM is marked compiles without data tiling).
    Unmarked modules are returned as they are, for IREE to annotate.
    """
    marked = False

    def find(op: ir.Operation) -> ir.WalkResult:
        nonlocal marked
        marked = NO_DATA_TILING in op.attributes
        return ir.WalkResult.INTERRUPT if marked else ir.WalkResult.ADVANCE

    module.operation.walk(find)
    if not marked:
        return module, True
    copy = ir.Module.parse(module_bytecode(module), module.context)
    hinted = 0

    def hint(op: ir.Operation) -> ir.WalkResult:
        nonlocal hinted
        if NO_DATA_TILING not in op.attributes and (op.name in MATMUL_OPS or _matmul_like_generic(op)):
            op.attributes[DATA_TILING_HINT] = ir.UnitAttr.get(module.context)
            hinted += 1
        return ir.WalkResult.ADVANCE

    copy.operation.walk(hint)
    return (copy, True) if hinted else (module, False)


# iree-compile 3.13 failures seen only with data tiling on (fuzz campaigns: a
# transposed 1x1 conv with output size 1 and a dynamic batch, fuzz seed 503;
# dynamic channels, seeds 301/302). The same modules compile without it.
DATA_TILING_FAILURES = ("exceeded stack allocation limit", "no basis element may be statically non-positive")


@dataclass(frozen=True)
class Compilation:
    """One iree-compile run: the module, what it printed, the exact flags,
    why the default data tiling was dropped (else None), the target, and the
    iree-compile input (bytecode; kept only when asked)."""

    vmfb: bytes
    warnings: str
    flags: tuple[str, ...]
    data_tiling_fallback: str | None
    target: Target
    threads: int | None
    source: bytes | None = None
    transient_bytes: int | None = None  # @main takes transient storage of this size (runners/transients.py)
    # taps dispatches whose vector tiles were set between configuration and codegen (runners/dispatch_tiles.py)
    retuned: tuple[str, ...] = ()
    blas_gemms: int = 0  # GEMMs that call MKL through the plugin (runners/blas.py): the vmfb needs it loaded

    def command(self, source: str = "input.mlirbc", output: str = "module.vmfb") -> str:
        """The command line that reproduces this compile by hand: one
        iree-compile run, or with retuned dispatches the two runs and the edit
        between them (`python -m torch_grouped_conv.runners.retune`)."""
        if not self.retuned:
            return shlex.join(["iree-compile", source, "-o", output, *self.flags])
        configured = f"{output}.configured.mlir"
        return " && ".join([
            shlex.join(["iree-compile", source, "-o", configured, *self.flags, *CONFIGURE_FLAGS]),
            shlex.join(["python", "-m", "torch_grouped_conv.runners.retune", configured]),
            shlex.join(["iree-compile", configured, "-o", output, *self.flags, *RESUME_FLAGS]),
        ])


def compile_to_vmfb(module: ir.Module, extra_flags: list[str] | None = None) -> tuple[bytes, str]:
    """Compile a linalg-on-tensors module; return (vmfb, warnings text).

    `extra_flags` are the tuning flags on top of the target flags; None means
    the default set, `default_flags(module)`: `iree_flags.TUNED` (measured on
    whole networks, see docs/performance.md), or `TUNED_DYNAMIC` for modules
    with dynamic inner dims; [] means none. IREE's plain ABI (no transient
    storage argument): what `tgc.save` writes and iree-run-module calls.
    """
    vmfb, warnings, _ = compile_module(module, extra_flags)
    return vmfb, warnings


def compile_module(module: ir.Module, extra_flags: list[str] | None = None) -> tuple[bytes, str, str | None]:
    """`compile_to_vmfb`, plus why data tiling was dropped (else None): with
    the default flags (`extra_flags` None), a module that iree-compile fails
    on with data tiling, in one of the `DATA_TILING_FAILURES`, is compiled
    again without it (data tiling is a speed choice of ours; flags given
    explicitly are kept and their failure raised)."""
    done = compile_for(module, extra_flags)
    return done.vmfb, done.warnings, done.data_tiling_fallback


def compile_for(module: ir.Module, extra_flags: list[str] | None = None, target: Target = HOST,
                threads: int | None = None, keep_source: bool = False, transients: bool = False,
                blas_gemms: bool = False) -> Compilation:
    """`compile_module` for `target` (checked first: `target.check_target`),
    for `threads` workers (`iree_flags.compile_thread_flags`), returning the
    whole record of the compile (`Compilation`). `transients`: `@main` takes
    its transient storage from the caller (runners/transients.py; static
    shapes only). `blas_gemms`: its f32 GEMMs call MKL (runners/blas.py),
    for a module run in this process only, where the plugin can be loaded."""
    if transients and has_dynamic_dims(module):
        raise InputError("external transients need static shapes: this module has dynamic dims")
    check_target(target, DEVICE_FLAGS)
    tuning = default_flags(module, target) if extra_flags is None else list(extra_flags)
    flags = (overriding_tile_bytes(target_flags(target), tuning) + (BF16_FLAGS if has_bf16_boundary(module) else [])
             + compile_thread_flags(check_threads(threads)) + tuning)
    untiled = [f for f in flags if f not in DATA_TILING_FLAGS]
    hinted, tiles = hint_data_tiling(module)
    if not tiles:
        flags = untiled
    retune = has_taps_generic(module) and not phased(flags)
    # the GEMMs' workers: the compiled-for count, else IREE's default (one per core)
    blas_threads = (threads or len(os.sched_getaffinity(0))) if blas_gemms and register() else None
    if blas_gemms and blas_threads is None:
        warn_unavailable()

    def record(run: IreeRun, used: list[str], failure: str | None, source: bytes, gemm_calls: int) -> Compilation:
        return Compilation(run.vmfb, run.warnings, tuple(used), failure, target, threads,
                           source if keep_source else None,
                           module_transient_size(run.vmfb) if transients else None, run.retuned, gemm_calls)

    source, gemm_calls = iree_source(hinted, transients, blas_threads)
    try:
        return record(_run_iree_compile(source, flags, retune), flags, None, source, gemm_calls)
    except CompileError as error:
        failure = next((line.strip() for line in str(error).splitlines()
                        if any(sign in line for sign in DATA_TILING_FAILURES)), None)
        if extra_flags is not None or failure is None or untiled == flags:
            raise
    source, gemm_calls = iree_source(module, transients, blas_threads)
    return record(_run_iree_compile(source, untiled, retune), untiled, failure, source, gemm_calls)


def iree_source(module: ir.Module, transients: bool, blas_threads: int | None = None) -> tuple[bytes, int]:
    """iree-compile's input: the module's bytecode, with its GEMMs calling MKL
    for `blas_threads` workers (runners/blas.py; None: not), and the transient
    storage argument when asked; and how many GEMMs call MKL."""
    source = module_bytecode(module)
    if blas_threads is None and not transients:
        return source, 0
    from iree.compiler import ir as iree_ir

    with iree_ir.Context(), iree_ir.Location.unknown():  # one parse for both edits (a whole net's weights)
        edited = iree_ir.Module.parse(source)
        gemms = 0 if blas_threads is None else rewrite_gemms(edited, blas_threads)
        if transients:
            add_transient_storage(edited)
        out = io.BytesIO()
        edited.operation.write_bytecode(out)
    return out.getvalue(), gemms


def wants_blas_gemms(target: Target) -> bool:
    """The active tuning's choice of MKL GEMMs (rewrite/tuning.py), for a module that runs in this process."""
    return target.runs_here and active().blas_gemms


class IreeRun(NamedTuple):
    """A successful compile: the vmfb, iree-compile's warnings, and the taps
    dispatches retuned between its two phases (`dispatch_tiles.Retuned.describe`)."""

    vmfb: bytes
    warnings: str
    retuned: tuple[str, ...] = ()


def _run_iree_compile(module: ir.Module | bytes, flags: list[str], retune: bool = False) -> IreeRun:
    """iree-compile on `module` with `flags`; a failure raises CompileError
    with the tool's messages and a command that reproduces it on a kept copy
    of the input.

    `retune`: two runs, up to the executable configurations and on from
    there, with the taps dispatches' vector tiles set in between
    (runners/dispatch_tiles.py; with nothing to change the two runs give the
    single run's bytes, tests/unit/test_dispatch_tiles.py); where only the
    edited text fails, the plain single run decides."""
    source = module if isinstance(module, bytes) else module_bytecode(module)
    if retune:
        tuned = _run_retuned(source, flags)
        if tuned is not None:
            return tuned
    done = invoke_iree_compile(source, flags)
    if done.returncode != 0:
        raise _compile_error(source, flags, done.stderr)
    return IreeRun(done.vmfb, done.stderr)


def _run_retuned(source: bytes, flags: list[str]) -> IreeRun | None:
    """The two-phase compile of `_run_iree_compile`, or None where the second
    run fails on an edited text. A failure of the first run, or of the second
    on an unedited one, is the single run's own failure (the same passes on
    the same input): raised at once, not met again in a third run."""
    configured = invoke_iree_compile(source, [*flags, *CONFIGURE_FLAGS])
    if configured.returncode != 0:
        raise _compile_error(source, flags, configured.stderr)
    text, retuned = retune_taps(configured.vmfb.decode())
    done = invoke_iree_compile(text.encode(), [*flags, *RESUME_FLAGS])
    if done.returncode != 0:
        if retuned:
            return None
        raise _compile_error(source, flags, done.stderr)
    warnings = "\n".join(part for part in (configured.stderr, done.stderr) if part)
    return IreeRun(done.vmfb, warnings, tuple(change.describe() for change in retuned))


def _compile_error(source: bytes, flags: list[str], stderr: str) -> CompileError:
    """iree-compile's messages and a command that reproduces the failure on a kept copy of `source`."""
    kept = Path(tempfile.mkdtemp(prefix="torch_grouped_conv_repro_")) / "input.mlirbc"
    kept.write_bytes(source)
    return CompileError(f"iree-compile failed:\n{stderr}\nreproduce with: iree-compile {kept} {' '.join(flags)}")


class ToolRun(NamedTuple):
    """One iree-compile run: its exit status, its output (empty on failure) and its stderr, stripped."""

    returncode: int
    vmfb: bytes
    stderr: str


def invoke_iree_compile(source: bytes, flags: list[str]) -> ToolRun:
    """iree-compile on `source` (MLIR bytecode) with `flags`, in a temporary
    folder. Its result depends on its arguments and the installed compiler
    alone (the test suite shares results between tests by that: tests/support/compile_cache.py)."""
    with tempfile.TemporaryDirectory(prefix="torch_grouped_conv_iree_") as tmp:
        path, output = Path(tmp, "input.mlirbc"), Path(tmp, "module.vmfb")
        path.write_bytes(source)
        done = subprocess.run([find_tool("iree-compile"), str(path), "-o", str(output), *flags],
                              capture_output=True, text=True)
        vmfb = output.read_bytes() if done.returncode == 0 else b""
        return ToolRun(done.returncode, vmfb, done.stderr.strip())


_DEVICES: dict[tuple[str, tuple[str, ...]], iree_rt.HalDevice] = {}
# Every loaded program (weakly): some outlive the interpreter's own teardown
# (torch.compile keeps its compiled graphs in caches it never clears).
_LOADED: weakref.WeakSet[VmfbProgram] = weakref.WeakSet()


@atexit.register
def release_at_exit() -> None:
    """Release the IREE runtime objects the runners hold, in order (programs'
    contexts and functions, then the cached devices), while the interpreter
    is whole: a runtime object still alive when iree's bindings unload is
    reported as "nanobind: leaked instance ..." on stderr, ~116 lines."""
    for program in list(_LOADED):
        program.release()
    _DEVICES.clear()
    gc.collect()


def runtime_config(driver: str, allocators: list[str] | None = None) -> iree_rt.Config:
    """An IREE runtime config on `driver`'s device with `allocators`
    (default `iree_flags.RUNTIME_ALLOCATORS`); one device per (driver,
    allocators) per process, as iree.runtime caches its own."""
    chosen = tuple(RUNTIME_ALLOCATORS if allocators is None else allocators)
    key = (driver, chosen)
    if key not in _DEVICES:
        if driver == "local-task":
            TaskWorkers.fixed = True  # the driver, and its workers, exist from here on
        before_driver()  # the MKL GEMMs' plugin, read when the driver is created
        _DEVICES[key] = iree_rt.get_driver(driver).create_device_by_uri(driver, allocators=list(chosen))
    return iree_rt.Config(device=_DEVICES[key])


def program_config(threads: int | None = None) -> iree_rt.Config:
    """The runtime config for a module run at `threads` threads: None, the
    local-task driver with its workers as they are (IREE's default: one per
    physical core); 1, local-sync (dispatches run on the calling thread);
    N > 1, local-task with N workers (`iree_flags.TaskWorkers`: one count per
    process)."""
    threads = check_threads(threads)
    if threads == 1:
        return runtime_config("local-sync")
    if threads is not None:
        TaskWorkers.claim(threads)
    return runtime_config("local-task")


def trim_device_caches() -> None:
    """Release the buffers cached by every device `runtime_config` made. A
    caching allocator keeps at most 64 freed buffers per heap: a process that
    ran many modules (the benchmark's rows) would otherwise keep old rows'
    buffers and release, not cache, the next module's."""
    for device in _DEVICES.values():
        device.allocator.trim()


class Entry:
    """`entry` of an IREE module (vmfb) loaded in a context of its own on
    `config`'s device; called with arrays (or `transients.upload` views), it
    returns device arrays. A function that takes transient storage
    (runners/transients.py) gets a buffer from its `pool` per call; the
    others are called through iree.runtime's own invoker. Thread-safe."""

    def __init__(self, vmfb: bytes, config: iree_rt.Config, entry: str = "main"):
        self.context = iree_rt.SystemContext(config=config)
        vm_module = iree_rt.VmModule.copy_buffer(self.context.instance, vmfb)
        self.context.add_vm_module(vm_module)
        function = vm_module.lookup_function(entry)
        if function is None:
            raise InputError(f"the IREE module has no function @{entry}")
        self.function = function
        size = transient_size(self.function)  # InputError for an input-dependent size
        self.pool = None if size is None else TransientPool(config.device, size)
        self._invoker = self.context.modules[vm_module.name][entry]

    def __call__(self, *inputs: np.ndarray | iree_rt.HalBufferView) -> list[iree_rt.DeviceArray]:
        if self.pool is not None:
            return invoke(self.context, self.function, self.pool, inputs)
        outputs = self._invoker(*inputs)
        return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


class VmfbProgram:
    """An IREE module (vmfb) loaded on this machine, its `entry` callable many
    times; inputs are checked against `signature` before each call."""

    def __init__(self, vmfb: bytes, signature: Signature, entry: str = "main", threads: int | None = None):
        self.vmfb, self.signature, self.threads = vmfb, signature, threads
        self._entry: Entry | None = Entry(vmfb, program_config(threads), entry)
        _LOADED.add(self)

    @property
    def transient_buffers(self) -> int:
        """Transient storage buffers this program holds (one per call ever in flight at once; 0 without the argument)."""
        return 0 if self._entry is None or self._entry.pool is None else self._entry.pool.count

    def release(self) -> None:
        """Drop this program's IREE runtime objects (at exit: `release_at_exit`); it cannot be called after."""
        self._entry = None

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        self.signature.check_inputs(inputs)  # InputError: dtype, rank, static dims, count
        assert self._entry is not None, "released: called after the interpreter began to exit"
        outputs = self._entry(*self.signature.as_storage(inputs))
        # Copies: `to_host` maps the device buffer, and an array still holding
        # such a mapping when the interpreter exits (`out = program(x)` at a
        # script's top level) crashed it (exit code 139) once IREE's runtime was released.
        return self.signature.as_model([np.array(o.to_host()) for o in outputs])


class IreeProgram(VmfbProgram):
    """`main` of a linalg-on-tensors module compiled by IREE for this machine
    (`target`: the host by default, or another CPU of the same architecture)
    and `threads`, callable many times. `compilation` records the compile.
    A static module with a large intermediate (`wants_external_transients`;
    `transients` True/False overrides) takes its transient storage from the
    runner (runners/transients.py): one buffer per call in flight, reused."""

    def __init__(self, module: ir.Module, entry: str = "main", extra_flags: list[str] | None = None,
                 threads: int | None = None, target: Target = HOST, transients: bool | None = None):
        signature = read_signature(module, entry)  # InputError before the long work
        if not target.runs_here:
            raise InputError(f"target {target.describe()} cannot run on this {HOST.arch} machine; "
                             "compile it to a file with tgc.save(module, path, target=...) and run it there")
        program_config(threads)  # an impossible thread count fails here, before the compile
        # @main takes its transient storage from the runner (runners/transients.py) where it has a large
        # intermediate (`wants_external_transients`; `transients` True/False overrides the rule)
        wanted = wants_external_transients(module) if transients is None else transients
        self.compilation = compile_for(module, extra_flags, target, check_threads(threads), transients=wanted,
                                       blas_gemms=wants_blas_gemms(target))
        self.compile_warnings = self.compilation.warnings
        # why the default data tiling was dropped (see compile_module), else None
        self.data_tiling_fallback = self.compilation.data_tiling_fallback
        self.retuned_dispatches = self.compilation.retuned
        super().__init__(self.compilation.vmfb, signature, entry, threads)
