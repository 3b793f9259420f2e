"""Numeric tolerances, in one place: (rtol, atol) for np.allclose against
PyTorch eager CPU, per element type.

f32/f64: both sides accumulate in the input type; differences come from
summation order only. f16/bf16: our lowering accumulates in f32 and rounds
once, as PyTorch's CPU kernels do; one rounding step of the output type
(2^-11 for f16, 2^-8 for bf16) plus order effects.
"""

import torch

TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-4, 1e-5),
    torch.float16: (1e-2, 1e-2),
    torch.bfloat16: (2e-2, 2e-2),
}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES[dtype]
