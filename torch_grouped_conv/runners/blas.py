"""GEMMs through the CPU's BLAS in the IREE modules this process runs.

IREE 3.13's data-tiled f32 GEMM kernel reaches about 80 % of a large SGEMM's
rate on the Intel Xeon hosts (docs/performance.md, "Why the GEMMs run at half
the ceiling here"); MKL's sgemm, which PyTorch already carries in
libtorch_cpu and exports, runs at it. With the `intel-avx512` tuning the
`iree` runner therefore calls MKL from its GEMM dispatches:

- `blas_plugin.c`, built here once per machine with the C compiler (`CC`, else
  `cc`) against PyTorch's libtorch_cpu, is an IREE executable plugin: it
  gives the dispatches the import `tgc_sgemm`.
- `register()` loads it into this process's IREE local drivers
  (`--executable_plugin`), before the first driver is created (the drivers read
  the flag then); `runners/iree.runtime_config` calls it.
- `rewrite_gemms` rewrites iree-compile's input: every static f32
  `linalg.matmul` / `linalg.batch_matmul` with the plain indexing maps (the
  GEMMs of `matmul`, `im2col`, `winograd`, and torch-mlir's own) becomes a
  `flow.dispatch` of a hand-written executable (one per GEMM shape, named
  like IREE's dispatches, its sizes and split constants in it) that calls
  `tgc_sgemm`, plus
  a `linalg.elementwise` add of the accumulator unless it is a zero fill. Row-major
  operands are passed as they are: no packing into tiles, no unpacking after.
  IREE can fuse nothing into the call; the epilogue (bias, BatchNorm, ReLU)
  becomes one elementwise pass of its own, where it rode on the unpack before.

Read -> decide -> emit: `read_gemm` (an op -> `Gemm` or None), `split` (a
pure plan of the workgroups), `emit_dispatch`.

Modules saved for another machine (`tgc.save`, the CLI's `-o X.vmfb`) never
take this path: a vmfb with the import needs the plugin, and PyTorch, where it
runs. Where the plugin cannot be had (no C compiler, a PyTorch without MKL's
symbols, not Linux x86-64), `unavailable()` says why and IREE's own GEMMs run.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import platform
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMPORT = "tgc_sgemm"  # the plugin's function
_INDEX_ARGS = 9  # batch, m, n, k, m_chunk, n_chunk, m_chunks, n_chunks, workgroup
_CALL_TYPES = ", ".join(["memref<f32>, index"] * 3 + ["index"] * _INDEX_ARGS)
# One executable per GEMM shape (as IREE makes one dispatch function per shape), its sizes and
# split constants of its own (identical bodies would be merged into one by iree-compile).
# Workgroup w computes batch item w / (m_chunks * n_chunks), and in it one row chunk and one
# column chunk (blas_plugin.c, `tgc_sgemm`). The call carries the locations of the GEMMs it
# serves, so the bench's breakdown attributes it to their convolutions.
_EXECUTABLE_MLIR = """
stream.executable private @{symbol} {{
  stream.executable.export public @{export} workgroups() -> (index, index, index) {{
    %count = arith.constant {workgroups} : index
    %one = arith.constant 1 : index
    stream.return %count, %one, %one : index, index, index
  }}
  builtin.module {{
    func.func private @{call}({types}) attributes {{llvm.bareptr = true}}
    func.func @{export}(%a: !stream.binding, %b: !stream.binding, %c: !stream.binding) {{
      %zero = arith.constant 0 : index
      %batch = arith.constant {batch} : index
      %m = arith.constant {m} : index
      %n = arith.constant {n} : index
      %k = arith.constant {k} : index
      %m_chunk = arith.constant {m_chunk} : index
      %n_chunk = arith.constant {n_chunk} : index
      %m_chunks = arith.constant {m_chunks} : index
      %n_chunks = arith.constant {n_chunks} : index
      %workgroup = stream.dispatch.workgroup.id[0] : index
      %a_view = stream.binding.subspan %a[%zero] : !stream.binding -> memref<{a_size}xf32>
      %b_view = stream.binding.subspan %b[%zero] : !stream.binding -> memref<{b_size}xf32>
      %c_view = stream.binding.subspan %c[%zero] : !stream.binding -> memref<{c_size}xf32>
      %a_base, %a_offset, %a_n, %a_s = iree_codegen.extract_strided_metadata %a_view
          : memref<{a_size}xf32> -> memref<f32>, index, index, index
      %b_base, %b_offset, %b_n, %b_s = iree_codegen.extract_strided_metadata %b_view
          : memref<{b_size}xf32> -> memref<f32>, index, index, index
      %c_base, %c_offset, %c_n, %c_s = iree_codegen.extract_strided_metadata %c_view
          : memref<{c_size}xf32> -> memref<f32>, index, index, index
      func.call @{call}(%a_base, %a_offset, %b_base, %b_offset, %c_base, %c_offset, %batch, %m, %n, %k,
                          %m_chunk, %n_chunk, %m_chunks, %n_chunks, %workgroup) : ({types}) -> () {location}
      return
    }}
  }}
}}
"""
_MATMUL_MAPS = {  # the ops' own (default) indexing maps: anything else is a transposed form, left to IREE
    "linalg.matmul": "[affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, "
                     "affine_map<(d0, d1, d2) -> (d0, d1)>]",
    "linalg.batch_matmul": "[affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>, affine_map<(d0, d1, d2, d3) -> "
                           "(d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>]",
}
MIN_SPLIT_COLUMNS = 64  # a column chunk narrower than this is split by rows instead
MIN_SPLIT_ROWS = 32


@dataclass(frozen=True)
class Gemm:
    """C[batch, m, n] = A[batch, m, k] @ B[batch, k, n], row-major f32 (batch 1 for linalg.matmul)."""

    batch: int
    m: int
    n: int
    k: int
    batched: bool = True  # a linalg.batch_matmul (else a linalg.matmul)

    def dispatch_name(self, index: int) -> str:
        """`blas_dispatch_<i>_<op>_<ranges>_f32`, IREE's naming of a dispatch by its op and loop
        ranges, which the bench's efficiency table reads FLOPs from (bench/efficiency.py)."""
        ranges = (self.batch, self.m, self.n, self.k) if self.batched else (self.m, self.n, self.k)
        return f"blas_dispatch_{index}_{'batch_matmul' if self.batched else 'matmul'}_{'x'.join(map(str, ranges))}_f32"


@dataclass(frozen=True)
class Split:
    """The workgroups of one GEMM: per batch item, `m_chunks` x `n_chunks` blocks of C."""

    m_chunk: int
    n_chunk: int
    m_chunks: int
    n_chunks: int

    def workgroups(self, gemm: Gemm) -> int:
        return gemm.batch * self.m_chunks * self.n_chunks


def split(gemm: Gemm, threads: int) -> Split:
    """One block per batch item where the batch alone feeds the `threads`
    workers; else each item in `threads` column chunks (at least
    MIN_SPLIT_COLUMNS wide), or row chunks (MIN_SPLIT_ROWS) for narrow C (a 7x7
    feature map's 49 columns), or whole where it is too small for either."""
    m_chunks = n_chunks = 1
    if gemm.batch < threads:
        if gemm.n >= MIN_SPLIT_COLUMNS * threads:
            n_chunks = threads
        elif gemm.m >= MIN_SPLIT_ROWS * threads:
            m_chunks = threads
    return Split(-(-gemm.m // m_chunks), -(-gemm.n // n_chunks), m_chunks, n_chunks)


def read_gemm(op: object) -> Gemm | None:
    """The GEMM of a static f32 linalg.matmul / batch_matmul with its plain
    indexing maps (an `iree.compiler.ir` operation), else None."""
    from iree.compiler import ir

    assert isinstance(op, ir.Operation)
    maps = _MATMUL_MAPS.get(op.name)
    if maps is None or ("indexing_maps" in op.attributes and str(op.attributes["indexing_maps"]) != maps):
        return None
    types = [ir.RankedTensorType(v.type) for v in op.operands]
    if len(types) != 3 or not all(t.has_static_shape and str(t.element_type) == "f32" for t in types):
        return None
    a, b = types[0].shape, types[1].shape
    return Gemm(a[0] if len(a) == 3 else 1, a[-2], b[-1], a[-1], batched=len(a) == 3)


def _is_zero_fill(value: object) -> bool:
    from iree.compiler import ir

    assert isinstance(value, ir.Value)
    owner = getattr(value.owner, "operation", value.owner)  # an OpView, or a Block for an argument
    if not isinstance(owner, ir.Operation) or owner.name != "linalg.fill":
        return False
    constant = getattr(owner.operands[0].owner, "operation", owner.operands[0].owner)
    if not isinstance(constant, ir.Operation) or constant.name != "arith.constant":
        return False
    value = constant.attributes["value"]
    return isinstance(value, ir.FloatAttr) and value.value == 0.0


def emit_dispatch(op: object, entry_point: str) -> None:
    """Replace `op` by a dispatch to `entry_point` (`@executable::@export`), and the accumulator's add."""
    from iree.compiler import ir
    from iree.compiler.dialects import flow, linalg, tensor

    assert isinstance(op, ir.Operation)
    lhs, rhs, init = op.operands[0], op.operands[1], op.operands[2]
    with ir.InsertionPoint(op), op.location:
        entry = ir.ArrayAttr.get([ir.Attribute.parse(entry_point)])
        product = flow.DispatchOp([init.type], [], entry, [lhs, rhs], [], []).results[0]
        result = product
        if not _is_zero_fill(init):
            empty = tensor.EmptyOp(ir.RankedTensorType(init.type).shape, ir.F32Type.get()).result
            result = linalg.elementwise(init, product, outs=[empty], kind=linalg.ElementwiseKind.add)
    op.results[0].replace_all_uses_with(result)
    op.erase()


def _executable(gemm: Gemm, plan: Split, symbol: str, export: str, location: object) -> str:
    """The text of the executable for `gemm` split by `plan`, its call at `location`."""
    return _EXECUTABLE_MLIR.format(
        symbol=symbol, export=export, call=IMPORT, types=_CALL_TYPES, location=location,
        workgroups=plan.workgroups(gemm), batch=gemm.batch, m=gemm.m, n=gemm.n, k=gemm.k,
        m_chunk=plan.m_chunk, n_chunk=plan.n_chunk, m_chunks=plan.m_chunks, n_chunks=plan.n_chunks,
        a_size=gemm.batch * gemm.m * gemm.k, b_size=gemm.batch * gemm.k * gemm.n, c_size=gemm.batch * gemm.m * gemm.n)


def _gemm_ops(module: object) -> list[tuple[Any, Gemm]]:
    from iree.compiler import ir

    assert isinstance(module, ir.Module)
    found: list[tuple[Any, Gemm]] = []
    for function in module.body.operations:
        for region in function.operation.regions:
            for block in region:
                for op in block.operations:
                    gemm = read_gemm(op.operation)
                    if gemm is not None:
                        found.append((op.operation, gemm))
    return found


def with_blas_gemms(source: bytes, threads: int) -> tuple[bytes, int]:
    """`source` (MLIR bytecode, linalg on tensors) with its GEMMs calling the
    plugin (`rewrite_gemms`); `source` itself where it has none."""
    from iree.compiler import ir

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(source)
        count = rewrite_gemms(module, threads)
        if not count:
            return source, 0
        out = io.BytesIO()
        module.operation.write_bytecode(out)
    return out.getvalue(), count


def rewrite_gemms(module: object, threads: int) -> int:
    """Make `module`'s GEMMs call the plugin (`tgc_sgemm`), split for
    `threads` workers, in place; how many. `module` is one of IREE's MLIR
    bindings (in their context, which knows the flow and stream dialects)."""
    from iree.compiler import ir

    assert isinstance(module, ir.Module)
    gemms = _gemm_ops(module)
    if not gemms:
        return 0
    first = module.body.operations[0]
    shapes = {gemm: index for index, gemm in enumerate(dict.fromkeys(gemm for _, gemm in gemms))}  # program order
    for shape, index in shapes.items():
        where = ir.Location.fused([op.location for op, gemm in gemms if gemm == shape])
        text = _executable(shape, split(shape, threads), f"tgc_blas_{index}", shape.dispatch_name(index), where)
        parsed = ir.Module.parse(text)  # kept alive while its ops move (they are freed with it)
        for executable in list(parsed.body.operations):
            executable.operation.move_before(first)
    for op, gemm in gemms:
        emit_dispatch(op, f"@tgc_blas_{shapes[gemm]}::@{gemm.dispatch_name(shapes[gemm])}")
    return len(gemms)


# --- the plugin: build, load ---------------------------------------------------------------------------------------

PLUGIN_SOURCE = Path(__file__).with_name("blas_plugin.c")


def _torch_lib() -> Path:
    import torch

    return Path(torch.__file__).parent / "lib"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "torch-grouped-conv"


def build_plugin(cache: Path, compiler: str) -> tuple[Path | None, str]:
    """(the plugin library, "") or (None, why not): built with `compiler`
    against this PyTorch's libtorch_cpu, once per source and PyTorch install,
    into `cache`, atomically (a concurrent build of the same key gets one whole file)."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return None, f"the BLAS plugin is built for Linux x86-64 only (this is {platform.system()} {platform.machine()})"
    lib = _torch_lib()
    key = hashlib.sha256(PLUGIN_SOURCE.read_bytes() + str(lib.resolve()).encode()).hexdigest()[:16]
    path = cache / f"blas_plugin-{key}.so"
    if path.exists():
        return path, ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            return _compile(compiler, lib, Path(tmp, path.name), path)
    except OSError as error:  # an unwritable cache
        return None, f"cannot write the BLAS plugin into {path.parent} ({error.strerror}); set XDG_CACHE_HOME"


def _compile(compiler: str, lib: Path, built: Path, path: Path) -> tuple[Path | None, str]:
    command = [compiler, "-O2", "-shared", "-fPIC", "-o", str(built), str(PLUGIN_SOURCE),
               f"-L{lib}", "-ltorch_cpu", f"-Wl,-rpath,{lib}", "-Wl,--no-undefined"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        why = error.strerror if isinstance(error, OSError) else "timed out"
        return None, f"no C compiler to build the BLAS plugin ({compiler}: {why}); set CC"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return None, f"building the BLAS plugin with {compiler} failed: {last}"
    os.replace(built, path)
    return path, ""


@functools.cache
def _built() -> tuple[Path | None, str]:
    """`build_plugin` into the user's cache (`XDG_CACHE_HOME`) with `CC` (else `cc`), once per process."""
    return build_plugin(_cache_dir(), os.environ.get("CC", "cc"))


def plugin_path() -> Path | None:
    """The built plugin, or None (`unavailable()` says why)."""
    return _built()[0]


def unavailable() -> str | None:
    """Why the plugin cannot be used in this process, or None."""
    if not _Loaded.plugin and _Loaded.drivers:
        return "an IREE local driver was created in this process before the BLAS plugin was loaded"
    return _built()[1] or None


def warn_unavailable() -> None:
    """One warning per process where MKL GEMMs were asked for (the tuning) but cannot be had."""
    if not _Loaded.warned:
        _Loaded.warned = True
        warnings.warn(f"GEMMs through MKL unavailable, IREE's own run: {unavailable()}", RuntimeWarning, stacklevel=3)


def runtime_flags() -> list[str]:
    """The IREE runtime flag that loads the plugin (for iree-run-module and
    iree-benchmark-module on a rewritten module), or [] where unavailable."""
    path = plugin_path()
    return [] if path is None else [f"--executable_plugin={path}"]


class _Loaded:
    """Whether the plugin is loaded, and whether a local driver exists (then it can no longer be)."""

    plugin = False
    drivers = False
    warned = False


def register() -> bool:
    """Load the plugin into this process's IREE local drivers, once, if no
    driver exists yet (the drivers read `--executable_plugin` when they are
    created). True when it is loaded."""
    if not _Loaded.plugin and not _Loaded.drivers:
        flags = runtime_flags()
        if flags:
            from iree import runtime as iree_rt

            iree_rt.flags.parse_flags(*flags)
            _Loaded.plugin = True
    return _Loaded.plugin


def before_driver() -> None:
    """Called before each IREE local driver is created (runners/iree.py,
    bench/variants.py): load the plugin now, while it still can be."""
    register()
    _Loaded.drivers = True
