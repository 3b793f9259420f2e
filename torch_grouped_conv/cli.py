"""The `torch-grouped-conv` command line: compile, lower, verify, demo.

MODEL is a PyTorch model spec (torchvision:NAME, path/to/file.py:factory) or
an ONNX model file (recognised by its .onnx extension, or by its content).

Exit codes: 0 success, 1 verification mismatch or compiler failure, 2 bad
input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from rich.console import Console

from torch_grouped_conv import api
from torch_grouped_conv.errors import CompileError, InputError, ModelInputError
from torch_grouped_conv.files import check_output_path, write_atomically
from torch_grouped_conv.models import DEMO_INPUT_SHAPE, DemoNet, build_model, example_input, parse_input_shape
from torch_grouped_conv.rewrite.driver import STRATEGIES
from torch_grouped_conv.runners import BACKENDS
from torch_grouped_conv.stages import require_convolution
from torch_grouped_conv.verify import VerifyResult, verify_model, verify_onnx

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class UsageError(InputError):
    """A malformed command line (argparse's complaint, as one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _strategy(value: str) -> str | None:
    if value == "none":
        return None
    if value not in STRATEGIES:
        raise InputError(f"unknown --grouped-conv {value!r}; choose one of {', '.join(STRATEGIES)}, none")
    return value


def _emit_ir(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomically(output, text)


def is_onnx_model(model: str) -> bool:
    """MODEL names an ONNX file: by extension (then it must be a valid one), or by content."""
    from torch_grouped_conv.frontends.onnx import is_onnx_file

    return model.lower().endswith(".onnx") or (":" not in model and is_onnx_file(Path(model)))


def _one_shape(input_shape: list[str] | None, model: str) -> tuple[int, ...]:
    """A PyTorch MODEL takes exactly one --input-shape S."""
    if not input_shape:
        raise InputError(f"--input-shape is required for the PyTorch model {model} (e.g. --input-shape 1,3,224,224)")
    if len(input_shape) > 1 or "=" in input_shape[0]:
        raise InputError("a PyTorch MODEL takes one --input-shape S (NAME=S and repeats are for ONNX models)")
    return parse_input_shape(input_shape[0])


def onnx_shapes(input_shape: list[str] | None) -> dict[str, tuple[int, ...]] | list[tuple[int, ...]]:
    """ONNX --input-shape values: all NAME=S (by graph input name) or all S (by position)."""
    values = input_shape or []
    named = ["=" in v for v in values]
    if any(named) and not all(named):
        raise InputError("give every --input-shape as NAME=S, or every one as S (by position), not a mix")
    if values and all(named):
        return {v.split("=", 1)[0]: parse_input_shape(v.split("=", 1)[1]) for v in values}
    return [parse_input_shape(v) for v in values]


def compile_command(model: str, input_shape: list[str] | None, grouped_conv: str, output: Path | None,
                    output_type: str) -> int:
    """Export MODEL with torch-mlir, lower its convolutions with the plugin, write the IR."""
    strategy = _strategy(grouped_conv)
    check_output_path(output)
    if output_type not in api.OUTPUT_TYPES:
        raise InputError(f"unknown --output-type {output_type!r}; choose one of {', '.join(api.OUTPUT_TYPES)}")
    if is_onnx_model(model):
        if input_shape:
            raise InputError("`compile` takes an ONNX model's shapes from its graph; --input-shape is for `verify`")
        module = api.compile_onnx(model, grouped_conv=strategy, output_type=output_type)
        _emit_ir(str(module), output)
        err.print(api.last_report().summary())
        return 0
    shape = _one_shape(input_shape, model)
    torch_model = build_model(model)
    with _named(model):
        module = api.compile(torch_model, example_input(shape), grouped_conv=None, output_type="torch")
    require_convolution(module, model)
    report = api.apply_strategy(module, strategy)
    if output_type == "linalg-on-tensors":
        api.lower_to_linalg(module)
    _emit_ir(str(module), output)
    err.print(report.summary())
    return 0


def lower_command(input_file: Path, output: Path | None, grouped_conv: str, input_form: str = "auto") -> int:
    """Apply the plugin to torch IR from a file (an opt-style tool); raw IR gets
    torch-mlir's torch-backend pipeline first, and the summary says so."""
    from torch_mlir import ir
    from torch_mlir.dialects import torch as torch_d

    strategy = _strategy(grouped_conv)
    check_output_path(output)
    if strategy is None:
        raise InputError("--grouped-conv none does nothing for `lower`; choose one of " + ", ".join(STRATEGIES))
    if not input_file.is_file():
        raise InputError(f"input file {str(input_file)!r} does not exist")
    context = ir.Context()
    torch_d.register_dialect(context)
    module = _parse_module(input_file.read_text(encoding="utf-8", errors="replace"), context, input_file)
    if input_form not in api.INPUT_FORMS:
        raise InputError(f"unknown --input-form {input_form!r}; choose one of {', '.join(api.INPUT_FORMS)}")
    report = api.lower(module, strategy, input_form=input_form)
    _emit_ir(str(module), output)
    err.print(report.summary())
    return 0


def _parse_module(text: str, context: object, path: Path):
    from torch_mlir import ir

    from torch_grouped_conv.rewrite.driver import ensure_torch_conversion_dialect

    ensure_torch_conversion_dialect(context)  # IR may already hold torch_c ops
    messages: list[str] = []
    handler = context.attach_diagnostic_handler(lambda d: messages.append(f"{d.location}: {d.message}") or True)
    try:
        return ir.Module.parse(text, context=context)
    except Exception as e:
        lines = messages or [line.strip() for line in str(e).splitlines() if line.strip()]
        first = " ".join(lines[:2])
        raise InputError(f"cannot parse {path} as MLIR: {first}") from None
    finally:
        handler.detach()


def verify_command(model: str, input_shape: list[str] | None, backend: str, grouped_conv: str,
                   json_path: Path | None) -> int:
    """Compile MODEL with the plugin, run it, compare with PyTorch eager (or, for
    an ONNX model, with onnxruntime on the same random inputs): PASS or FAIL."""
    strategy = _strategy(grouped_conv)
    check_output_path(json_path)
    _check_backend(backend)
    if is_onnx_model(model):
        return _verify_onnx_and_print(model, onnx_shapes(input_shape), backend, strategy, json_path)
    shape = _one_shape(input_shape, model)
    torch_model = build_model(model)
    with _named(model):
        return _verify_and_print(torch_model, example_input(shape), model, backend, strategy, json_path)


@contextmanager
def _named(model: str) -> Iterator[None]:
    """Report a ModelInputError under the MODEL argument (e.g. torchvision:mobilenet_v2)."""
    try:
        yield
    except ModelInputError as e:
        raise e.renamed(model) from None


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise InputError(f"unknown --backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def demo_command(backend: str) -> int:
    """The main job: a built-in network mixing groups == 1, depthwise and grouped
    convolutions, compiled with the plugin, run, compared with PyTorch."""
    import torch

    _check_backend(backend)
    torch.manual_seed(0)
    return _verify_and_print(DemoNet().eval(), example_input(DEMO_INPUT_SHAPE), "demo:DemoNet", backend, "grouped", None)


def _verify_and_print(model, x, name: str, backend: str, strategy: str | None, json_path: Path | None) -> int:
    out.print(f"[bold]{name}[/bold] input {list(x.shape)} backend={backend} grouped_conv={strategy}")
    result = verify_model(
        model, x, name=name, backend=backend, grouped_conv=strategy,
        on_stage=lambda stage, seconds: out.print(f"  {stage:<9} {seconds:8.2f} s"),
    )
    _print_result(result)
    if json_path is not None:
        write_atomically(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return 0 if result.passed else 1


def _verify_onnx_and_print(model: str, shapes: dict | list, backend: str, strategy: str | None,
                           json_path: Path | None) -> int:
    from torch_grouped_conv.frontends.onnx import graph_inputs, load_model, resolve_shapes

    proto = load_model(model)  # bad files and shapes fail here, before anything is printed
    resolve_shapes(graph_inputs(proto), shapes)
    out.print(f"[bold]{model}[/bold] (ONNX, reference: onnxruntime CPU) backend={backend} grouped_conv={strategy}")
    result = verify_onnx(proto, name=model, input_shapes=shapes, backend=backend, grouped_conv=strategy,
                         on_stage=lambda stage, seconds: out.print(f"  {stage:<11} {seconds:8.2f} s"))
    _print_result(result)
    if json_path is not None:
        write_atomically(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return 0 if result.passed else 1


def _print_result(result: VerifyResult) -> None:
    out.print(result.report.summary())
    c = result.comparison
    out.print(f"max abs error {c.max_abs_error:.3e}, max rel error {c.max_rel_error:.3e} (tolerance {c.tolerance:.0e})")
    out.print("[bold green]PASS[/bold green]" if result.passed else "[bold red]FAIL[/bold red]")


def bench_command(bench_args: list[str]) -> int:
    """Run the benchmark (torch_grouped_conv/bench, shipped with the package)."""
    from torch_grouped_conv.bench.run import main as bench_main

    return bench_main(bench_args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="torch-grouped-conv", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    model_help = "torchvision:NAME (weights=None), path/to/file.py:factory, or model.onnx"
    shape_help = ("input shape, e.g. 1,3,224,224 (required for PyTorch models; for ONNX models NAME=S or S "
                  "per dynamic graph input, repeatable)")
    strategy_help = f"plugin strategy: {'|'.join(STRATEGIES)}|none (default: grouped)"

    c = commands.add_parser("compile", help="export MODEL, lower its convolutions with the plugin, write the IR")
    c.add_argument("model", help=model_help)
    c.add_argument("--input-shape", action="append", help="input shape, e.g. 1,3,224,224 (PyTorch models only)")
    c.add_argument("--grouped-conv", default="grouped", help=strategy_help)
    c.add_argument("-o", "--output", type=Path, help="output .mlir (default: stdout)")
    c.add_argument("--output-type", default="linalg-on-tensors", help="torch|linalg-on-tensors")
    c.set_defaults(run=lambda a: compile_command(a.model, a.input_shape, a.grouped_conv, a.output, a.output_type))

    lo = commands.add_parser("lower", help="apply the plugin to torch IR from a file (opt-style)")
    lo.add_argument("input_file", type=Path, help="torch IR (.mlir): torch-backend form, or raw import output")
    lo.add_argument("-o", "--output", type=Path, help="output .mlir (default: stdout)")
    lo.add_argument("--grouped-conv", default="grouped", help=strategy_help)
    lo.add_argument("--input-form", default="auto",
                    help="auto|torch-backend|raw|onnx (default: auto, recognised from the ops)")
    lo.set_defaults(run=lambda a: lower_command(a.input_file, a.output, a.grouped_conv, a.input_form))

    v = commands.add_parser("verify", help="compile MODEL, run it, compare with PyTorch (ONNX: onnxruntime): PASS or FAIL")
    v.add_argument("model", help=model_help)
    v.add_argument("--input-shape", action="append", help=shape_help)
    v.add_argument("--backend", default="refbackend", help="|".join(BACKENDS))
    v.add_argument("--grouped-conv", default="grouped", help=strategy_help)
    v.add_argument("--json", type=Path, dest="json_path", help="also write the result as JSON")
    v.set_defaults(run=lambda a: verify_command(a.model, a.input_shape, a.backend, a.grouped_conv, a.json_path))

    d = commands.add_parser("demo", help="the main job: a built-in mixed network, compiled, run, verified")
    d.add_argument("--backend", default="refbackend", help="|".join(BACKENDS))
    d.set_defaults(run=lambda a: demo_command(a.backend))

    # Listed for --help only: main() hands `bench ...` to the harness's own parser.
    commands.add_parser("bench", help="benchmark vs PyTorch, ONNX Runtime and upstream, 1 and 2 threads (see: bench --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["bench"]:  # the harness parses its own options
            return bench_command(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except InputError as e:
        print(f"torch-grouped-conv: error: {e}", file=sys.stderr)
        return 2
    except CompileError as e:
        print(f"torch-grouped-conv: compile failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
