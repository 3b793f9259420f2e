"""External transients for the `iree` runner: the caller, not IREE, owns the
memory a call works in.

A module compiled with a trailing `!hal.buffer {iree.abi.transients}`
argument on `@main` (`with_transient_storage`) places every transient of a
call (an im2col matrix, a packed operand, the intermediate activations) in
that buffer; IREE records its size in the function's reflection
(`TRANSIENT_SIZE`). The runner keeps such buffers in a `TransientPool`, one
per call in flight, and reuses them: without it IREE 3.13's local-task
driver maps transients over 64 MiB afresh on every call and the page faults
of two workers serialize (wav2vec2's positional conv at 2 threads: 125 ->
91 ms, docs/performance.md "Large im2col matrices"). Memory stays flat: one
buffer per thread calling at once, for the program's life.

The runner gives the argument to static modules with an intermediate of at
least 16 MiB (`iree.wants_external_transients`): below that IREE's own pools
serve the transients well and the extra ABI costs iree-compile ~0.1 s per
module. Saved modules (`tgc.save`) keep IREE's plain ABI, inputs in and
results out, for `iree-run-module` and other runtimes, unless asked.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from iree import runtime as iree_rt
from iree.runtime.array_interop import map_dtype_to_element_type

from torch_grouped_conv.errors import InputError

TRANSIENTS_ARG = "iree.abi.transients"
TRANSIENT_SIZE = "iree.abi.transients.size.constant"
MIN_BYTES = 64  # a buffer for a call with no transients at all (size 0)


def with_transient_storage(source: bytes, entry: str = "main") -> bytes:
    """`source` (MLIR bytecode) with a trailing `!hal.buffer {iree.abi.transients}`
    argument on `@entry` (`add_transient_storage`)."""
    from iree.compiler import ir as iree_ir

    with iree_ir.Context(), iree_ir.Location.unknown():
        module = iree_ir.Module.parse(source)
        add_transient_storage(module, entry)
        out = io.BytesIO()
        module.operation.write_bytecode(out)
    return out.getvalue()


def add_transient_storage(module: object, entry: str = "main") -> None:
    """Add a trailing `!hal.buffer {iree.abi.transients}` argument to `@entry`
    of `module`, in place: a module of IREE's own MLIR bindings (in their
    context, which knows the hal dialect; torch-mlir's does not)."""
    from iree.compiler import ir as iree_ir

    assert isinstance(module, iree_ir.Module)
    main = next(op.operation for op in module.body.operations
                if "sym_name" in op.operation.attributes
                and iree_ir.StringAttr(op.operation.attributes["sym_name"]).value == entry)
    signature = iree_ir.FunctionType(iree_ir.TypeAttr(main.attributes["function_type"]).value)
    storage = iree_ir.Type.parse("!hal.buffer")
    main.attributes["function_type"] = iree_ir.TypeAttr.get(
        iree_ir.FunctionType.get([*signature.inputs, storage], signature.results))
    arg_attrs = (list(iree_ir.ArrayAttr(main.attributes["arg_attrs"])) if "arg_attrs" in main.attributes
                 else [iree_ir.DictAttr.get({})] * len(signature.inputs))
    marked = iree_ir.DictAttr.get({TRANSIENTS_ARG: iree_ir.UnitAttr.get()})
    main.attributes["arg_attrs"] = iree_ir.ArrayAttr.get([*arg_attrs, marked])
    main.regions[0].blocks[0].add_argument(storage, iree_ir.Location.unknown())


def transient_size(function: iree_rt.VmFunction) -> int | None:
    """The bytes of transient storage `function` takes, or None for a function
    without the argument. InputError for one whose size depends on its inputs
    (a module compiled elsewhere with dynamic shapes: not supported here)."""
    reflection = function.reflection
    if TRANSIENT_SIZE in reflection:
        return int(reflection[TRANSIENT_SIZE])
    if TRANSIENTS_ARG in reflection.get("iree.abi.declaration", ""):
        raise InputError(f"{function.name} takes external transients of an input-dependent size, which this runner "
                         "does not provide; compile it with static shapes, or without the transients argument")
    return None


def module_transient_size(vmfb: bytes, entry: str = "main") -> int | None:
    """`transient_size` of `entry` in a compiled module, read without loading it on a device."""
    module = iree_rt.VmModule.copy_buffer(iree_rt.VmInstance(), vmfb)
    function = module.lookup_function(entry)
    assert function is not None, f"the module has no @{entry}"
    return transient_size(function)


class TransientPool:
    """Transient buffers of `size` bytes on `device`: `lease` hands one to a
    call and takes it back after; a call that finds none free allocates one
    (so there are as many as calls ever ran at once). Thread-safe."""

    def __init__(self, device: iree_rt.HalDevice, size: int):
        self.device, self.size = device, max(size, MIN_BYTES)
        self._free: list[iree_rt.HalBuffer] = []
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        """Buffers held now (free ones; a call's buffer is counted once it is back)."""
        with self._lock:
            return len(self._free)

    @contextmanager
    def lease(self) -> Iterator[iree_rt.HalBuffer]:
        with self._lock:
            buffer = self._free.pop() if self._free else None
        if buffer is None:
            buffer = self.device.allocator.allocate_buffer(
                memory_type=iree_rt.MemoryType.DEVICE_LOCAL, allowed_usage=iree_rt.BufferUsage.DEFAULT,
                allocation_size=self.size)
        try:
            yield buffer
        finally:
            with self._lock:
                self._free.append(buffer)


def upload(device: iree_rt.HalDevice, array: np.ndarray) -> iree_rt.HalBufferView:
    """`array` copied into a device buffer, as the buffer view a call takes."""
    view = device.allocator.allocate_buffer_copy(
        memory_type=iree_rt.MemoryType.DEVICE_LOCAL, allowed_usage=iree_rt.BufferUsage.DEFAULT, device=device,
        buffer=np.ascontiguousarray(array), element_type=map_dtype_to_element_type(array.dtype))
    assert isinstance(view, iree_rt.HalBufferView)
    return view


def invoke(context: iree_rt.SystemContext, function: iree_rt.VmFunction, pool: TransientPool,
           inputs: Sequence[np.ndarray | iree_rt.HalBufferView]) -> list[iree_rt.DeviceArray]:
    """Call `function` (synchronous ABI) on `inputs` (arrays, or views made by
    `upload`) and a buffer from `pool`; its results (buffer views) as device
    arrays. The buffer goes back to the pool when the call returns: the
    synchronous ABI has finished with it."""
    device = pool.device
    args = iree_rt.VmVariantList(len(inputs) + 1)
    for value in inputs:
        args.push_ref(value if isinstance(value, iree_rt.HalBufferView) else upload(device, value))
    returned = iree_rt.VmVariantList(1)  # a capacity: the call appends every result
    with pool.lease() as storage:
        args.push_ref(storage)
        context.vm_context.invoke(function, args, returned)
    return [iree_rt.DeviceArray(device, returned.get_as_object(i, iree_rt.HalBufferView), implicit_host_transfer=True)
            for i in range(len(returned))]
