"""The embedded runner: linalg-on-tensors -> LLVM with torch-mlir's refback-*
passes, JIT-compiled by MLIR's ExecutionEngine. No dependency beyond torch-mlir.

Calling convention: `refback-munge-calling-conventions` rewrites `@main` to
take unranked memrefs and, instead of returning, to call one external function
per result signature, `refbackend_consume_func_return_<types>`. We register a
Python callback under each such name and copy the results out of it.

bf16: refback-munge-calling-conventions accepts no bf16 memref ("argument
must be a memref of f16, f32, f64, i1, i8, i16, ..."), and numpy has no
bf16. So before lowering, `@main`'s bf16 arguments and results are retyped
to i16 at the boundary with an elementwise `arith.bitcast` inside; the runner
passes bf16 arrays (ml_dtypes.bfloat16) as their uint16 bits and views the
i16 results of those positions back as bfloat16. Same bits, no rounding.
"""

from __future__ import annotations

import ctypes

import ml_dtypes
import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, linalg, tensor
from torch_mlir.execution_engine import ExecutionEngine
from torch_mlir.runtime import UnrankedMemRefDescriptor, get_unranked_memref_descriptor, unranked_memref_to_numpy

from torch_grouped_conv.errors import CompileError
from torch_grouped_conv.runners.common import clone_module, run_pipeline

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
ACCEPTED_INPUT_DTYPES = tuple(np.dtype(t) for t in MEMREF_DTYPES.values()) + (np.dtype(ml_dtypes.bfloat16),)
BF16 = np.dtype(ml_dtypes.bfloat16)

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
    # Tensors -> buffers; function boundaries get identity-layout memrefs.
    "func.func(tm-tensor-bufferize)",
    "one-shot-bufferize{copy-before-write bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map}",
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


class RefBackendProgram:
    """`main` of a linalg-on-tensors module, compiled once, callable many times."""

    def __init__(self, module: ir.Module, entry: str = "main", opt_level: int = 2):
        llvm_module = clone_module(module)
        self._arg_shapes = entry_arg_shapes(llvm_module, entry)
        self._bf16_results = bf16_boundary_as_i16(llvm_module, entry)
        run_pipeline(llvm_module, LOWERING_PIPELINE, "refbackend: linalg-on-tensors -> LLVM")
        self.entry = entry
        self._results: list[np.ndarray] | None = None
        self._callbacks = []  # keep the ctypes callbacks alive as long as the engine
        try:
            self._engine = ExecutionEngine(llvm_module, opt_level=opt_level)
        except Exception as e:  # the JIT reports failures as a bare RuntimeError
            raise CompileError(f"refbackend: JIT compilation failed: {e}") from e
        for name in _return_callback_names(llvm_module):
            self._register_return_callback(name)

    def _register_return_callback(self, name: str) -> None:
        kinds = name[len(RETURN_CALLBACK_PREFIX):].split("_")
        if any(kind not in MEMREF_DTYPES for kind in kinds):
            raise CompileError(
                f"refbackend: unsupported result types in {name}; results must be tensors of {sorted(MEMREF_DTYPES)}")
        signature = ctypes.CFUNCTYPE(None, *[ctypes.POINTER(UnrankedMemRefDescriptor)] * len(kinds))

        def consume(*descriptors) -> None:
            # Copy: the buffers belong to the JIT-ed code and die after the call.
            self._results = [
                np.array(unranked_memref_to_numpy(d, MEMREF_DTYPES[k]), copy=True)
                for d, k in zip(descriptors, kinds, strict=False)
            ]
            for i in self._bf16_results:
                self._results[i] = self._results[i].view(BF16)

        callback = signature(consume)
        self._callbacks.append(callback)
        self._engine.register_runtime(name, callback)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        arrays = [np.ascontiguousarray(a) for a in inputs]
        for i, a in enumerate(arrays):
            if a.dtype not in ACCEPTED_INPUT_DTYPES:
                raise TypeError(f"refbackend: input {i} has dtype {a.dtype}; accepted: {[str(d) for d in ACCEPTED_INPUT_DTYPES]}")
        check_input_shapes(arrays, self._arg_shapes)
        arrays = [a.view(np.int16) if a.dtype == BF16 else a for a in arrays]
        descriptors = [ctypes.pointer(ctypes.pointer(get_unranked_memref_descriptor(a))) for a in arrays]
        self._results = None
        self._engine.invoke(self.entry, *descriptors)
        if self._results is None:
            raise CompileError(f"refbackend: @{self.entry} returned no tensor result")
        results, self._results = self._results, None
        return results


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
    main = _entry(module, entry)
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


def entry_arg_shapes(module: ir.Module, entry: str) -> list[list[int | None]]:
    """Static dims of `entry`'s tensor arguments (None where dynamic)."""
    main = _entry(module, entry)
    return [[None if ir.ShapedType(a.type).is_dynamic_dim(i) else ir.ShapedType(a.type).get_dim_size(i)
             for i in range(ir.ShapedType(a.type).rank)] for a in main.body.blocks[0].arguments]


def check_input_shapes(arrays: list[np.ndarray], expected: list[list[int | None]]) -> None:
    """Unranked memrefs carry no static shape: the JIT would read out of bounds. Check here."""
    if len(arrays) != len(expected):
        raise TypeError(f"refbackend: {len(arrays)} inputs given, @main takes {len(expected)}")
    for i, (a, dims) in enumerate(zip(arrays, expected, strict=False)):
        if a.ndim != len(dims) or any(d is not None and d != n for d, n in zip(dims, a.shape, strict=False)):
            shown = "x".join("?" if d is None else str(d) for d in dims)
            raise TypeError(f"refbackend: input {i} has shape {list(a.shape)}, @main expects {shown}")


def _entry(module: ir.Module, entry: str) -> func.FuncOp:
    return next(op for op in module.body.operations
                if isinstance(op, func.FuncOp) and ir.StringAttr(op.attributes["sym_name"]).value == entry)
