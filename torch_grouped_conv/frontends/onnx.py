"""The ONNX frontend: `compile_onnx(model)`, and what `verify.verify_onnx` needs (graph inputs, random inputs, onnxruntime).

model.onnx -> onnx.load + checker + shape inference -> torch-mlir's ONNX
importer (`torch.operator "onnx.*"` ops) -> torch-mlir's
torch-onnx-to-torch-backend-pipeline -> the shared stages (plugin, linalg).
`verify.verify_onnx` runs the result and onnxruntime (CPU) on the same random inputs.

Needs the `onnx` and `onnxruntime` packages (extra `[onnx]`). Quantized models
(QLinearConv) pass through: the importer's pipeline turns them into
convolutions on quantized tensors, and the plugin decides about those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import torch as torch_d

from torch_grouped_conv.errors import CompileError, InputError
from torch_grouped_conv.stages import (
    ONNX_TO_TORCH_BACKEND,
    check_options,
    finish,
    require_convolution,
    to_torch_backend,
)

if TYPE_CHECKING:
    import onnx

ENTRY = "main"  # the runners' entry point; the importer names it after the graph
ONNX_MAGIC_SUFFIXES = (".onnx",)


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise InputError("ONNX models need the `onnx` package: pip install 'torch-grouped-conv[onnx]'") from None
    return onnx


def load_model(model: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """A checked, shape-inferred ModelProto from a path or a proto; InputError (one line) if it is not one."""
    onnx = _onnx()
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.is_dir():
            raise InputError(f"ONNX model {str(path)!r} is a folder; give the path of a .onnx file")
        if not path.is_file():
            raise InputError(f"ONNX model {str(path)!r} does not exist")
        try:
            proto = onnx.load(str(path))
        except Exception as e:  # noqa: BLE001  (protobuf's DecodeError and friends)
            raise InputError(f"{path} is not a valid ONNX model: {_first_line(e)}") from None
        name = str(path)
    elif isinstance(model, onnx.ModelProto):
        proto, name = model, "the ModelProto"
    else:
        raise InputError(f"compile_onnx takes a path or an onnx.ModelProto, not {type(model).__name__}")
    if not proto.HasField("graph") or not proto.graph.node:
        raise InputError(f"{name} is not a valid ONNX model: it has no graph nodes")
    try:
        onnx.checker.check_model(proto)
        return onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as e:  # noqa: BLE001  (onnx.checker.ValidationError, InferenceError)
        raise InputError(f"{name} is not a valid ONNX model: {_first_line(e)}") from None


def is_onnx_file(path: Path) -> bool:
    """Whether the CLI should treat `path` as an ONNX model: by extension, else by content."""
    if path.suffix.lower() in ONNX_MAGIC_SUFFIXES:
        return True
    if not path.is_file() or path.suffix.lower() in (".py", ".mlir", ".mlirbc"):
        return False
    try:
        onnx = _onnx()
        proto = onnx.load(str(path))
    except Exception:  # noqa: BLE001
        return False
    return proto.HasField("graph") and len(proto.graph.node) > 0


def import_model(proto: onnx.ModelProto) -> ir.Module:
    """torch-mlir's ONNX importer: raw torch IR (`torch.operator "onnx.*"`), entry renamed to @main."""
    from torch_mlir.extras import onnx_importer

    context = ir.Context()
    torch_d.register_dialect(context)
    try:
        info = onnx_importer.ModelInfo(proto)
        module = info.create_module(context=context)
        onnx_importer.NodeImporter.define_function(info.main_graph, module.operation).import_all()
    except onnx_importer.OnnxImportError as e:
        raise CompileError(f"torch-mlir's ONNX importer failed: {e}") from None
    with context:
        for op in module.body.operations:
            if op.operation.name == "func.func":
                op.attributes["sym_name"] = ir.StringAttr.get(ENTRY)
                break
    return module


def import_to_torch(proto: onnx.ModelProto) -> ir.Module:
    """Import and run torch-mlir's ONNX -> torch-backend pipeline: torch-backend IR."""
    module = import_model(proto)
    to_torch_backend(module, ONNX_TO_TORCH_BACKEND, "ONNX")
    return module


def compile_onnx(model: str | Path | onnx.ModelProto, grouped_conv: str | None = "auto",
                 output_type: str = "linalg-on-tensors") -> ir.Module:
    """Import an ONNX model (path or `onnx.ModelProto`) with torch-mlir and lower
    its convolutions with the plugin; same `grouped_conv` / `output_type` as
    `compile`. The entry function is `@main`, taking the graph inputs in order.
    The RewriteReport of this call is returned by `last_report()`.
    """
    check_options(grouped_conv, output_type)
    module = import_to_torch(load_model(model))
    require_convolution(module, "the ONNX model")
    return finish(module, grouped_conv, output_type)


# ---------------------------------------------------------------- graph inputs


@dataclass(frozen=True)
class GraphInput:
    """One graph input (initializers excluded): name, dims (None where dynamic), numpy dtype."""

    name: str
    dims: tuple[int | None, ...]
    dtype: np.dtype

    def concrete(self, shape: tuple[int, ...] | None) -> tuple[int, ...]:
        """The shape to feed: `shape` (checked against the static dims) or the static dims."""
        if shape is None:
            if any(d is None for d in self.dims):
                dims = ",".join("?" if d is None else str(d) for d in self.dims)
                raise InputError(f"input {self.name!r} has dynamic dims [{dims}]; give --input-shape {self.name}=...")
            return tuple(int(d) for d in self.dims)  # type: ignore[arg-type]  # no None: checked above
        if len(shape) != len(self.dims):
            raise InputError(f"input {self.name!r} has rank {len(self.dims)}, the given shape {list(shape)} has {len(shape)}")
        for axis, (static, given) in enumerate(zip(self.dims, shape, strict=False)):
            if static is not None and static != given:
                raise InputError(f"input {self.name!r} has static dim {static} at axis {axis}, the given shape has {given}")
        return shape


def graph_inputs(proto: onnx.ModelProto) -> list[GraphInput]:
    onnx = _onnx()
    initialized = {t.name for t in proto.graph.initializer}
    inputs = []
    for value in proto.graph.input:
        if value.name in initialized:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        inputs.append(GraphInput(value.name, dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))))
    return inputs


def resolve_shapes(inputs: list[GraphInput], given: dict[str, tuple[int, ...]] | list[tuple[int, ...]] | None
                   ) -> list[tuple[int, ...]]:
    """Concrete input shapes: `given` by name (dict) or by position (list), the graph's static dims elsewhere."""
    if isinstance(given, dict):
        unknown = sorted(set(given) - {i.name for i in inputs})
        if unknown:
            raise InputError(f"no graph input named {unknown[0]!r}; the inputs are {', '.join(i.name for i in inputs)}")
        return [i.concrete(given.get(i.name)) for i in inputs]
    given = list(given or [])
    if len(given) > len(inputs):
        raise InputError(f"{len(given)} input shapes given, the model has {len(inputs)} input(s)")
    return [i.concrete(given[k] if k < len(given) else None) for k, i in enumerate(inputs)]


def random_inputs(inputs: list[GraphInput], shapes: list[tuple[int, ...]], seed: int = 0) -> list[np.ndarray]:
    """Standard normal floats, small non-negative integers, random booleans."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec, shape in zip(inputs, shapes, strict=False):
        if np.issubdtype(spec.dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(spec.dtype))
        elif spec.dtype == np.bool_:
            arrays.append(rng.integers(0, 2, shape).astype(np.bool_))
        else:
            arrays.append(rng.integers(0, 8, shape).astype(spec.dtype))
    return arrays


def run_onnxruntime(proto: onnx.ModelProto, inputs: list[GraphInput], arrays: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's CPU execution provider on `arrays`: the reference outputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("verifying ONNX models needs `onnxruntime`: pip install 'torch-grouped-conv[onnx]'") from None
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return list(session.run(None, {spec.name: a for spec, a in zip(inputs, arrays, strict=False)}))


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


__all__ = ["compile_onnx", "graph_inputs", "import_model", "import_to_torch", "load_model",
           "random_inputs", "resolve_shapes", "run_onnxruntime"]
