"""The embedded runner: linalg-on-tensors -> LLVM with torch-mlir's refback-*
passes, JIT-compiled by MLIR's ExecutionEngine. No dependency beyond torch-mlir.

Calling convention: `refback-munge-calling-conventions` rewrites `@main` to
take unranked memrefs and, instead of returning, to call one external function
per result signature, `refbackend_consume_func_return_<types>`. We register a
Python callback under each such name; it copies the results out and frees
their buffers. Inputs are checked against the signature before every call
(runners/signature.py); results take the model's dtypes (uint8, not i8).

bf16: refback-munge-calling-conventions accepts no bf16 memref ("argument
must be a memref of f16, f32, f64, i1, i8, i16, ..."), and numpy has no
bf16. So before lowering, `@main`'s bf16 arguments and results are retyped
to i16 at the boundary with an elementwise `arith.bitcast` inside; the runner
passes bf16 arrays (ml_dtypes.bfloat16) as their uint16 bits and views the
i16 results of those positions back as bfloat16. Same bits, no rounding.

Weights: before lowering, every tensor constant of `@main` with at least
`weights.MIN_ELEMENTS` elements becomes a trailing argument
(runners/weights.py); its data stays in numpy (`RefBackendProgram.weights`)
and is passed after the user's inputs on every call. The JIT compiles code,
not data: as LLVM globals, a net's weights were most of the JIT's time and
memory (figures in docs/design.md, "Runners").
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor
from torch_mlir.execution_engine import ExecutionEngine
from torch_mlir.runtime import UnrankedMemRefDescriptor

from torch_grouped_conv.errors import CompileError
from torch_grouped_conv.runners.common import clone_module, run_pipeline
from torch_grouped_conv.runners.packs import decompose_packs
from torch_grouped_conv.runners.signature import BF16, argument_attributes, entry_function, read_signature
from torch_grouped_conv.runners.weights import MIN_ELEMENTS, hoist, plan_hoist

RETURN_CALLBACK_PREFIX = "refbackend_consume_func_return_"

# The memref spellings refback uses in callback names, and their numpy dtypes.
MEMREF_DTYPES = {
    "mrf16": np.float16,
    "mrf32": np.float32,
    "mrf64": np.float64,
    "mri1": np.bool_,
    "mri8": np.int8,
    "mri16": np.int16,
    "mri32": np.int32,
    "mri64": np.int64,
}
# The JIT-ed code mallocs its results (finalize-memref-to-llvm: malloc); the same libc frees them.
_LIBC = ctypes.CDLL(None)
_LIBC.free.argtypes = [ctypes.c_void_p]

LOWERING_PIPELINE = [
    # Named linalg ops (our convs included) become linalg.generic, which the
    # loop lowering below understands.
    "func.func(linalg-generalize-named-ops)",
    "func.func(linalg-fuse-elementwise-ops)",
    "convert-shape-to-std",
    # tensor.pad has no bufferization of its own here: refback turns it into
    # tensor.empty + insert_slice first.
    "func.func(refback-generalize-tensor-pad)",
    "func.func(refback-generalize-tensor-concat)",
    # Tensors -> buffers; function boundaries get identity-layout memrefs. The
    # analysis writes in place where it can (torch-mlir's refbackend copies
    # before every write: 185 copy loops in a Winograd module, its JIT 2x and
    # its calls 4x slower); @main's arguments are read-only (`read_only_arguments`).
    "func.func(tm-tensor-bufferize)",
    "one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map}",
    "refback-mlprogram-bufferize",
    "func.func(buffer-deallocation-pipeline)",
    # Unranked-memref arguments and result callbacks (see module docstring).
    "refback-munge-calling-conventions",
    "func.func(tm-tensor-to-loops)",
    "func.func(refback-munge-memref-copy)",
    "func.func(convert-linalg-to-loops)",
    "func.func(lower-affine)",
    "convert-scf-to-cf",
    # Everything below is the standard road to the LLVM dialect.
    "func.func(refback-expand-ops-for-llvm)",
    # include-bf16: bf16 truncf/extf become integer ops; otherwise LLVM
    # calls __truncsfbf2, which the JIT cannot resolve.
    "func.func(arith-expand{include-bf16=true})",
    "func.func(convert-math-to-llvm)",
    "convert-math-to-libm",
    "expand-strided-metadata",
    "finalize-memref-to-llvm",
    "lower-affine",
    "convert-bufferization-to-memref",
    "finalize-memref-to-llvm",
    "func.func(convert-arith-to-llvm)",
    "convert-vector-to-llvm",
    "convert-func-to-llvm",
    "convert-cf-to-llvm",
    "reconcile-unrealized-casts",
]


@dataclass(frozen=True)
class LoweredForJit:
    """What the JIT compiles, and what every call passes besides the user's inputs."""

    module: ir.Module  # LLVM dialect; @entry takes the user's inputs, then one argument per weight
    weights: tuple[np.ndarray, ...]  # the hoisted constants' data, in argument order (bf16 as int16)
    bf16_results: list[int]  # result positions retyped bf16 -> i16


def lower_for_jit(module: ir.Module, entry: str = "main", min_elements: int = MIN_ELEMENTS) -> LoweredForJit:
    """A copy of `module` lowered to the LLVM dialect: tensor constants of at
    least `min_elements` elements become trailing arguments of `entry`
    (runners/weights.py), then bf16 at the boundary becomes i16, then
    LOWERING_PIPELINE. The hoisting comes first, so a bf16 weight is retyped
    like any bf16 argument."""
    llvm_module = clone_module(module)
    hoisted = plan_hoist(llvm_module, entry, min_elements)
    hoist(llvm_module, hoisted, entry)
    bf16_results = bf16_boundary_as_i16(llvm_module, entry)
    read_only_arguments(llvm_module, entry)
    decompose_packs(llvm_module)
    run_pipeline(llvm_module, LOWERING_PIPELINE, "refbackend: linalg-on-tensors -> LLVM")
    return LoweredForJit(llvm_module, tuple(h.data for h in hoisted), bf16_results)


def read_only_arguments(module: ir.Module, entry: str = "main") -> None:
    """Mark every argument of `entry` `bufferization.writable = false`: the
    bufferization copies an argument before anything would write into it. The
    arguments are the caller's arrays and the weights that every call and
    thread shares."""
    main = entry_function(module, entry)
    with module.context:
        read_only = ir.BoolAttr.get(False)
        main.attributes["arg_attrs"] = ir.ArrayAttr.get(
            [ir.DictAttr.get({**{a.name: a.attr for a in attrs}, "bufferization.writable": read_only})
             for attrs in argument_attributes(main)])


class RefBackendProgram:
    """`main` of a linalg-on-tensors module, compiled once, callable many
    times, from several threads at once.

    Each call checks its inputs against the module's signature (InputError:
    dtype, rank, static dims, count), and returns the results with the
    model's dtypes. The results reach Python through the return callback, in
    the calling thread: each thread has its own result slot. The callback
    copies each result into numpy and frees the buffer (the JIT-ed code
    mallocs every result and hands its ownership to the caller).

    `weights`: the large constants taken out of the module before the JIT
    (read-only, shared by every call and thread), passed after the inputs.
    """

    def __init__(self, module: ir.Module, entry: str = "main", opt_level: int = 2):
        self.signature = read_signature(module, entry)  # InputError before the long work
        lowered = lower_for_jit(module, entry)
        llvm_module, self.weights, self._bf16_results = lowered.module, lowered.weights, lowered.bf16_results
        self._weight_descriptors = [_packed_argument(a) for a in self.weights]  # read-only, shared by every call
        self.entry = entry
        self._slot = threading.local()  # .results: this thread's call's results
        self._callbacks: list[object] = []  # keep the ctypes callbacks alive as long as the engine
        try:
            self._engine = ExecutionEngine(llvm_module, opt_level=opt_level)
        except Exception as e:  # the JIT reports failures as a bare RuntimeError
            raise CompileError(f"refbackend: JIT compilation failed: {e}") from e
        for name in _return_callback_names(llvm_module):
            self._register_return_callback(name)
        self._main = self._engine.lookup(entry)  # once: a ctypes function taking the packed arguments

    def _register_return_callback(self, name: str) -> None:
        kinds = name[len(RETURN_CALLBACK_PREFIX):].split("_")
        if any(kind not in MEMREF_DTYPES for kind in kinds):
            raise CompileError(
                f"refbackend: unsupported result types in {name}; results must be tensors of {sorted(MEMREF_DTYPES)}")
        signature = ctypes.CFUNCTYPE(None, *[ctypes.POINTER(UnrankedMemRefDescriptor)] * len(kinds))
        dtypes = [MEMREF_DTYPES[k] for k in kinds]
        slot, bf16_results = self._slot, self._bf16_results

        def consume(*descriptors) -> None:
            # No reference to self: the engine keeps this callback, self keeps the engine.
            results = take_results(descriptors, dtypes)
            for i in bf16_results:
                results[i] = results[i].view(BF16)
            slot.results = results

        callback = signature(consume)
        self._callbacks.append(callback)
        self._engine.register_runtime(name, callback)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        self.signature.check_inputs(inputs)
        arrays = [a.view(np.int16) if a.dtype == BF16 else a for a in self.signature.as_storage(inputs)]
        # The descriptors (and `arrays`) stay referenced until the call returns; the weights follow the inputs.
        descriptors = [_packed_argument(a) for a in arrays] + self._weight_descriptors
        packed = (ctypes.c_void_p * len(descriptors))(*[ctypes.cast(d, ctypes.c_void_p) for d in descriptors])
        self._slot.results = None
        self._main(packed)  # releases the GIL; the callback runs in this thread
        results, self._slot.results = self._slot.results, None
        if results is None:
            raise CompileError(f"refbackend: @{self.entry} returned no tensor result")
        return self.signature.as_model(results)


def take_results(descriptors: Sequence, dtypes: Sequence[type]) -> list[np.ndarray]:
    """Copy each result memref into a numpy array, then free its buffer (each
    distinct one once: refback's deallocation pipeline clones every result,
    so the caller owns them all)."""
    ranked = [ranked_descriptor(d[0]) for d in descriptors]
    results = [np.array(_StridedView(r, np.dtype(t)), copy=True) for r, t in zip(ranked, dtypes, strict=True)]
    for pointer in {r.allocated for r in ranked}:
        if pointer:
            _LIBC.free(ctypes.c_void_p(pointer))
    return results


# Ranked memref descriptors, one ctypes class per rank. (torch_mlir.runtime
# makes a new class per call, and ctypes caches the pointer type of every
# class it is asked for: about 10 KB a call, kept for good.)
@functools.cache
def descriptor_class(rank: int) -> type[ctypes.Structure]:
    sizes = [("shape", ctypes.c_longlong * rank), ("strides", ctypes.c_longlong * rank)] if rank else []
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p), ("offset", ctypes.c_longlong), *sizes]
    return type(f"MemRefDescriptor{rank}", (ctypes.Structure,), {"_fields_": fields})


def _packed_argument(a: np.ndarray) -> ctypes._Pointer:
    """What the packed `@main` takes for one memref argument: a pointer to a pointer to its unranked descriptor."""
    return ctypes.pointer(ctypes.pointer(unranked_descriptor(a)))


def unranked_descriptor(a: np.ndarray) -> UnrankedMemRefDescriptor:
    """The unranked memref of a C-contiguous array (the array must outlive the call)."""
    ranked = descriptor_class(a.ndim)()
    ranked.allocated = ranked.aligned = a.ctypes.data
    ranked.offset = 0
    if a.ndim:
        ranked.shape[:] = a.shape
        ranked.strides[:] = [s // a.itemsize for s in a.strides]
    unranked = UnrankedMemRefDescriptor(a.ndim, ctypes.addressof(ranked))
    unranked._ranked = ranked  # keep the ranked descriptor alive with the unranked one
    return unranked


def ranked_descriptor(unranked: UnrankedMemRefDescriptor) -> ctypes.Structure:
    return descriptor_class(unranked.rank).from_address(unranked.descriptor)


class _StridedView:
    """A ranked memref's data as numpy sees it (`__array_interface__`): no copy until np.array."""

    def __init__(self, ranked: ctypes.Structure, dtype: np.dtype):
        rank = len(ranked.shape) if hasattr(ranked, "shape") else 0
        shape = tuple(ranked.shape) if rank else ()
        strides = tuple(s * dtype.itemsize for s in ranked.strides) if rank else ()
        data = (ranked.aligned or 0) + ranked.offset * dtype.itemsize
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": dtype.str, "descr": dtype.descr,
                                    "data": (data, True), "strides": strides}


def _return_callback_names(module: ir.Module) -> list[str]:
    names = []
    for op in module.body.operations:
        if "sym_name" in op.attributes:
            name = ir.StringAttr(op.attributes["sym_name"]).value
            if name.startswith(RETURN_CALLBACK_PREFIX):
                names.append(name)
    return names



def bf16_boundary_as_i16(module: ir.Module, entry: str) -> list[int]:
    """Retype `entry`'s bf16 tensor arguments and results to i16 (bitcast
    inside, elementwise linalg.generic); return the result positions retyped."""
    main = entry_function(module, entry)
    with module.context, main.location:
        i16, bf16 = ir.IntegerType.get_signless(16), ir.BF16Type.get()
        block = main.body.blocks[0]
        for arg in block.arguments:
            if _element_type(arg.type) == bf16:
                arg.set_type(_with_element(arg.type, i16))
                with ir.InsertionPoint.at_block_begin(block):
                    cast, created = _bitcast(arg, bf16)
                arg.replace_all_uses_except(cast, created)
        retyped = []
        for op in block.operations:
            if op.name != "func.return":
                continue
            with ir.InsertionPoint(op):
                for i, value in enumerate(op.operands):
                    if _element_type(value.type) == bf16:
                        op.operands[i] = _bitcast(value, i16)[0]
                        retyped.append(i)
            results = [v.type for v in op.operands]
        main.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([a.type for a in block.arguments], results))
    return retyped


def _element_type(t: ir.Type) -> ir.Type | None:
    return ir.RankedTensorType(t).element_type if isinstance(t, ir.RankedTensorType) else None


def _with_element(t: ir.Type, elem: ir.Type) -> ir.Type:
    return ir.RankedTensorType.get(ir.RankedTensorType(t).shape, elem)


def _bitcast(value: ir.Value, elem: ir.Type) -> tuple[ir.Value, list[ir.Operation]]:
    """Elementwise arith.bitcast of a ranked tensor (linalg.generic, dynamic
    dims kept); also return the ops using `value` that were created here."""
    shaped = ir.RankedTensorType(value.type)
    sizes = [tensor.dim(value, arith.constant(ir.IndexType.get(), i)) if shaped.is_dynamic_dim(i)
             else shaped.get_dim_size(i) for i in range(shaped.rank)]
    init = tensor.empty(sizes, elem)
    identity = ir.AffineMapAttr.get(ir.AffineMap.get_identity(shaped.rank))
    op = linalg.GenericOp_([value], [init], ir.ArrayAttr.get([identity, identity]),
                           ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * shaped.rank))
    body = op.regions[0].blocks[0]
    with ir.InsertionPoint(body):
        linalg.YieldOp([arith.bitcast(elem, body.arguments[0])])
    users = [d.owner.operation for d in sizes if isinstance(d, ir.Value)] + [op.operation]
    return op.result, users
