"""The entry function's signature as both runners check it: every input's
dtype, rank and static dims (and their count) before a call, and every
result viewed with the model's own dtype after it.

linalg's tensors are signless (`i8` is int8 and uint8 alike; `i1` is bool).
The model's dtypes are known before the linalg pipeline (torch types
`!torch.vtensor<[..],ui8>`, `!torch.quint8`, ...): `record_model_dtypes`
writes them on `@main` as two function attributes (`MODEL_DTYPES_ATTRS`,
arrays of numpy dtype names) that survive the lowering. A module without
them (linalg from elsewhere) takes the dtypes its builtin types spell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import ml_dtypes
import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import func

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.runners.dim_constraints import DimConstraints, read_dim_constraints

INPUTS_ATTR, RESULTS_ATTR = "torch_grouped_conv.input_dtypes", "torch_grouped_conv.result_dtypes"
MODEL_DTYPES_ATTRS = (INPUTS_ATTR, RESULTS_ATTR)
BF16 = np.dtype(ml_dtypes.bfloat16)

# torch element types (vtensor spellings) -> the numpy dtype callers pass and get.
TORCH_DTYPES = {
    "f16": np.dtype(np.float16), "bf16": BF16, "f32": np.dtype(np.float32), "f64": np.dtype(np.float64),
    "i1": np.dtype(np.bool_), "si8": np.dtype(np.int8), "ui8": np.dtype(np.uint8), "si16": np.dtype(np.int16),
    "si32": np.dtype(np.int32), "si64": np.dtype(np.int64),
    "!torch.quint8": np.dtype(np.uint8), "!torch.qint8": np.dtype(np.int8), "!torch.qint32": np.dtype(np.int32),
}
# builtin element types (as printed) -> their numpy dtype at the boundary.
BUILTIN_DTYPES = {
    "f16": np.dtype(np.float16), "bf16": BF16, "f32": np.dtype(np.float32), "f64": np.dtype(np.float64),
    "i1": np.dtype(np.bool_), "i8": np.dtype(np.int8), "i16": np.dtype(np.int16), "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
}
VTENSOR = re.compile(r"^!torch\.vtensor<\[[^\]]*\],(.+)>$")
TORCH_IR_HINT = ("this module is torch IR, not linalg-on-tensors; compile with output_type='linalg-on-tensors', "
                 "or lower it with torch_grouped_conv.api.lower_to_linalg(module)")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor at the boundary: the model's dtype (what callers pass and
    get back), the buffer's dtype (`storage`: the signless builtin type's,
    same item size) and the dims (None where dynamic)."""

    dtype: np.dtype
    storage: np.dtype
    dims: tuple[int | None, ...]

    def shown(self) -> str:
        return "x".join("?" if d is None else str(d) for d in self.dims) or "a scalar tensor"

    def problem(self, a: np.ndarray) -> str | None:
        """What is wrong with `a` as this input (None: nothing)."""
        if a.dtype != self.dtype:
            numpy_name = "ml_dtypes.bfloat16" if self.dtype == BF16 else f"np.{self.dtype}"
            return (f"dtype {a.dtype}, the module was compiled for {self.dtype}; cast it first "
                    f"(x.to(torch.{self.dtype}) or a.astype({numpy_name}))")
        if a.ndim != len(self.dims):
            return (f"rank {a.ndim} (shape {list(a.shape)}), the module was compiled for rank {len(self.dims)} "
                    f"({self.shown()}); pass a tensor of that rank")
        wrong = [i for i, (d, n) in enumerate(zip(self.dims, a.shape, strict=True)) if d is not None and d != n]
        if wrong:
            return (f"shape {list(a.shape)}, the module was compiled for {self.shown()} (dim {wrong[0]} must be "
                    f"{self.dims[wrong[0]]}); pass that shape, or compile with the dim dynamic")
        return None


@dataclass(frozen=True)
class Signature:
    """`@main`'s inputs and results, as the runners check and return them."""

    inputs: tuple[TensorSpec, ...]
    results: tuple[TensorSpec, ...]
    dims: DimConstraints | None = None  # the dynamic dims' ranges and relations (runners/dim_constraints.py)

    def check_inputs(self, arrays: Sequence[np.ndarray]) -> None:
        """InputError (one line) unless `arrays` are exactly what the module was compiled for."""
        if len(arrays) != len(self.inputs):
            wanted = ", ".join(f"{s.shown()} {s.dtype}" for s in self.inputs)
            raise InputError(f"{len(arrays)} inputs given, the module takes {len(self.inputs)} ({wanted}); "
                             "pass one tensor per input")
        for i, (a, spec) in enumerate(zip(arrays, self.inputs, strict=True)):
            problem = spec.problem(a)
            if problem is not None:
                raise InputError(f"input {i}: {problem}")
        problem = self.dims.problem([a.shape for a in arrays]) if self.dims is not None else None
        if problem is not None:
            raise InputError(problem)

    def as_storage(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The checked inputs as their buffers' dtypes (same bits: uint8 as int8)."""
        return [np.ascontiguousarray(a).view(s.storage) for a, s in zip(arrays, self.inputs, strict=True)]

    def as_model(self, results: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The runtime's results viewed with the model's dtypes (same bits: int8 as uint8, i1 as bool)."""
        return [r if r.dtype == s.dtype else r.view(s.dtype) for r, s in zip(results, self.results, strict=True)]


def read_signature(module: object, entry: str = "main") -> Signature:
    """`entry`'s signature in a linalg-on-tensors module; InputError (one
    line, what to do) for anything else: not a module, no `@entry`, torch IR,
    arguments or results that are not tensors of a supported type."""
    if not isinstance(module, ir.Module):
        raise InputError(f"expected an MLIR module (torch_mlir.ir.Module) in linalg-on-tensors form, got "
                         f"{type(module).__name__}; make one with tgc.compile(model, x) or tgc.compile_onnx(path)")
    main = entry_function(module, entry)
    signature = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    inputs = [_spec(t, f"argument {i}") for i, t in enumerate(signature.inputs)]
    results = [_spec(t, f"result {i}") for i, t in enumerate(signature.results)]
    return Signature(_with_model_dtypes(main, INPUTS_ATTR, inputs), _with_model_dtypes(main, RESULTS_ATTR, results),
                     read_dim_constraints(main))


def entry_function(module: ir.Module | ir.Operation, entry: str = "main") -> func.FuncOp:
    body = module.body if isinstance(module, ir.Module) else module.regions[0].blocks[0]
    for op in body.operations:
        if isinstance(op, func.FuncOp) and ir.StringAttr(op.attributes["sym_name"]).value == entry:
            return op
    raise InputError(f"the module has no func.func @{entry}; the runners call @{entry} "
                     "(the entry every frontend of this package makes)")


def argument_attributes(function: func.FuncOp) -> list[ir.DictAttr]:
    """`function`'s `arg_attrs`, one dictionary per block argument (empty ones
    for arguments it lists none for, e.g. arguments added after it was set)."""
    count = len(function.body.blocks[0].arguments)
    attrs = list(ir.ArrayAttr(function.attributes["arg_attrs"])) if "arg_attrs" in function.attributes else []
    return [ir.DictAttr(a) for a in attrs] + [ir.DictAttr.get({})] * (count - len(attrs))


def _spec(t: ir.Type, where: str) -> TensorSpec:
    text = str(t)
    if text.startswith("!torch."):
        raise InputError(f"{TORCH_IR_HINT} (@main's {where} is {text})")
    if not isinstance(t, ir.RankedTensorType):
        raise InputError(f"@main's {where} is {text}, not a ranked tensor; the runners take and return ranked tensors")
    shaped = ir.RankedTensorType(t)
    dtype = BUILTIN_DTYPES.get(str(shaped.element_type))
    if dtype is None:
        raise InputError(f"@main's {where} has element type {shaped.element_type}; the runners support "
                         f"{', '.join(BUILTIN_DTYPES)}")
    dims = tuple(None if shaped.is_dynamic_dim(i) else shaped.get_dim_size(i) for i in range(shaped.rank))
    return TensorSpec(dtype, dtype, dims)


def _with_model_dtypes(main: func.FuncOp, attr: str, specs: list[TensorSpec]) -> tuple[TensorSpec, ...]:
    """`specs` with the recorded model dtypes where recorded and compatible (same item size)."""
    if attr not in main.attributes:
        return tuple(specs)
    names = [ir.StringAttr(a).value for a in ir.ArrayAttr(main.attributes[attr])]
    if len(names) != len(specs):
        return tuple(specs)
    recorded = [_dtype(name) for name in names]
    return tuple(TensorSpec(d, s.storage, s.dims) if d is not None and d.itemsize == s.storage.itemsize else s
                 for d, s in zip(recorded, specs, strict=True))


def _dtype(name: str) -> np.dtype | None:
    if name == BF16.name:
        return BF16
    try:
        return np.dtype(name)
    except TypeError:
        return None


def record_model_dtypes(module: ir.Module | ir.Operation, entry: str = "main") -> None:
    """On torch-backend IR, before the linalg pipeline (`stages.lower_to_linalg`,
    the plugin pass): write `@entry`'s input and result dtypes (torch types)
    as `MODEL_DTYPES_ATTRS`. Boundaries that are not all tensors of a known
    dtype, and modules without `@entry`, are left unrecorded."""
    try:
        main = entry_function(module, entry)
    except InputError:
        return
    signature = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    with module.context:
        for attr, types in ((INPUTS_ATTR, signature.inputs), (RESULTS_ATTR, signature.results)):
            names = [_torch_dtype_name(t) for t in types]
            if all(n is not None for n in names):
                main.attributes[attr] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in names])


def _torch_dtype_name(t: ir.Type) -> str | None:
    match = VTENSOR.match(str(t))
    dtype = TORCH_DTYPES.get(match.group(1)) if match else None
    return None if dtype is None else dtype.name
