"""Memory over long runs, both runners (tests/campaigns/memory_test.py at a
small size; full size: `python -m tests.campaigns.memory_test --calls 10000
--cycles 100`), and a silent exit.

Before the fix refbackend kept every result (the JIT mallocs each one and
hands it to the caller: 115 KB a call here) and ~10 KB a call of ctypes
classes; IREE's runtime objects were still alive at exit, ~116 lines of
"nanobind: leaked instance" on stderr after any use of backend="iree" from
torch.compile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import torch_grouped_conv as tgc
from tests.campaigns.memory_test import call_growth, cycle_growth

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", tgc.BACKENDS)
def test_calls_do_not_grow_memory(backend: str) -> None:
    growth = call_growth(backend, calls=1000)
    print(growth.line())
    # A leaked result would be 115 MB here, the ctypes classes ~10 MB.
    assert growth.growth_mb < 5, growth.line()


@pytest.mark.parametrize("backend", tgc.BACKENDS)
def test_compile_load_cycles_do_not_grow_memory(backend: str) -> None:
    growth = cycle_growth(backend, cycles=3, warmup=1)
    print(growth.line())
    assert growth.growth_mb < 20, growth.line()


EXIT_SCRIPT = """
import torch, torch_grouped_conv as tgc
model, x = torch.nn.Conv2d(4, 4, 3, groups=2).eval(), torch.randn(1, 4, 6, 6)
program = tgc.load(tgc.compile(model, x), backend="iree")
out = program(x)  # results still held when the interpreter exits (it crashed, exit code 139)
compiled = torch.compile(model, backend="torch_grouped_conv", options={"runtime": "iree"})
y = compiled(x)
assert torch.allclose(y, model(x), atol=1e-5)
print("done")
"""


def test_a_program_that_used_iree_exits_silently() -> None:
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done"
    assert "leaked" not in done.stderr, done.stderr[-2000:]
