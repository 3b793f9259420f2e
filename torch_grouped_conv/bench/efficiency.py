"""How close to the machine's ceiling (ceiling.py) auto gets, per net: overall
and per costly conv dispatch.

Overall: the model's FLOPs (conv + matmul, counted by
torch.utils.flop_counter on one eager call; workloads.model_flops) / auto's
median time, as GFLOP/s and as a fraction of the ceiling at that thread
count.

Per dispatch: the five costliest conv dispatches of the breakdown profile
(breakdown.py, `top_dispatches`), each dispatch's FLOPs read from its name.
IREE names a dispatch after its main op and that op's static loop ranges,
e.g. `main$async_dispatch_7_batch_matmul_1x256x196x2304_f32` (B x M x N x K)
or `..._conv_2d_nchw_fchw_1x64x56x56x64x3x3_f32` (N x F x OH x OW x C x KH x
KW), per run; a dispatch function runs as often as the net has ops of its
shape (`runs` per call, from the profile), so its FLOPs per call are those
times `runs`. For the contractions (matmul, batch_matmul, mmt4d, conv, depthwise conv,
`matmul_like`, `contract`) every loop is one multiply-add per point, so FLOPs
= 2 x the product of the ranges (mmt4d: of its padded tiles). Other names
give no FLOPs (`null`, with the reason): elementwise generics (how IREE names
the `taps` convs and fused epilogues), pack/unpack (data movement), dynamic
ranges.
"""

from __future__ import annotations

import re
from typing import Any

TOP_CONV = 5
CONTRACTIONS = ("batch_matmul", "matmul_like", "matmul_transpose_b", "matmul", "mmt4d", "batch_mmt4d",
                "depthwise_conv", "conv", "contract")
# `<op>[_<variant>]_<d0>x<d1>x..._<type>` after `dispatch_<n>_`
_NAME = re.compile(r"dispatch_\d+_(?P<op>[a-z][a-z0-9_]*?)_(?P<dims>[0-9D]+(?:x[0-9D]+)+)(?:_|$)")


def dispatch_flops(name: str) -> tuple[int | None, str]:
    """FLOPs of one dispatch from its name, and how they were read (or why not)."""
    match = _NAME.search(name)
    if match is None:
        return None, "the name carries no loop ranges"
    op, dims = match.group("op"), match.group("dims").split("x")
    if not any(op == c or op.startswith(c + "_") for c in CONTRACTIONS):
        return None, (f"`{op}` is no contraction by name (IREE calls taps convs, im2col copies and epilogues "
                      "`generic` or `elementwise`)")
    if any(not d.isdigit() for d in dims):
        return None, f"`{op}` has dynamic loop ranges ({'x'.join(dims)})"
    flops = 2
    for d in dims:
        flops *= int(d)
    return flops, f"2 x {'x'.join(dims)} ({op})"


def gflops(flops: float, ms: float) -> float:
    return flops / (ms * 1e-3) / 1e9


def of_row(row: dict[str, Any], ceilings: dict[str, float], auto: str = "auto") -> dict[str, Any]:
    """Per thread count: auto's overall GFLOP/s and fraction of the ceiling, and
    the same for its costliest conv dispatches. Empty where auto was not timed."""
    result: dict[str, Any] = {}
    for t, timings in row.get("threads", {}).items():
        ceiling = ceilings.get(t)
        median = timings.get(auto, {}).get("median_ms")
        if not ceiling or not median:
            continue
        entry: dict[str, Any] = {"ceiling_gflops": ceiling}
        if row.get("flops"):
            entry["auto_gflops"] = round(gflops(row["flops"], median), 2)
            entry["auto_fraction"] = round(entry["auto_gflops"] / ceiling, 4)
        top = row.get("breakdown", {}).get(t, {}).get("top_dispatches")
        if top is not None:
            entry["conv_dispatches"] = [_dispatch(d, ceiling) for d in [d for d in top if d["conv"]][:TOP_CONV]]
        result[t] = entry
    return result


def _dispatch(dispatch: dict[str, Any], ceiling: float) -> dict[str, Any]:
    flops, how = dispatch_flops(dispatch["name"])
    runs = dispatch.get("runs", 1)
    if flops is not None and runs != 1:
        flops, how = round(flops * runs), f"{how} x {runs:g} runs per call"
    entry: dict[str, Any] = {"name": dispatch["name"], "ms": dispatch["ms"], "runs": runs, "flops": flops,
                             "flops_from": how, "gflops": None, "fraction": None}
    if flops is not None and dispatch["ms"] > 0:
        entry["gflops"] = round(gflops(flops, dispatch["ms"]), 2)
        entry["fraction"] = round(entry["gflops"] / ceiling, 4)
    return entry
