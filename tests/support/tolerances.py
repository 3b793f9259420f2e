"""What a runner's results are compared with, and how closely, in one place:
`reference` (PyTorch eager CPU; for f16/bf16 an f64 computation) and
(rtol, atol) for np.allclose per element type.

f32/f64: both sides accumulate in the input type; differences come from
summation order only. f16/bf16: the reference is the model run in float64 on
the same (already rounded) inputs and weights, rounded once to the dtype, not
PyTorch's own f16/bf16 kernels (its bf16 Conv3d returned garbage on an Intel
host where ours matched f64); our lowering accumulates in f32 and rounds once,
so the difference is one rounding step of the output type (2^-11 for f16,
2^-8 for bf16) plus f32 order effects, well inside the tolerances below.
"""

import copy
from collections.abc import Callable
from typing import Any

import torch

LOW_PRECISION = (torch.float16, torch.bfloat16)

TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES[dtype]


def reference(model: Callable[..., Any], *inputs: Any) -> Any:
    """`model(*inputs)` under no_grad; when a floating input is f16/bf16, the
    same computation in float64 (a copy of the module and the inputs widened:
    exact) with the floating results rounded back to that dtype."""
    low = next((x.dtype for x in inputs if isinstance(x, torch.Tensor) and x.dtype in LOW_PRECISION), None)
    with torch.no_grad():
        if low is None:
            return model(*inputs)
        wide = copy.deepcopy(model).double() if isinstance(model, torch.nn.Module) else model
        out = wide(*[x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs])
    return _round(out, low)


def _round(out: Any, dtype: torch.dtype) -> Any:
    if isinstance(out, torch.Tensor):
        return out.to(dtype) if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_round(o, dtype) for o in out)
    return out
