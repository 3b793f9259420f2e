"""The torch.compile frontend: `torch.compile(model, backend="torch_grouped_conv")`.

Dynamo hands us one FX graph per compiled region (graph breaks give several).
AOTAutograd (`aot_autograd`) turns each into an ATen-level forward graph with
torch-mlir's decompositions; the forward graph goes through torch-mlir's FX
importer (the stateless path: parameters stay graph inputs, so updating a
weight in place never leaves a stale compiled copy), the shared stages (the
plugin, the linalg pipeline) and a runner, and comes back as a callable that
takes and returns torch tensors. A backward graph, when there is one, runs
eagerly.

Options (`torch.compile(..., options={...})`): `grouped_conv` (a strategy,
default "auto"), `runtime` ("iree", the default, or "refbackend"), and for
IREE `target` (a `Target` of this machine's architecture, e.g.
`Target(cpu="x86-64-v3")`, or a dict of its fields; default the host) and
`threads` (1: local-sync on the calling thread; N: N workers, compiled for N;
default IREE's).

Compiled artifacts are cached per graph (its code and its own constants) and input signature
(dtypes, shapes with symbolic dims as symbols), so the same graph met again —
another instance of the same architecture, a recompile after
`torch._dynamo.reset()` — is not compiled twice. A graph that cannot be
compiled, or whose compiled code fails when called, runs eagerly instead,
with one warning naming the reason.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from torch_grouped_conv.errors import InputError
from torch_grouped_conv.importer import FastLiteralHooks
from torch_grouped_conv.rewrite.driver import STRATEGIES
from torch_grouped_conv.runners import BACKENDS, load
from torch_grouped_conv.runners.iree_flags import check_threads
from torch_grouped_conv.runners.target import Target
from torch_grouped_conv.stages import PLUGIN_LEGAL_OPS, finish

BACKEND_NAME = "torch_grouped_conv"
DEFAULT_OPTIONS: dict[str, Any] = {"grouped_conv": "auto", "runtime": "iree", "target": None, "threads": None}

# How many graphs were compiled, served from the cache, or left to eager (for tests and curious users).
STATS: Counter[str] = Counter()
_CACHE: dict[tuple[Any, ...], CompiledGraph] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Options:
    grouped_conv: str
    runtime: str
    target: Target | None = None
    threads: int | None = None


def parse_options(options: dict[str, Any] | None) -> Options:
    merged = {**DEFAULT_OPTIONS, **(options or {})}
    unknown = sorted(set(merged) - set(DEFAULT_OPTIONS))
    if unknown:
        raise InputError(f"unknown torch_grouped_conv option {unknown[0]!r}; the options are {', '.join(DEFAULT_OPTIONS)}")
    if merged["grouped_conv"] not in STRATEGIES:
        raise InputError(f"unknown grouped_conv={merged['grouped_conv']!r}; choose one of {', '.join(STRATEGIES)}")
    if merged["runtime"] not in BACKENDS:
        raise InputError(f"unknown runtime={merged['runtime']!r}; choose one of {', '.join(BACKENDS)}")
    target, threads = _target(merged["target"]), check_threads(merged["threads"])
    if merged["runtime"] != "iree" and (target is not None or threads is not None):
        raise InputError("the target and threads options are for runtime='iree'")
    if target is not None and not target.runs_here:
        raise InputError(f"target={target.describe()} cannot run on this machine; torch.compile runs what it "
                         "compiles here (tgc.save compiles for another machine)")
    return Options(merged["grouped_conv"], merged["runtime"], target, threads)


def _target(value: Any) -> Target | None:
    """The `target` option: a Target, a dict of its fields (triple, cpu, features, abi), or None (the host)."""
    if value is None or isinstance(value, Target):
        return value
    if isinstance(value, dict) and set(value) <= {"triple", "cpu", "features", "abi"}:
        return Target(**value)
    raise InputError(f"target={value!r}: give a torch_grouped_conv.Target, a dict of triple/cpu/features/abi, or None")


def backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: dict[str, Any] | None = None) -> Callable:
    """The dynamo backend (registered as "torch_grouped_conv")."""
    from torch._dynamo.backends.common import aot_autograd

    from torch_grouped_conv.frontends.decompositions import decomposition_table

    opts = parse_options(options)  # bad options: InputError before any tracing
    return aot_autograd(
        fw_compiler=functools.partial(compile_graph, options=opts),
        bw_compiler=_eager,
        decompositions=decomposition_table(),  # torch-mlir's, adaptive pooling linear in its size
    )(gm, example_inputs)


def compile_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: Options) -> Callable:
    """AOTAutograd's forward compiler: a boxed callable (list of inputs -> tuple of outputs)."""
    from torch._functorch.aot_autograd import make_boxed_func
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    try:
        # AOTAutograd calls us under its fake mode; the graph's own constants
        # and the import need real tensors.
        with unset_fake_temporarily():
            key = (gm.code, constants_key(gm), signature(example_inputs), options)
            with _LOCK:
                compiled = _CACHE.get(key)
            if compiled is not None:
                STATS["cache_hits"] += 1
            else:
                compiled = CompiledGraph(gm, options)
                STATS["compiled"] += 1
                with _LOCK:
                    _CACHE[key] = compiled
    except Exception as e:  # noqa: BLE001  (any failure: run eagerly, say why)
        return make_boxed_func(_fallback(gm, f"it could not be compiled: {_reason(e)}"))
    return make_boxed_func(_guarded(compiled, gm))


class CompiledGraph:
    """One forward graph through the FX importer, the plugin, linalg and a runner."""

    def __init__(self, gm: torch.fx.GraphModule, options: Options) -> None:
        from torch_mlir import fx

        from torch_grouped_conv.stages import last_report

        module = fx.stateless_fx_import(tensors_only(gm), output_type="torch", hooks=FastLiteralHooks(),
                                        backend_legal_ops=list(PLUGIN_LEGAL_OPS))
        finish(module, options.grouped_conv, "linalg-on-tensors")
        self.report = last_report()
        self.program = load(module, options.runtime, threads=options.threads, target=options.target)
        self.tensor_positions = [i for i, n in enumerate(_placeholders(gm)) if _is_tensor(n)]
        self.output_count = _output_count(gm)

    def __call__(self, *args: Any) -> tuple[torch.Tensor, ...]:
        # SymInt placeholders (dynamic=True) are implied by the tensors' shapes:
        # the imported function takes tensors only.
        results = self.program(*[args[i] for i in self.tensor_positions])
        if len(results) != self.output_count:
            raise RuntimeError(f"compiled graph returned {len(results)} results, the graph has {self.output_count}")
        return tuple(torch.from_numpy(np.ascontiguousarray(r)) for r in results)


def tensors_only(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of `gm` without SymInt placeholders (dynamic=True): each becomes
    `aten.sym_size.int(x, d)` of a tensor input `x` whose dim `d` is that symbol,
    so the compiled function takes tensors only. A symbol no input dim carries
    raises (and the graph runs eagerly)."""
    graph = torch.fx.Graph()
    output = graph.graph_copy(gm.graph, {})
    graph.output(output)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    dims: dict[str, tuple[torch.fx.Node, int]] = {}
    for node in placeholders:
        if _is_tensor(node):
            for d, size in enumerate(node.meta["val"].shape):
                dims.setdefault(str(size), (node, d))
    for node in placeholders:
        if _is_tensor(node):
            continue
        symbol = str(node.meta.get("val"))
        if symbol not in dims:
            raise ValueError(f"graph input {node.name}={symbol} is no tensor input's dim")
        source, d = dims[symbol]
        with graph.inserting_after(placeholders[-1]):
            size = graph.call_function(torch.ops.aten.sym_size.int, (source, d))
        size.meta["val"] = node.meta.get("val")
        node.replace_all_uses_with(size)
        graph.erase_node(node)
    return torch.fx.GraphModule(gm, graph)


def constants_key(gm: torch.fx.GraphModule) -> tuple[Any, ...]:
    """The tensors the graph holds itself (get_attr: constants made in forward),
    by content: same code with other constants is another graph."""
    key: list[Any] = []
    for node in gm.graph.nodes:
        if node.op != "get_attr":
            continue
        value: Any = gm
        for part in str(node.target).split("."):
            value = getattr(value, part)
        if isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous()
            digest = hashlib.sha1(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"").hexdigest()
            key.append((node.target, str(data.dtype), tuple(data.shape), digest))
        else:
            key.append((node.target, repr(value)))
    return tuple(key)


def signature(example_inputs: Sequence[Any]) -> tuple[Any, ...]:
    """dtype and shape (symbols as their names) of each tensor input; other inputs by type."""
    sig: list[Any] = []
    for x in example_inputs:
        if isinstance(x, torch.Tensor):
            sig.append((str(x.dtype), tuple(str(d) for d in x.shape), x.device.type))
        else:
            sig.append(type(x).__name__)
    return tuple(sig)


def _guarded(compiled: CompiledGraph, gm: torch.fx.GraphModule) -> Callable:
    """Call the compiled graph; if it fails at run time, warn once and run eagerly from then on."""
    state: dict[str, Callable | None] = {"eager": None}

    def call(*args: Any) -> Any:
        if state["eager"] is None:
            try:
                return compiled(*args)
            except Exception as e:  # noqa: BLE001
                state["eager"] = _fallback(gm, f"its compiled code failed when called: {_reason(e)}")
        eager = state["eager"]
        assert eager is not None  # set just above when the compiled call failed
        return eager(*args)

    return call


def _fallback(gm: torch.fx.GraphModule, reason: str) -> Callable:
    STATS["fallbacks"] += 1
    warnings.warn(f"torch_grouped_conv: running a graph eagerly because {reason}", RuntimeWarning, stacklevel=2)
    return gm.forward


def _eager(gm: torch.fx.GraphModule, example_inputs: Sequence[Any]) -> Callable:
    from torch._functorch.aot_autograd import make_boxed_func

    return make_boxed_func(gm.forward)


def _placeholders(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "placeholder"]


def _is_tensor(node: torch.fx.Node) -> bool:
    value = node.meta.get("val", node.meta.get("example_value"))
    return isinstance(value, torch.Tensor)


def _output_count(gm: torch.fx.GraphModule) -> int:
    [output] = [n for n in gm.graph.nodes if n.op == "output"]
    values = output.args[0]
    return len(values) if isinstance(values, (tuple, list)) else 1


def _reason(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


def register() -> None:
    """Register the backend with dynamo under "torch_grouped_conv" (idempotent).

    After `pip install` the `torch_dynamo_backends` entry point does this
    lazily; `import torch_grouped_conv` calls it too, so a source checkout on
    PYTHONPATH works the same.
    """
    from torch._dynamo.backends import registry

    if BACKEND_NAME not in registry._BACKENDS:  # registering twice raises
        registry.register_backend(name=BACKEND_NAME)(backend)


def reset_cache() -> None:
    with _LOCK:
        _CACHE.clear()
    STATS.clear()
