"""`auto`: pick a strategy per convolution, by a rule read off the benchmark
(docs/performance.md, "The auto rule"; numbers from benchmarks/run.py).

The rule, in order:
1. depthwise (groups == C_in == C_out) with a kernel of 7 or more per side
   -> `channels-last`: linalg.depthwise_conv_2d_nhwc_hwc vectorizes along C,
   and with a large window the boundary transposes are paid back (ConvNeXt
   7x7 depthwise ran ~2x faster than the NCHW form);
2. other depthwise -> `grouped` (NCHW depthwise_conv_2d_nchw_chw): for 3x3
   and 5x5 the NHWC form was no faster and the transposes cost extra passes;
3. grouped (1 < groups, not depthwise; a channel multiplier, case
   `depthwise_multiplier`, included) -> `im2col`: one batch_matmul over
   the groups beat every direct form on every grouped shape measured
   (2-5x over upstream), since IREE's matmul codegen is its best-tuned path;
4. groups == 1 -> `grouped` (the default conv_2d_nchw_fchw).
"""

from __future__ import annotations

from ..plan import Case, ConvPlan
from .registry import PICKERS

LARGE_DEPTHWISE_KERNEL = 7


def pick_strategy(plan: ConvPlan) -> tuple[str, str]:
    """(strategy, why) for one convolution; see the module docstring."""
    kernel = [k for k in plan.spec.kernel if k is not None]
    if plan.case is Case.DEPTHWISE:
        if kernel and min(kernel) >= LARGE_DEPTHWISE_KERNEL:
            return "channels-last", f"depthwise with kernel {kernel} >= {LARGE_DEPTHWISE_KERNEL}: NHWC depthwise"
        return "grouped", f"depthwise with kernel {kernel} < {LARGE_DEPTHWISE_KERNEL}: NCHW depthwise"
    if plan.case in (Case.GROUPED, Case.DEPTHWISE_MULTIPLIER):
        return "im2col", f"groups={plan.spec.groups} ({plan.case}): grouped GEMM (im2col + batch_matmul)"
    assert plan.case is Case.CONV, plan.case
    return "grouped", "groups=1: plain conv_2d_nchw_fchw"


PICKERS["auto"] = pick_strategy
