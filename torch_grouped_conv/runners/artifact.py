"""A saved IREE module: `model.vmfb` and its sidecar `model.vmfb.json`.

The vmfb runs with IREE's runtime alone (`iree.runtime`, `iree-run-module`).
The sidecar records how it was made and what it takes, so that the compile
can be reproduced by hand and `load("model.vmfb")` checks every call's inputs
as a freshly compiled module does:

- `iree_compile`: the exact command line and flags, why data tiling was
  dropped (if it was), iree-compile's warnings;
- `target` (what was given, what was compiled for, the architecture) and `threads`;
- `entry` and `signature`: the entry function's inputs and results (shape,
  None where dynamic; the model's dtype; the buffer's dtype);
- `versions` of this package, torch-mlir and IREE; `vmfb_sha256`;
- `report`: the rewrite report's summary and counts, when one is known.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import numpy as np

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.runners.iree import Compilation, VmfbProgram
from torch_grouped_conv.runners.iree_flags import check_threads, runtime_driver
from torch_grouped_conv.runners.signature import BF16, Signature, TensorSpec
from torch_grouped_conv.runners.target import host_arch

FORMAT = "torch-grouped-conv/iree-vmfb"
FORMAT_VERSION = 1
PACKAGES = ("torch-grouped-conv", "torch-mlir", "iree-base-compiler", "iree-base-runtime")


def sidecar_path(path: Path) -> Path:
    """`model.vmfb` -> `model.vmfb.json`."""
    return path.with_name(path.name + ".json")


def source_path(path: Path) -> Path:
    """`model.vmfb` -> `model.vmfb.mlirbc`: the iree-compile input, when kept."""
    return path.with_name(path.name + ".mlirbc")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _spec_record(spec: TensorSpec) -> dict[str, Any]:
    return {"shape": list(spec.dims), "dtype": spec.dtype.name, "storage": spec.storage.name}


def signature_record(signature: Signature) -> dict[str, Any]:
    return {"inputs": [_spec_record(s) for s in signature.inputs],
            "results": [_spec_record(s) for s in signature.results]}


def _dtype(name: object) -> np.dtype:
    if name == BF16.name:
        return BF16
    try:
        return np.dtype(str(name))
    except TypeError:
        raise InputError(f"the sidecar names an unknown dtype {name!r}; save the module again") from None


def signature_from_record(record: dict[str, Any]) -> Signature:
    def spec(item: dict[str, Any]) -> TensorSpec:
        dims = tuple(None if d is None else int(d) for d in item["shape"])
        return TensorSpec(_dtype(item["dtype"]), _dtype(item.get("storage", item["dtype"])), dims)

    return Signature(tuple(spec(i) for i in record["inputs"]), tuple(spec(r) for r in record["results"]))


RUNTIME_NOTE = "iree.runtime.load_vm_flatbuffer_file(vmfb, driver=...); see docs/usage.md (Deploy)"
TRANSIENTS_NOTE = ("@main takes a last !hal.buffer argument of transient_bytes bytes (iree.abi.transients), "
                   "reusable across calls, one per call in flight; tgc.load passes it; see docs/usage.md (Deploy)")


def make_record(path: Path, compilation: Compilation, signature: Signature, entry: str,
                report: dict[str, Any] | None) -> dict[str, Any]:
    """The sidecar's content for `compilation` written to `path`."""
    source = source_path(path).name if compilation.source is not None else "INPUT.mlir"
    threads = compilation.threads
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "vmfb": path.name, "vmfb_sha256": hashlib.sha256(compilation.vmfb).hexdigest(),
        "entry": entry,
        "signature": signature_record(signature),
        "target": compilation.target.to_dict(),
        "threads": threads,
        "runtime": {"driver": runtime_driver(threads) if threads is not None else "local-task",
                    "transient_bytes": compilation.transient_bytes,
                    "note": RUNTIME_NOTE if compilation.transient_bytes is None else TRANSIENTS_NOTE},
        "iree_compile": {
            "command": compilation.command(source, path.name),
            "flags": list(compilation.flags),
            "input": source if compilation.source is not None else
            "not kept (save with keep_source=True / --keep-source to keep the exact input)",
            "data_tiling_fallback": compilation.data_tiling_fallback,
            # taps dispatches whose vector tiles the runner set between iree-compile's two phases
            # (runners/dispatch_tiles.py); empty: `command` alone made the module
            "retuned_dispatches": list(compilation.retuned),
            "warnings": compilation.warnings,
        },
        "versions": versions(),
        "report": report,
    }


def read_record(path: Path) -> dict[str, Any]:
    """The sidecar of `path`; InputError (one line) if missing or not ours."""
    side = sidecar_path(path)
    if not path.is_file():
        raise InputError(f"module file {str(path)!r} does not exist")
    if not side.is_file():
        raise InputError(f"{str(path)!r} has no sidecar {side.name!r} (it records the signature every call is "
                         "checked against); save the module with tgc.save or `torch-grouped-conv compile -o X.vmfb`")
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the sidecar {str(side)!r}: {e}; save the module again") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"{str(side)!r} is not a torch-grouped-conv sidecar (no \"format\": \"{FORMAT}\")")
    return record


def load_saved(path: Path, threads: int | None = None) -> VmfbProgram:
    """A saved module, loaded to run here: the vmfb checked against its
    sidecar (hash, architecture), calls checked against the recorded
    signature. `threads` None: the count it was compiled for (IREE's default
    if none was)."""
    record = read_record(path)
    vmfb = path.read_bytes()
    if hashlib.sha256(vmfb).hexdigest() != record.get("vmfb_sha256"):
        raise InputError(f"{str(path)!r} does not match its sidecar (another vmfb was written over it); "
                         "save the module again")
    target = record.get("target") or {}
    if target.get("arch") != host_arch():
        compiled_for = (target.get("compiled_for") or {}).get("triple", "an unknown target")
        raise InputError(f"{str(path)!r} was compiled for {compiled_for}; it cannot run on this "
                         f"{host_arch()} machine (run it there with iree.runtime or iree-run-module)")
    chosen = check_threads(threads if threads is not None else record.get("threads"))
    return VmfbProgram(vmfb, signature_from_record(record["signature"]), str(record.get("entry", "main")), chosen)
