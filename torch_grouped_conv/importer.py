"""Hooks into torch-mlir's FX importer: a faster literal import, and op
locations named by PyTorch module path (`ModulePathLocations`).

torch-mlir 20261001 turns every weight into a `torch.vtensor.literal` through
`tensor.tolist()` (one Python float per element), because the tensor might be
a fake tensor. For an exported model's real parameters that is most of the
import time (resnext50_32x4d: ~90 s of ~95 s). This hook builds the same
`dense_resource` literal straight from the tensor's memory and hands anything
unusual (fake tensors, scalars, dtypes numpy lacks) back to the default path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor
from torch_mlir import ir
from torch_mlir.dialects import torch as torch_d
from torch_mlir.extras.fx_importer import ContextCache, FxImporter, FxImporterHooks

# dtypes whose bytes numpy can view directly, with their MLIR element types.
_ELEMENT_TYPES = {
    torch.float16: ("f16", ir.F16Type.get),
    torch.float32: ("f32", ir.F32Type.get),
    torch.float64: ("f64", ir.F64Type.get),
    torch.int8: ("si8", lambda: ir.IntegerType.get_signless(8)),
    torch.int32: ("si32", lambda: ir.IntegerType.get_signless(32)),
    torch.int64: ("si64", lambda: ir.IntegerType.get_signless(64)),
}


class FastLiteralHooks(FxImporterHooks):
    def __init__(self) -> None:
        # Same tensor -> same attribute (as the default path's tracker does);
        # the tensor is kept so its id cannot be reused meanwhile.
        self._attrs: dict[int, tuple[torch.Tensor, ir.Attribute]] = {}

    def resolve_literal(self, gni: Any, literal: Any, info: Any = None) -> ir.Value | None:
        if not isinstance(literal, torch.Tensor) or isinstance(literal, FakeTensor):
            return None
        if literal.numel() <= 1 or literal.dtype not in _ELEMENT_TYPES or literal.is_quantized:
            return None  # splats and odd dtypes: the default path handles them
        vtensor_dtype, element_type = _ELEMENT_TYPES[literal.dtype]
        dims = ",".join(str(d) for d in literal.shape)
        vtensor_type = ir.Type.parse(f"!torch.vtensor<[{dims}],{vtensor_dtype}>")
        cached = self._attrs.get(id(literal))
        if cached is None:
            array = np.ascontiguousarray(literal.detach().cpu().numpy())
            shape_desc = "_".join(str(d) for d in literal.shape)
            attr = ir.DenseResourceElementsAttr.get_from_buffer(
                array, f"torch_tensor_{shape_desc}_{literal.dtype}",
                ir.RankedTensorType.get(list(literal.shape), element_type()),
            )
            cached = self._attrs[id(literal)] = (literal, attr)
        op = ir.Operation.create("torch.vtensor.literal", results=[vtensor_type], attributes={"value": cached[1]})
        return op.result


class ModulePathLocations(ContextCache):
    """torch-mlir's FX importer locations, named by PyTorch module path.

    The importer locates an op by its Python stack only (file:line callsites),
    so two convolutions built by one source line (every block of a
    torchvision net) get the same location. This cache wraps that location in
    a NameLoc holding the FX node's module path (the innermost entry of
    `nn_module_stack`, e.g. `features.1.conv.0.0`, as `model.named_modules()`
    names it): `loc("features.1.conv.0.0"(callsite(...)))`. Ops the plugin
    emits keep the source op's location, and the report reads the name back
    (rewrite/driver.py `module_path`).
    """

    __slots__ = ()

    def get_node_location(self, node: Any) -> ir.Location | None:
        location = super().get_node_location(node)
        stack = node.meta.get("nn_module_stack")
        if not stack:
            return location
        path = list(stack.values())[-1][0]
        child = location if location is not None else ir.Location.unknown(context=self._c)
        return ir.Location.name(path, childLoc=child, context=self._c)


def torch_context() -> ir.Context:
    """A new MLIR context with the torch dialect registered (what torch-mlir's importer makes)."""
    context = ir.Context()
    torch_d.register_dialect(context)
    return context


def fx_importer(hooks: FxImporterHooks | None = None) -> FxImporter:
    """An FX importer (in a new context with the torch dialect) whose op
    locations carry module paths (`ModulePathLocations`)."""
    context = torch_context()
    importer = FxImporter(context=context, hooks=hooks)
    importer._cc = ModulePathLocations(context, py_attr_tracker=importer._py_attr_tracker)  # noqa: SLF001
    return importer
