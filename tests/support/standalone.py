"""Run a saved IREE module (`tgc.save`) the way it ships: in a fresh Python
process with IREE's runtime alone (no torch, torch-mlir, torch-grouped-conv,
and so no plugin of ours), checked to have loaded none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

STANDALONE = """
import sys
import numpy as np
from iree import runtime as ireert
module = ireert.load_vm_flatbuffer_file(sys.argv[1], driver=sys.argv[4])
y = module.main(np.load(sys.argv[2])).to_host()
np.save(sys.argv[3], y)
leaked = {"torch", "torch_mlir", "torch_grouped_conv"} & set(sys.modules)
assert not leaked, leaked
"""


def run_standalone(vmfb: Path, x: np.ndarray, driver: str = "local-task") -> np.ndarray:
    np.save(vmfb.parent / "x.npy", x)
    done = subprocess.run([sys.executable, "-c", STANDALONE, str(vmfb), str(vmfb.parent / "x.npy"),
                           str(vmfb.parent / "y.npy"), driver], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return np.load(vmfb.parent / "y.npy")
