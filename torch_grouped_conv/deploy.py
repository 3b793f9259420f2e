"""Deploy: compile a linalg-on-tensors module to an IREE module file that
runs with IREE's runtime alone, for this machine or another one.

    tgc.save(module, "model.vmfb")                                         # the host
    tgc.save(module, "model.vmfb", target=tgc.Target(cpu="x86-64-v3"))     # any x86-64-v3 machine
    tgc.save(module, "arm.vmfb", target=tgc.Target(triple="aarch64-unknown-linux-gnu"))
    run = tgc.load("model.vmfb")                                           # run it here, inputs checked

Beside `model.vmfb` goes `model.vmfb.json` (runners/artifact.py): the exact
iree-compile command and flags, the target, the versions, the entry function's
signature and the rewrite report's summary.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch_mlir import ir

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.files import check_output_path, write_atomically
from torch_grouped_conv.report import RewriteReport
from torch_grouped_conv.rewrite.tuning import tuned_for
from torch_grouped_conv.runners.artifact import make_record, sidecar_path, source_path
from torch_grouped_conv.runners.iree import Compilation, compile_for
from torch_grouped_conv.runners.iree_flags import check_threads
from torch_grouped_conv.runners.signature import read_signature
from torch_grouped_conv.runners.target import HOST, Target
from torch_grouped_conv.stages import last_report

# `report=LAST` (the default): the report of the last compile/lower in this thread.
LAST = "last"


@dataclass(frozen=True)
class Saved:
    """What `save` wrote: the module, its sidecar (and the kept input), and the record."""

    path: Path
    sidecar: Path
    source: Path | None
    compilation: Compilation
    record: dict[str, Any]

    @property
    def command(self) -> str:
        """The iree-compile command line that reproduces the module."""
        return str(self.record["iree_compile"]["command"])


def save(module: ir.Module, path: str | os.PathLike[str], target: Target | None = None, threads: int | None = None,
         report: RewriteReport | str | None = LAST, keep_source: bool = False, transients: bool = False) -> Saved:
    """Compile `module` (linalg-on-tensors, entry `@main`, from any frontend)
    with iree-compile for `target` (default: this machine) and `threads`
    (None: IREE's default), and write `path` (the vmfb) and `path + ".json"`.

    `report`: the RewriteReport to record (default: the last one made in
    this thread, `tgc.last_report()`; None records none). `keep_source`
    also writes the exact iree-compile input to `path + ".mlirbc"`.
    `transients`: `@main` takes a last `!hal.buffer` argument that holds
    every transient of a call (static shapes only; its size is the sidecar's
    `runtime.transient_bytes`; `tgc.load` passes it, one reused buffer per
    call in flight; runners/transients.py). Default: IREE's plain ABI.
    Checked before the long work (InputError, nothing written): the output
    folder, the module's form and signature, the target (a small probe
    compile), `threads`, static shapes for `transients`. Files are written atomically.
    """
    out = Path(path)
    if out.is_dir():
        raise InputError(f"output {str(out)!r} is a directory; give a file name such as model.vmfb")
    for each in (out, sidecar_path(out)):
        check_output_path(each)
    chosen = target if target is not None else HOST
    if not isinstance(chosen, Target):
        raise InputError(f"target={target!r}: give a tgc.Target(triple=..., cpu=..., features=...), or None for the host")
    signature = read_signature(module)
    compilation = compile_for(module, None, chosen, check_threads(threads), keep_source, transients)
    record = make_record(out, compilation, signature, "main", _report_record(report))
    kept = source_path(out) if compilation.source is not None else None
    write_atomically(out, compilation.vmfb)
    if kept is not None and compilation.source is not None:
        write_atomically(kept, compilation.source)
    write_atomically(sidecar_path(out), _json(record))
    return Saved(out.resolve(), sidecar_path(out).resolve(), kept, compilation, record)


def _report_record(report: RewriteReport | str | None) -> dict[str, Any] | None:
    chosen = last_report() if isinstance(report, str) and report == LAST else report
    if chosen is None:
        return None
    if not isinstance(chosen, RewriteReport):
        raise InputError(f"report={report!r}: give a RewriteReport, None, or leave the default (the last report)")
    return {"summary": chosen.summary(), "counts": chosen.counts()}


def _json(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, indent=2) + "\n"


# ---- the command line's side: `compile MODEL -o model.vmfb`, `lower IR -o model.vmfb`

VMFB = "vmfb"


@dataclass(frozen=True)
class DeployOptions:
    """What `compile`/`lower` take for an IREE module output: the target, the
    thread count, whether to keep the iree-compile input, and `verbose`
    (print the iree-compile command line)."""

    target: Target = HOST
    threads: int | None = None
    keep_source: bool = False
    verbose: bool = False
    transients: bool = False

    @property
    def given(self) -> bool:
        """Whether any option that only an IREE module output uses was given."""
        return self.target != HOST or self.threads is not None or self.keep_source or self.transients

    def wants_vmfb(self, output: Path | None, output_type: str | None) -> bool:
        """Whether to write an IREE module (by `-o X.vmfb` or `--output-type
        vmfb`), checked before the long work: InputError (one line) for a
        vmfb to stdout, a conflicting `--output-type`, target options without
        a vmfb output, a target iree-compile cannot build."""
        by_name = output is not None and output.suffix.lower() == ".vmfb"
        if output_type is not None and output_type != VMFB and by_name:
            raise InputError(f"-o {output} names an IREE module (.vmfb) but --output-type is {output_type}; "
                             "drop --output-type, or choose another file name")
        vmfb = by_name or output_type == VMFB
        if vmfb and output is None:
            raise InputError("--output-type vmfb writes a binary file; give -o model.vmfb")
        if not vmfb and self.given:
            raise InputError("--target-triple/--target-cpu/--target-cpu-features/--threads/--keep-source/"
                             "--external-transients apply to an IREE module output; add -o model.vmfb")
        if vmfb:
            assert output is not None
            for each in (output, sidecar_path(output)):
                check_output_path(each)
            compile_target_check(self.target)
        return vmfb

    @contextlib.contextmanager
    def tuned(self) -> Iterator[None]:
        """`auto` picks for the target's CPU family inside the block when the
        target is another machine (rewrite/tuning.py); for the host, the
        active tuning (TGC_TUNING, else the host's) stands."""
        if self.target.is_host:
            yield
            return
        with tuned_for(self.target.tuning):
            yield

    def write(self, module: ir.Module, output: Path, report: RewriteReport | None, echo: Any) -> Saved:
        """`save` the module; `echo` (a print function) says what was written,
        and with `verbose` the iree-compile command line and target."""
        saved = save(module, output, self.target, self.threads, report=report, keep_source=self.keep_source,
                     transients=self.transients)
        echo(f"wrote {saved.path.name} ({saved.path.stat().st_size} bytes) for {self.target.describe()}, "
             f"flags and signature in {saved.sidecar.name}")
        if self.verbose:
            echo(f"iree-compile command: {saved.command}")
            if saved.source is None:
                echo("  (INPUT.mlir: the linalg module; --keep-source writes the exact input, with the runner's "
                     "data-tiling hints, beside the module)")
            if saved.compilation.transient_bytes is not None:
                echo(f"@main takes its transient storage as a last argument: a !hal.buffer of "
                     f"{saved.compilation.transient_bytes} bytes")
            if saved.compilation.data_tiling_fallback is not None:
                echo(f"data tiling dropped: {saved.compilation.data_tiling_fallback}")
            if saved.compilation.retuned:
                echo(f"{len(saved.compilation.retuned)} taps dispatch(es) retuned between --compile-to="
                     "executable-configurations and --compile-from (runners/dispatch_tiles.py): "
                     + "; ".join(saved.compilation.retuned))
        return saved


def compile_target_check(target: Target) -> None:
    """`runners.target.check_target` with the device flags iree-compile gets."""
    from torch_grouped_conv.runners.iree import DEVICE_FLAGS
    from torch_grouped_conv.runners.target import check_target

    check_target(target, DEVICE_FLAGS)


def add_deploy_arguments(parser: Any) -> None:
    """The IREE module options of `compile` and `lower` (argparse)."""
    parser.add_argument("--target-triple", help="compile the .vmfb for this LLVM triple, e.g. "
                        "aarch64-unknown-linux-gnu, riscv64-unknown-linux-gnu (default: this machine)")
    parser.add_argument("--target-cpu", help="LLVM CPU name, e.g. x86-64-v3, neoverse-n1 "
                        "(default: host on this machine, generic for another triple)")
    parser.add_argument("--target-cpu-features", help="LLVM CPU features, e.g. +avx2,+fma or +v "
                        "(default: the CPU's own; riscv64: +m,+a,+f,+d,+c)")
    parser.add_argument("--threads", type=int, help="compile the .vmfb for this many runtime threads "
                        "(default: IREE's)")
    parser.add_argument("--keep-source", action="store_true",
                        help="also write the exact iree-compile input, OUTPUT.mlirbc")
    parser.add_argument("--external-transients", action="store_true",
                        help="@main takes its transient storage as a last !hal.buffer argument, of the size in the "
                        ".json sidecar (static shapes only; default: IREE's plain ABI)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the iree-compile command line")


def options_from_args(args: Any) -> DeployOptions:
    target = Target(triple=args.target_triple, cpu=args.target_cpu, features=args.target_cpu_features)
    if args.external_transients and getattr(args, "dynamic_dim", None):
        raise InputError("--external-transients needs static shapes; drop --dynamic-dim or --external-transients")
    return DeployOptions(target, check_threads(args.threads), args.keep_source, args.verbose, args.external_transients)
