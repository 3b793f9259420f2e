"""Load test: one loaded module per runner called from N threads at once, M
calls each, every call on its own input, every result compared with PyTorch.

    python -m tests.campaigns.load_test --threads 4 --calls 100 [--backends refbackend,iree]

prints one line per runner: "<backend>: <calls> calls on <threads> threads,
<wrong> wrong, <errors> errors, <seconds> s" (and the first error, if any);
exits 1 if any call was wrong or failed. `make test` runs it small
(tests/e2e/test_runner_threads.py).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import torch_grouped_conv as tgc

# A grouped conv whose output (32x30x30 f32, 115 KB) is large enough that a
# result delivered to the wrong call, or half-written, shows.
SHAPE = (1, 16, 32, 32)
INPUTS_PER_THREAD = 4


@dataclass
class LoadResult:
    backend: str
    threads: int
    calls: int = 0
    wrong: int = 0
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""

    def line(self) -> str:
        text = (f"{self.backend}: {self.calls} calls on {self.threads} threads, {self.wrong} wrong, "
                f"{self.errors} errors, {self.seconds:.1f} s")
        return text + (f" (first error: {self.first_error})" if self.first_error else "")


def model_and_module() -> tuple[torch.nn.Module, object]:
    torch.manual_seed(0)
    model = torch.nn.Conv2d(16, 32, 3, groups=4).eval()
    return model, tgc.compile(model, torch.randn(*SHAPE))


def load_test(module: object, model: torch.nn.Module, backend: str, threads: int, calls: int) -> LoadResult:
    """`threads` threads, `calls` calls each, on one `tgc.load(module, backend)`."""
    program = tgc.load(module, backend=backend)
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(*SHAPE, generator=generator) for _ in range(threads * INPUTS_PER_THREAD)]
    with torch.no_grad():
        expected = [model(x).numpy() for x in inputs]
    result, lock = LoadResult(backend, threads), threading.Lock()
    start = threading.Barrier(threads)

    def worker(t: int) -> None:
        start.wait()  # all threads call at once
        for i in range(calls):
            k = t * INPUTS_PER_THREAD + i % INPUTS_PER_THREAD
            outcome = _call(program, inputs[k], expected[k])
            with lock:
                result.calls += 1
                result.wrong += outcome == "wrong"
                if outcome not in ("ok", "wrong"):
                    result.errors += 1
                    result.first_error = result.first_error or outcome

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result


def _call(program: Callable, x: torch.Tensor, expected: np.ndarray) -> str:
    """"ok", "wrong", or the error as one line."""
    try:
        [y] = program(x)
    except Exception as e:  # noqa: BLE001 - every failure is counted, the test goes on
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return "ok" if y.shape == expected.shape and np.allclose(y, expected, rtol=1e-4, atol=1e-4) else "wrong"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=100, help="calls per thread")
    parser.add_argument("--backends", default=",".join(tgc.BACKENDS))
    args = parser.parse_args(argv)
    model, module = model_and_module()
    failed = False
    for backend in args.backends.split(","):
        result = load_test(module, model, backend, args.threads, args.calls)
        print(result.line(), flush=True)
        failed |= bool(result.wrong or result.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
