"""2D convolution e2e cases, generated from grids.

Every single-conv case is one `ConvConfig` (tests/support/configs.py). The set is a covering design,
not a cartesian product:

- three bases, one per lowering case (`conv` groups=1, `depthwise`
  groups=C, `grouped` groups=4), each at the base config;
- the remaining group counts (2, 8) on the grouped base;
- one-axis variations (stride, padding, dilation, bias, kernel, input size,
  batch) applied to the bases (all of them to depthwise and grouped);
- odd channel counts and a handful of mixed combinations (per-dim stride /
  padding / dilation, a channel multiplier (case `depthwise_multiplier`), f64);
- a dynamic-batch case run on several batch sizes;
- one network mixing the three cases.

Layout everywhere: input [N, C, H, W], weight [F, C/G, KH, KW], result
[N, F, Ho, Wo]. `CONV2D_CONFIGS` maps each single-conv case name to its config,
for IR tests that check the op chain against the parameters.
"""

from __future__ import annotations

import torch

from tests.support.configs import INPUT_SEED, MODULE_SEED, ConvConfig
from tests.support.registry import CaseInputs, E2ECase, register

# The ops each case's lowering must produce (beside the pad / init ops below).
CASE_CHAINS = {
    "conv": ("linalg.conv_2d_nchw_fchw",),
    "depthwise": ("tensor.collapse_shape", "linalg.depthwise_conv_2d_nchw_chw"),
    "grouped": ("tensor.expand_shape", "linalg.conv_2d_ngchw_gfchw", "tensor.collapse_shape"),
}
CASE_CHAINS["depthwise_multiplier"] = CASE_CHAINS["grouped"]  # the grouped lowering with C/G = 1


def expected_ops(config: ConvConfig) -> tuple[str, ...]:
    padding = ("tensor.pad",) if any(config.padding) else ()
    bias_add = ("linalg.generic",) if config.bias else ()  # after the conv; the init is always zeros
    return CASE_CHAINS[config.case] + padding + ("linalg.fill",) + bias_add


CONV2D_CONFIGS: dict[str, ConvConfig] = {}


def register_conv2d(name: str, config: ConvConfig, **case_kwargs) -> E2ECase:
    """Register `config` as e2e case `name` (and remember it for IR tests)."""
    CONV2D_CONFIGS[name] = config
    return register(E2ECase(
        name=name,
        make_module=config.make_module,
        make_inputs=config.make_inputs,
        expected_counts={config.case: 1},
        expected_ops=expected_ops(config),
        **case_kwargs,
    ))


# --- the grid ---------------------------------------------------------------

C = 16
BASES = {
    "conv": ConvConfig(groups=1),
    "depthwise": ConvConfig(groups=C),
    "grouped": ConvConfig(groups=4),
}

# One axis changed from the base; every non-base value of every axis appears.
VARIATIONS: dict[str, dict] = {
    "stride2": {"stride": (2, 2)},
    "pad0": {"padding": (0, 0)},
    "pad2": {"padding": (2, 2)},
    "dil2": {"dilation": (2, 2)},
    "nobias": {"bias": False},
    "k3x5": {"kernel": (3, 5)},
    "k1x3": {"kernel": (1, 3), "padding": (0, 1)},
    "in9x13": {"spatial": (9, 13)},
    "batch3": {"batch": 3},
}

# Which variations each base gets: all for the two cases the plugin adds over a
# plain conv; groups=1 gets the rest through `mixed_conv` below.
BASE_VARIATIONS = {
    "conv": ("stride2", "pad0", "dil2", "nobias", "k3x5"),
    "depthwise": tuple(VARIATIONS),
    "grouped": tuple(VARIATIONS),
}

# Group counts beside the bases' 1, 4 and C.
GROUP_COUNTS = (2, 8)

# Odd channel counts: C/G and F/G that are not powers of two, F != C.
ODD_CHANNELS = {
    "c12_g3": ConvConfig(c_in=12, groups=3),
    "c6_g3_f9": ConvConfig(c_in=6, groups=3, c_out=9),
}

# Several axes at once, including per-dim (non-square) stride, padding, dilation.
MIXED = {
    "mixed_grouped_g2": ConvConfig(
        groups=2, kernel=(3, 5), stride=(2, 2), padding=(2, 2), dilation=(2, 2),
        bias=False, batch=3, spatial=(9, 13),
    ),
    "mixed_grouped_g8_asym": ConvConfig(
        groups=8, kernel=(5, 3), stride=(1, 2), padding=(0, 1), spatial=(9, 13),
    ),
    "mixed_depthwise_asym": ConvConfig(
        groups=C, kernel=(1, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2),
        batch=3, spatial=(9, 13),
    ),
    "mixed_conv": ConvConfig(
        groups=1, c_in=6, c_out=10, kernel=(1, 3), stride=(2, 2), padding=(2, 2),
        dilation=(2, 2), batch=3, spatial=(9, 13),
    ),
    # groups == C_in but F = 2*C_in: a channel multiplier, lowered like grouped.
    "mixed_multiplier": ConvConfig(c_in=8, groups=8, c_out=16, stride=(2, 2), bias=False),
}

# f64 cases: tolerances tight enough to catch any index error.
F64 = {
    "mixed_grouped_f64": ConvConfig(
        groups=4, stride=(2, 1), dilation=(2, 1), padding=(2, 0), dtype=torch.float64,
    ),
    "mixed_depthwise_f64": ConvConfig(groups=C, kernel=(3, 5), padding=(0, 2), dtype=torch.float64),
}


def _register_grid() -> None:
    for case, base in BASES.items():
        register_conv2d(f"conv2d_{case}", base)
        for variation in BASE_VARIATIONS[case]:
            register_conv2d(f"conv2d_{case}_{variation}", base.replace(**VARIATIONS[variation]))
    for groups in GROUP_COUNTS:
        register_conv2d(f"conv2d_grouped_g{groups}", BASES["grouped"].replace(groups=groups))
    for name, config in {**ODD_CHANNELS, **MIXED}.items():
        register_conv2d(f"conv2d_{name}", config)
    for name, config in F64.items():
        register_conv2d(f"conv2d_{name}", config)


_register_grid()


# --- dynamic batch ------------------------------------------------------------

DYNAMIC_BATCH_SIZES = (2, 5)


def _register_dynamic_batch(case: str) -> None:
    config = BASES[case].replace(batch=3, spatial=(9, 13))
    batch = torch.export.Dim("batch", min=1, max=64)
    register_conv2d(
        f"conv2d_{case}_dynamic_batch", config,
        dynamic_shapes=({0: batch},),
        more_inputs=lambda: [(config.make_input(n),) for n in DYNAMIC_BATCH_SIZES],
    )


for _case in ("grouped", "depthwise"):
    _register_dynamic_batch(_case)


# --- a network mixing the three cases -------------------------------------------

class MixedNet(torch.nn.Module):
    """stem conv -> depthwise -> grouped (stride 2) -> pointwise conv -> grouped 1x1."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.depthwise = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.grouped = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=4, bias=False)
        self.pointwise = torch.nn.Conv2d(32, 24, 1)
        self.grouped_1x1 = torch.nn.Conv2d(24, 24, 1, groups=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x))
        x = torch.relu(self.depthwise(x)) + x
        x = torch.relu(self.grouped(x))
        return self.grouped_1x1(self.pointwise(x))


def _make_mixed_net() -> torch.nn.Module:
    torch.manual_seed(MODULE_SEED)
    return MixedNet()


def _mixed_net_inputs() -> CaseInputs:
    torch.manual_seed(INPUT_SEED)
    return (torch.randn(2, 3, 12, 10),)


register(E2ECase(
    name="conv2d_network_mixed",
    make_module=_make_mixed_net,
    make_inputs=_mixed_net_inputs,
    expected_counts={"conv": 2, "depthwise": 1, "grouped": 2},
    expected_ops=(
        "linalg.conv_2d_nchw_fchw", "linalg.depthwise_conv_2d_nchw_chw", "linalg.conv_2d_ngchw_gfchw",
    ),
))
