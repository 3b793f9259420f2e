"""The torch.export frontend: `compile(model, *example_args)`.

torch.export (non-strict) -> torch-mlir's FX importer and torch-backend
pipeline -> the shared stages (plugin, linalg).

A dim the caller asked to be dynamic that torch.export specialized while
tracing (a `Dim.AUTO` it found to be one size, e.g. because an output size
became 1) stays a SymInt with a constant value in the program, which
torch-mlir's importer prints as `?`: the module would accept any size there
and compute the traced one. `pin_specialized_dims` makes such dims static in
`@main`'s signature, and the report's `input_note` names them. The dims that
stay dynamic keep torch.export's ranges and relations (`dim_constraints`),
recorded on `@main` for the runners to check (runners/dim_constraints.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch_mlir import fx, ir
from torch_mlir.compiler_utils import TorchMlirCompilerError
from torch_mlir.dialects import func

from torch_grouped_conv.errors import CompileError, InputError, ModelInputError
from torch_grouped_conv.frontends.decompositions import decomposition_table
from torch_grouped_conv.importer import FastLiteralHooks, fx_importer
from torch_grouped_conv.runners.dim_constraints import DimConstraints, DimRule, record_dim_constraints
from torch_grouped_conv.stages import (
    FX_TO_TORCH_BACKEND,
    check_options,
    finish,
    last_report,
    to_torch_backend,
)

# Loggers that print a model's own error as a multi-line traceback while
# torch.export traces it (e.g. a pooling layer rejecting a small input), before
# the one-line ModelInputError says the same.
TRACING_LOGGERS = ("torch._subclasses.fake_tensor", "torch._export", "torch.export", "torch._dynamo")
VTENSOR = re.compile(r"^!torch\.vtensor<\[([^\]]*)\],(.+)>$")


def compile(
    model: torch.nn.Module,
    *example_args: Any,
    grouped_conv: str | None = "auto",
    output_type: str = "linalg-on-tensors",
    dynamic_shapes: Any = None,
    **export_kwargs: Any,
) -> ir.Module:
    """Export `model` with torch-mlir and lower its convolutions with the plugin.

    Same meaning as `torch_mlir.fx.export_and_import(model, *example_args,
    dynamic_shapes=..., **export_kwargs)`, plus:

    - `grouped_conv`: the plugin's strategy (default "auto"), or None to leave every
      convolution to torch-mlir's own lowering (for comparison).
    - `output_type`: "linalg-on-tensors" (default) or "torch" for the IR right
      after our rewrite, before torch-mlir's linalg pipeline.

    The RewriteReport of this call is returned by `last_report()`.
    """
    check_options(grouped_conv, output_type)
    program = export_program(model, *example_args, dynamic_shapes=dynamic_shapes, **export_kwargs)
    return lower_imported(import_to_torch(program), program, grouped_conv, output_type)


def lower_imported(module: ir.Module, program: torch.export.ExportedProgram, grouped_conv: str | None,
                   output_type: str) -> ir.Module:
    """Stages 3 and 4 of `compile` on `module`, `import_to_torch(program)`'s
    result, in place: the plugin, then linalg unless output_type="torch"; the
    report notes the dims torch.export specialized. One program's import can be
    lowered with several strategies, each on its own copy."""
    module = finish(module, grouped_conv, output_type)
    note = specialized_note(specialized_dims(program))
    report = last_report()
    if note and report is not None:
        report.input_note = note
    return module


def export_program(model: torch.nn.Module, *example_args: Any, dynamic_shapes: Any = None,
                   **export_kwargs: Any) -> torch.export.ExportedProgram:
    """Stage 1: torch.export (non-strict, as torch_mlir.fx does).

    Any error raised while tracing the user's model (e.g. it rejects the
    example input's shape) becomes a one-line `ModelInputError`.
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"compile takes a torch.nn.Module, got {type(model).__name__}; wrap a function in a "
                         "Module whose forward calls it")
    strict = export_kwargs.pop("strict", False)
    try:
        with _quiet(TRACING_LOGGERS):
            program = torch.export.export(model, example_args, export_kwargs or None, dynamic_shapes=dynamic_shapes,
                                          strict=strict)
    except Exception as e:  # noqa: BLE001 - whatever the model raises is the user's input problem
        raise ModelInputError.from_exception(type(model).__name__, input_shapes(example_args), "torch.export", e) from e
    empty = empty_conv_output(program)
    if empty is not None:
        raise ModelInputError(type(model).__name__, input_shapes(example_args), "torch.export",
                              f"RuntimeError: a convolution's output would be {empty}, with a size 0 that PyTorch "
                              "rejects (Output size is too small)")
    return program


def empty_conv_output(program: torch.export.ExportedProgram) -> list[int | str] | None:
    """The shape of a convolution output with a static size 0 past its first dim,
    which torch.export traces but PyTorch's kernels refuse (a transposed conv
    whose padding eats its whole output); None when there is none."""
    for node in program.graph.nodes:
        val = node.meta.get("val")
        if node.op != "call_function" or "conv" not in str(node.target) or not isinstance(val, torch.Tensor):
            continue
        if any(isinstance(size, int) and size == 0 for size in val.shape[1:]):
            return [size if isinstance(size, int) else str(size) for size in val.shape]
    return None


@contextmanager
def _quiet(names: tuple[str, ...]) -> Iterator[None]:
    """Loggers `names` off for the block (their records are the traceback of an error we raise as one line)."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before, strict=True):
            logger.disabled = disabled


def input_shapes(args: tuple[Any, ...]) -> list[list[int]]:
    """The shapes of the tensor arguments, for messages."""
    return [list(a.shape) for a in args if isinstance(a, torch.Tensor)]


def import_to_torch(program: torch.export.ExportedProgram) -> ir.Module:
    """Stage 2: torch-mlir's FX import, the specialized dims pinned
    (`pin_specialized_dims`), then torch-mlir's torch-backend pipeline
    (decompositions included).

    torch-mlir's decompositions, with adaptive average pooling over large
    windows done without unrolling them (frontends/decompositions.py).
    Weights are imported by `FastLiteralHooks` (see importer.py): same IR, without
    torch-mlir's per-element Python conversion. The pipeline keeps `PLUGIN_LEGAL_OPS` as they are.
    Each op's location is named by the PyTorch module it came from (importer.py
    `ModulePathLocations`), for the report's `module_path`.
    """
    try:
        hooks = FastLiteralHooks()
        module = fx.export_and_import(program, output_type="raw", hooks=hooks, fx_importer=fx_importer(hooks),
                                      decomposition_table=decomposition_table())
    except TorchMlirCompilerError as e:
        raise CompileError(f"torch-mlir's import to torch-backend IR failed (before the plugin ran):\n{e}") from None
    pin_specialized_dims(module, specialized_dims(program))
    record_dim_constraints(_main(module), dim_constraints(program))
    to_torch_backend(module, FX_TO_TORCH_BACKEND, "FX import output")
    return module


@dataclass(frozen=True)
class SpecializedDim:
    """Dim `dim` of tensor input `input` (the user's inputs, in order), fixed by torch.export to `size`."""

    input: int
    dim: int
    size: int


def input_sizes(program: torch.export.ExportedProgram) -> list[tuple[int, int, int | torch.SymInt]]:
    """(input, dim, size) for every dim of the user's tensor inputs, in order."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    found: list[tuple[int, int, int | torch.SymInt]] = []
    for i, name in enumerate(program.graph_signature.user_inputs):
        val = placeholders[name].meta.get("val") if name in placeholders else None
        if isinstance(val, torch.Tensor):
            found += [(i, d, size) for d, size in enumerate(val.shape)]
    return found


def specialized_dims(program: torch.export.ExportedProgram) -> list[SpecializedDim]:
    """The input dims torch.export traced symbolically but fixed to one size
    (a SymInt whose value is a constant): static for the program, `?` for the importer."""
    found: list[SpecializedDim] = []
    for i, d, size in input_sizes(program):
        fixed = size.node.maybe_as_int() if isinstance(size, torch.SymInt) else None
        if fixed is not None:
            found.append(SpecializedDim(i, d, fixed))
    return found


def dim_constraints(program: torch.export.ExportedProgram) -> DimConstraints:
    """The dynamic input dims as `scale * symbol + offset`, with each symbol's
    range (`program.range_constraints`); other expressions are left out."""
    rules = []
    for i, d, size in input_sizes(program):
        if isinstance(size, torch.SymInt) and size.node.maybe_as_int() is None:
            rule = _linear_rule(i, d, size.node.expr)
            if rule is not None:
                rules.append(rule)
    outputs = output_size_expressions(program)
    ranges = {str(symbol): (_lower_bound(symbol, bounds.lower, outputs), _int_or(bounds.upper, None))
              for symbol, bounds in program.range_constraints.items()}
    return DimConstraints(tuple(rules), {r.symbol: ranges.get(r.symbol, (0, None)) for r in rules})


def output_size_expressions(program: torch.export.ExportedProgram) -> list[Any]:
    """The symbolic sizes of the program's tensor outputs (sympy expressions)."""
    (output,) = [n for n in program.graph.nodes if n.op == "output"]
    values = [a.meta.get("val") for a in torch.utils._pytree.tree_leaves(output.args) if isinstance(a, torch.fx.Node)]
    sizes: list[Any] = [size for v in values if isinstance(v, torch.Tensor) for size in v.shape]
    return [size.node.expr for size in sizes if isinstance(size, torch.SymInt)]


def _linear_rule(input_index: int, dim: int, expr: Any) -> DimRule | None:
    symbols = list(expr.free_symbols)
    if len(symbols) != 1:
        return None
    scale, offset = expr.coeff(symbols[0]), expr.subs(symbols[0], 0)
    if not (scale.is_Integer and offset.is_Integer and scale > 0) or (expr - scale * symbols[0] - offset).expand() != 0:
        return None
    return DimRule(input_index, dim, str(symbols[0]), int(scale), int(offset))


def _lower_bound(symbol: Any, bound: Any, outputs: list[Any]) -> int:
    """torch.export's lower bound where it is above 2. At 2 or less (its 0/1
    specialization: its own program's input check takes 0 and 1 there) the
    smallest size from 1 at which every output size depending on this symbol
    alone is >= 1: a transposed conv whose output is 2*s - 3 starts at 2, a
    batch at 1 (size 0 is never taken)."""
    low = _int_or(bound, 0) or 0
    if low > 2:
        return low
    tied = [e for e in outputs if symbol in e.free_symbols]
    if any(len(e.free_symbols) != 1 for e in tied):
        return max(low, 2)
    for size in (1, 2):
        try:
            if all(int(e.subs(symbol, size)) >= 1 for e in tied):
                return size
        except (TypeError, ValueError):
            return max(low, 2)
    return max(low, 2)


def _int_or(bound: Any, default: int | None) -> int | None:
    """A range bound as an int; `default` for an infinite one."""
    try:
        return int(bound) if bound.is_finite else default
    except (TypeError, AttributeError, ValueError):
        return default


def _main(module: ir.Module) -> func.FuncOp:
    main = next((op for op in module.body.operations
                 if isinstance(op, func.FuncOp) and ir.StringAttr(op.attributes["sym_name"]).value == "main"), None)
    if main is None:
        raise CompileError("torch-mlir's FX import has no @main; cannot record the exported program's input dims")
    return main


def specialized_note(dims: list[SpecializedDim]) -> str | None:
    """The report's line for `dims` (None when there are none)."""
    if not dims:
        return None
    shown = ", ".join(f"input {d.input} dim {d.dim} = {d.size}" for d in dims)
    return (f"torch.export specialized {shown} (asked dynamic, traced as one size): "
            "the module takes only that size there")


def pin_specialized_dims(module: ir.Module, dims: list[SpecializedDim]) -> None:
    """Make `dims` static in `@main`'s argument types, in place. The body keeps
    its types: a `torch.tensor_static_info_cast` from the pinned argument feeds
    the old uses, and the torch-backend pipeline refines from there."""
    if not dims:
        return
    main = _main(module)
    if max(d.input for d in dims) >= len(main.arguments):
        raise CompileError("torch-mlir's FX import has no @main taking the exported program's inputs; "
                           "cannot pin the dims torch.export specialized")
    block = main.regions[0].blocks[0]
    for index in sorted({d.input for d in dims}):
        argument = block.arguments[index]
        old = argument.type
        pinned = ir.Type.parse(_static_type(str(old), {d.dim: d.size for d in dims if d.input == index}),
                               context=module.context)
        with ir.InsertionPoint.at_block_begin(block), ir.Location.unknown(module.context):
            cast = ir.Operation.create("torch.tensor_static_info_cast", results=[old], operands=[argument])
        argument.set_type(pinned)
        argument.replace_all_uses_except(cast.result, cast)
    signature = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    inputs = [a.type for a in block.arguments]
    function_type = ir.FunctionType.get(inputs, signature.results, context=module.context)
    main.attributes["function_type"] = ir.TypeAttr.get(function_type, context=module.context)


def _static_type(vtensor: str, sizes: dict[int, int]) -> str:
    """`!torch.vtensor<[?,12,?],f32>` with dims `sizes` made static."""
    match = VTENSOR.match(vtensor)
    if match is None:
        raise CompileError(f"torch-mlir imported a specialized input as {vtensor}, not a value tensor; cannot pin it")
    dims = match.group(1).split(",")
    for d, size in sizes.items():
        dims[d] = str(size)
    return f"!torch.vtensor<[{','.join(dims)}],{match.group(2)}>"
