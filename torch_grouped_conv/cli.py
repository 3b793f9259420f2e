"""The `torch-grouped-conv` command line: compile, lower, verify, demo, bench.

MODEL is a PyTorch model spec (torchvision:NAME, path/to/file.py:factory) or
an ONNX model file (recognised by its .onnx extension, or by its content).

Exit codes: 0 success, 1 verification mismatch or compiler failure, 2 bad
input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from torch_grouped_conv import api
from torch_grouped_conv.deploy import VMFB, DeployOptions, add_deploy_arguments, options_from_args
from torch_grouped_conv.errors import CompileError, InputError, ModelInputError
from torch_grouped_conv.files import check_output_path, write_atomically
from torch_grouped_conv.models import (
    DEMO_INPUT_SHAPE,
    DemoNet,
    build_model,
    check_model_spec,
    example_input,
    parse_input_shape,
    shape_input,
)
from torch_grouped_conv.progress import StageProgress
from torch_grouped_conv.report import RewriteReport, render_table
from torch_grouped_conv.rewrite import tuning
from torch_grouped_conv.rewrite.driver import STRATEGIES
from torch_grouped_conv.runners import BACKENDS
from torch_grouped_conv.stages import require_convolution
from torch_grouped_conv.verify import VerifyResult, verify_model, verify_onnx

out = Console(highlight=False, soft_wrap=True)  # a line is never broken: output is read by people and by scripts
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageError(InputError):
    """A malformed command line (argparse's complaint, as one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help (not for options without one); epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


DEFAULT_STRATEGY = "auto"  # what README recommends: per conv, the fastest measured lowering
DTYPES = ("f32", "f16", "bf16", "f64")


def version_text() -> str:
    """`torch-grouped-conv --version`: this package and the compilers it drives."""
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    stack = ", ".join(f"{d} {version(d)}" for d in ("torch-mlir", "iree-base-compiler", "iree-base-runtime", "torch"))
    return f"torch-grouped-conv {version('torch-grouped-conv')} ({stack})"


def torch_dtype(name: str):
    """--dtype f32|f16|bf16|f64 as a torch dtype."""
    import torch

    if name not in DTYPES:
        raise InputError(f"unknown --dtype {name!r}; choose one of {', '.join(DTYPES)}")
    return {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}[name]


def dynamic_shapes(values: list[str] | None, shape: tuple[int, ...]) -> tuple[dict] | None:
    """--dynamic-dim [INPUT:]DIM values as torch.export's dynamic_shapes (`Dim.DYNAMIC` per dim).

    A PyTorch MODEL takes one input, so INPUT is 0 (`0:0` and `0` both mean
    the batch dim). torch.export specializes example sizes 0 and 1, so the
    example size of a dynamic dim must be at least 2.
    """
    if not values:
        return None
    from torch.export import Dim

    dims: dict = {}
    for value in values:
        dim = _dynamic_dim(value, len(shape))
        if shape[dim] < 2:
            raise InputError(f"--dynamic-dim {value}: the example size of dim {dim} is {shape[dim]}, which torch.export "
                             f"makes static; give --input-shape with a size >= 2 there")
        dims[dim] = Dim.DYNAMIC
    return (dims,)


def _dynamic_dim(value: str, rank: int) -> int:
    text = value.split(":", 1)
    if not all(t.strip().isdigit() for t in text) or (len(text) == 2 and int(text[0]) != 0):
        raise InputError(f"malformed --dynamic-dim {value!r}; give DIM or 0:DIM (input 0, dim DIM), e.g. 0 or 0:0")
    dim = int(text[-1])
    if dim >= rank:
        raise InputError(f"--dynamic-dim {value}: the input has {rank} dims (0..{rank - 1})")
    return dim


def print_table(report: RewriteReport) -> None:
    """--report: the per-conv table on stderr (off a terminal, 200 columns wide rather than 80)."""
    console = err if err.is_terminal else Console(stderr=True, highlight=False, width=200)
    console.print(render_table(report))


def _write_report(report: RewriteReport, json_path: Path | None, show_report: bool, extra: dict) -> None:
    """--report: the per-conv table on stderr; --json: the records as JSON (with `extra` fields first)."""
    if show_report:
        print_table(report)
    if json_path is not None:
        write_atomically(json_path, json.dumps({**extra, "report": report.to_dict()}, indent=2) + "\n")


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


def _emit(module, output: Path | None, report: RewriteReport, deploy: DeployOptions | None) -> None:
    """The IR as text (stdout or -o), or with `deploy` an IREE module and its sidecar (-o X.vmfb)."""
    if deploy is None or output is None:
        _emit_ir(str(module), output)
        return
    with StageProgress(err).stage("iree-compile"):
        deploy.write(module, output, report, lambda line: print(line, file=sys.stderr))  # unwrapped: copyable


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
                    output_type: str, dtype: str = "f32", dynamic_dims: list[str] | None = None,
                    json_path: Path | None = None, show_report: bool = False,
                    deploy: DeployOptions | None = None) -> int:
    """Export MODEL with torch-mlir, lower its convolutions with the plugin, write the IR
    (and with `json_path` / `show_report` the per-conv records); `-o X.vmfb`
    (or --output-type vmfb): an IREE module for `deploy.target` instead."""
    strategy = _strategy(grouped_conv)
    check_output_path(output)
    check_output_path(json_path)
    deploy = deploy or DeployOptions()
    vmfb = deploy.wants_vmfb(output, output_type)  # before the long work: target, output, options
    output_type = "linalg-on-tensors" if vmfb or output_type is None else output_type
    if output_type not in api.OUTPUT_TYPES:
        raise InputError(f"unknown --output-type {output_type!r}; choose one of "
                         f"{', '.join((*api.OUTPUT_TYPES, VMFB))}")
    extra: dict[str, Any] = {"model": model, "grouped_conv": strategy, "output_type": VMFB if vmfb else output_type}
    if vmfb:
        extra["target"] = deploy.target.to_dict()
    deploying = deploy if vmfb else None
    if is_onnx_model(model):
        _pytorch_only(dtype, dynamic_dims)
        if input_shape:
            raise InputError("`compile` takes an ONNX model's shapes from its graph; --input-shape is for `verify`")
        with deploy.tuned():
            module = api.compile_onnx(model, grouped_conv=strategy, output_type=output_type)
        return _finish_compile(module, output, api.last_report() or RewriteReport(strategy), json_path, show_report,
                               extra, deploying)
    torch_model, x, dynamic = _pytorch_job(model, input_shape, dtype, dynamic_dims, data=False)
    progress = StageProgress(err)
    with _named(model), progress.stage("export"):
        module = api.compile(torch_model, x, grouped_conv=None, output_type="torch", dynamic_shapes=dynamic)
    require_convolution(module, model)
    with progress.stage("plugin"), deploy.tuned():
        report = api.apply_strategy(module, strategy)
    if output_type == "linalg-on-tensors":
        with progress.stage("linalg"):
            api.lower_to_linalg(module)
    extra |= {"input_shape": list(x.shape), "dtype": dtype, "dynamic_dims": dynamic_dims or []}
    return _finish_compile(module, output, report, json_path, show_report, extra, deploying)


def _finish_compile(module, output: Path | None, report: RewriteReport, json_path: Path | None,
                    show_report: bool, extra: dict, deploy: DeployOptions | None = None) -> int:
    _emit(module, output, report, deploy)
    err.print(report.summary())
    _write_report(report, json_path, show_report, extra)
    return 0


def _pytorch_only(dtype: str, dynamic_dims: list[str] | None) -> None:
    if dtype != "f32" or dynamic_dims:
        raise InputError("--dtype and --dynamic-dim are for PyTorch models; an ONNX model's dtypes and dynamic dims "
                         "are in its graph")


def _pytorch_job(model: str, input_shape: list[str] | None, dtype: str, dynamic_dims: list[str] | None,
                 data: bool = True):
    """MODEL built and cast to --dtype, its example input (same dtype; without
    `data` a fake tensor: `compile` needs the shape only), and the
    --dynamic-dim values as torch.export's dynamic_shapes; bad options fail first."""
    check_model_spec(model)
    shape = _one_shape(input_shape, model)
    torch_type = torch_dtype(dtype)
    dynamic = dynamic_shapes(dynamic_dims, shape)
    x = example_input(shape, torch_type) if data else shape_input(shape, torch_type)
    return build_model(model).to(torch_type), x, dynamic


def lower_command(input_file: Path, output: Path | None, grouped_conv: str, input_form: str = "auto",
                  deploy: DeployOptions | None = None, json_path: Path | None = None,
                  show_report: bool = False) -> int:
    """Apply the plugin to torch IR from a file (an opt-style tool); raw IR gets
    torch-mlir's torch-backend pipeline first, and the summary says so. `-o
    X.vmfb`: then the linalg pipeline and an IREE module for `deploy.target`."""
    from torch_grouped_conv.importer import torch_context

    strategy = _strategy(grouped_conv)
    check_output_path(output)
    check_output_path(json_path)
    deploy = deploy or DeployOptions()
    vmfb = deploy.wants_vmfb(output, None)  # before the long work: target, output, options
    if strategy is None:
        raise InputError("--grouped-conv none does nothing for `lower`; choose one of " + ", ".join(STRATEGIES))
    if not input_file.is_file():
        raise InputError(f"input file {str(input_file)!r} does not exist")
    context = torch_context()
    module = _parse_module(input_file.read_text(encoding="utf-8", errors="replace"), context, input_file)
    if input_form not in api.INPUT_FORMS:
        raise InputError(f"unknown --input-form {input_form!r}; choose one of {', '.join(api.INPUT_FORMS)}")
    with deploy.tuned():
        report = api.lower(module, strategy, input_form=input_form, reject_malformed=True)
    if vmfb:
        api.lower_to_linalg(module)
    _emit(module, output, report, deploy if vmfb else None)
    err.print(report.summary())
    _write_report(report, json_path, show_report, {"input_file": str(input_file), "grouped_conv": strategy})
    return 0


def _parse_module(text: str, context: Any, path: Path):
    from torch_mlir import ir

    from torch_grouped_conv.rewrite.driver import ensure_torch_conversion_dialect

    ensure_torch_conversion_dialect(context)  # IR may already hold torch_c ops
    messages: list[str] = []

    def record(diagnostic: Any) -> bool:
        messages.append(f"{diagnostic.location}: {diagnostic.message}")
        return True  # handled

    handler = context.attach_diagnostic_handler(record)
    try:
        return ir.Module.parse(text, context=context)
    except Exception as e:
        lines = messages or [line.strip() for line in str(e).splitlines() if line.strip()]
        first = " ".join(lines[:2])
        raise InputError(f"cannot parse {path} as MLIR: {first}") from None
    finally:
        handler.detach()


def verify_command(model: str, input_shape: list[str] | None, backend: str, grouped_conv: str,
                   json_path: Path | None, dtype: str = "f32", dynamic_dims: list[str] | None = None,
                   show_report: bool = False) -> int:
    """Compile MODEL with the plugin, run it, compare with PyTorch eager (or, for
    an ONNX model, with onnxruntime on the same random inputs): PASS or FAIL."""
    strategy = _strategy(grouped_conv)
    check_output_path(json_path)
    _check_backend(backend)
    if is_onnx_model(model):
        _pytorch_only(dtype, dynamic_dims)
        return _verify_onnx_and_print(model, onnx_shapes(input_shape), backend, strategy, json_path, show_report)
    torch_model, x, dynamic = _pytorch_job(model, input_shape, dtype, dynamic_dims)
    with _named(model):
        return _verify_and_print(torch_model, x, model, backend, strategy, json_path, show_report, dynamic)


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
    return _verify_and_print(DemoNet().eval(), example_input(DEMO_INPUT_SHAPE), "demo:DemoNet", backend,
                             DEFAULT_STRATEGY, None)


def _stage_hooks(width: int) -> dict:
    """verify's on_start / on_stage: a spinner (or, off a terminal, one line for
    the compile stage) on stderr while a stage runs, its time on stdout when done."""
    progress = StageProgress(err)

    def done(stage: str, seconds: float) -> None:
        progress.done(stage)
        out.print(f"  {stage:<{width}} {seconds:8.2f} s")

    return {"on_start": progress.started, "on_stage": done}


def _verify_and_print(model, x, name: str, backend: str, strategy: str | None, json_path: Path | None,
                      show_report: bool = False, dynamic: tuple | None = None) -> int:
    dtype = str(x.dtype).removeprefix("torch.")
    out.print(f"[bold]{name}[/bold] input {list(x.shape)} {dtype} backend={backend} grouped_conv={strategy}")
    result = verify_model(model, x, name=name, backend=backend, grouped_conv=strategy, dynamic_shapes=dynamic,
                          **_stage_hooks(9))
    return _result_and_records(result, json_path, show_report)


def _result_and_records(result: VerifyResult, json_path: Path | None, show_report: bool) -> int:
    _print_result(result)
    if show_report:
        print_table(result.report)
    if json_path is not None:
        write_atomically(json_path, json.dumps(result.to_dict(), indent=2) + "\n")
    return 0 if result.passed else 1


def _verify_onnx_and_print(model: str, shapes: dict | list, backend: str, strategy: str | None,
                           json_path: Path | None, show_report: bool = False) -> int:
    from torch_grouped_conv.frontends.onnx import graph_inputs, load_model, resolve_shapes

    proto = load_model(model)  # bad files and shapes fail here, before anything is printed
    resolve_shapes(graph_inputs(proto), shapes)
    out.print(f"[bold]{model}[/bold] (ONNX, reference: onnxruntime CPU) backend={backend} grouped_conv={strategy}")
    result = verify_onnx(proto, name=model, input_shapes=shapes, backend=backend, grouped_conv=strategy,
                         **_stage_hooks(11))
    return _result_and_records(result, json_path, show_report)


def _print_result(result: VerifyResult) -> None:
    out.print(result.report.summary())
    c = result.comparison
    out.print(f"max abs error {c.max_abs_error:.3e}, max rel error {c.max_rel_error:.3e} (tolerance {c.tolerance:.0e})")
    out.print("[bold green]PASS[/bold green]" if result.passed else "[bold red]FAIL[/bold red]")


def bench_command(bench_args: list[str]) -> int:
    """Run the benchmark (torch_grouped_conv/bench, shipped with the package)."""
    from torch_grouped_conv.bench.run import main as bench_main

    return bench_main(bench_args)


DESCRIPTION = """\
Lower grouped, depthwise and plain convolutions to MLIR linalg with the
torch-grouped-conv plugin for torch-mlir, run the result and check it.

commands:
  compile  export a PyTorch or ONNX model, lower it, write the IR (--json/--report: per-conv records)
  lower    apply the plugin to torch IR from a file (opt-style)
  verify   compile, run (refbackend or IREE) and compare with PyTorch / onnxruntime: PASS or FAIL
  demo     the main job on a built-in network
  bench    benchmark vs PyTorch, ONNX Runtime and torch-mlir's own lowering (see: bench --help)
"""

EPILOGS = {
    "top": """examples:
  torch-grouped-conv demo
  torch-grouped-conv verify torchvision:mobilenet_v2 --input-shape 1,3,224,224 --backend iree --report
  torch-grouped-conv compile model.onnx -o model.mlir --json report.json
""",
    "compile": """examples:
  torch-grouped-conv compile torchvision:mobilenet_v2 --input-shape 1,3,224,224 -o mnv2.mlir --json report.json
  torch-grouped-conv compile net.py:make --input-shape 2,3,64,64 --dtype f16 --dynamic-dim 0 -o net.mlir
  torch-grouped-conv compile model.onnx --output-type torch --grouped-conv grouped --report > model.torch.mlir
""",
    "lower": """examples:
  torch-grouped-conv lower model.torch.mlir -o model.lowered.mlir
  torch-grouped-conv lower raw_import.mlir --input-form raw --grouped-conv grouped
""",
    "verify": """examples:
  torch-grouped-conv verify torchvision:resnext50_32x4d --input-shape 1,3,224,224 --backend iree --json result.json
  torch-grouped-conv verify net.py:make --input-shape 4,3,64,64 --dtype bf16 --dynamic-dim 0:0 --report
  torch-grouped-conv verify model.onnx --input-shape x=1,3,224,224 --input-shape y=1,10 --backend iree
""",
    "demo": """examples:
  torch-grouped-conv demo
  torch-grouped-conv demo --backend iree
""",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="torch-grouped-conv", description=DESCRIPTION, epilog=EPILOGS["top"],
                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print this package's version and those of torch-mlir, IREE and torch")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary, epilog=EPILOGS.get(name),
                                   formatter_class=_Formatter)

    c = command("compile", "export MODEL, lower its convolutions with the plugin, write the IR")
    c.add_argument("model", help=MODEL_HELP)
    c.add_argument("--input-shape", action="append", help="input shape, e.g. 1,3,224,224 (PyTorch models only)")
    c.add_argument("-o", "--output", type=Path, help="output .mlir, or .vmfb for an IREE module (default: stdout)")
    c.add_argument("--output-type", help="torch|linalg-on-tensors|vmfb (default: vmfb for -o X.vmfb, "
                   "else linalg-on-tensors)")
    _model_options(c)
    c.set_defaults(run=lambda a: compile_command(a.model, a.input_shape, a.grouped_conv, a.output, a.output_type,
                                                 a.dtype, a.dynamic_dim, a.json_path, a.report,
                                                 options_from_args(a)))
    add_deploy_arguments(c)

    lo = command("lower", "apply the plugin to torch IR from a file (opt-style)")
    lo.add_argument("input_file", type=Path, help="torch IR (.mlir): torch-backend form, or raw import output")
    lo.add_argument("-o", "--output", type=Path, help="output .mlir, or .vmfb for an IREE module (default: stdout)")
    lo.add_argument("--grouped-conv", default=DEFAULT_STRATEGY, help=STRATEGY_HELP)
    lo.add_argument("--input-form", default="auto",
                    help="auto (recognised from the ops)|torch-backend|raw|onnx")
    _record_options(lo)
    lo.set_defaults(run=lambda a: lower_command(a.input_file, a.output, a.grouped_conv, a.input_form,
                                                options_from_args(a), a.json_path, a.report))
    add_deploy_arguments(lo)

    v = command("verify", "compile MODEL, run it, compare with PyTorch (ONNX: onnxruntime): PASS or FAIL")
    v.add_argument("model", help=MODEL_HELP)
    v.add_argument("--input-shape", action="append", help=SHAPE_HELP)
    v.add_argument("--backend", default="refbackend", help="|".join(BACKENDS))
    _model_options(v)
    v.set_defaults(run=lambda a: verify_command(a.model, a.input_shape, a.backend, a.grouped_conv, a.json_path,
                                                a.dtype, a.dynamic_dim, a.report))

    d = command("demo", "the main job: a built-in mixed network, compiled, run, verified")
    d.add_argument("--backend", default="refbackend", help="|".join(BACKENDS))
    d.set_defaults(run=lambda a: demo_command(a.backend))

    # Listed for --help only: main() hands `bench ...` to the harness's own parser.
    commands.add_parser("bench", help="benchmark vs PyTorch, ONNX Runtime and upstream, 1 and 2 threads (see: bench --help)")
    return parser


MODEL_HELP = "torchvision:NAME (weights=None), path/to/file.py:factory, or model.onnx"
SHAPE_HELP = ("input shape, e.g. 1,3,224,224 (required for PyTorch models, which take one input); for ONNX models "
              "NAME=S or S (by position) per dynamic graph input, repeated for several inputs")
STRATEGY_HELP = (f"plugin strategy: {'|'.join(STRATEGIES)}|none (none: torch-mlir's own lowering; "
                 "auto: per conv, the fastest measured lowering)")


def _model_options(p: argparse.ArgumentParser) -> None:
    """The options compile and verify share: strategy, dtype, dynamic dims, records."""
    p.add_argument("--grouped-conv", default=DEFAULT_STRATEGY, help=STRATEGY_HELP)
    p.add_argument("--dtype", default="f32", help="PyTorch models: cast the model and its input to "
                   + "|".join(DTYPES))
    p.add_argument("--dynamic-dim", action="append", metavar="[0:]DIM",
                   help="PyTorch models: make dim DIM of the input dynamic (torch.export Dim.DYNAMIC; "
                        "repeatable; 0 or 0:0 is the batch; the example size there must be >= 2)")
    _record_options(p)


def _record_options(p: argparse.ArgumentParser) -> None:
    """--json and --report: the per-convolution records (compile, verify, lower)."""
    p.add_argument("--json", type=Path, dest="json_path",
                   help="also write one record per convolution (module path, case, strategy, why, shapes, dtype, "
                        "FLOPs) as JSON")
    p.add_argument("--report", action="store_true", help="print the per-convolution records as a table on stderr")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["bench"]:  # the harness parses its own options
            tuning.active()  # a bad TGC_TUNING: one line before any variant is built
            return bench_command(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help, --version
            return e.code if isinstance(e.code, int) else 0
        tuning.active()  # a bad TGC_TUNING is one line before the long work (rewrite/tuning.py)
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
