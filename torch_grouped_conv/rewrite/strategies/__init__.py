"""Lowering strategies, the values of `grouped_conv=` (see strategy.py).

Importing this package registers every strategy (each module registers its
own), in the order of `STRATEGIES`: `grouped` (the default) first, `auto` last.
"""

import importlib

from torch_grouped_conv.rewrite.strategies.choice import Choice, choose
from torch_grouped_conv.rewrite.strategies.strategy import quantized_strategies, strategy_names

STRATEGY_MODULES = ("grouped", "split", "channels_last", "im2col", "taps", "matmul", "winograd", "auto")
for _module in STRATEGY_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

STRATEGIES = strategy_names()
QUANTIZED_STRATEGIES = quantized_strategies()  # besides the default, those that take quantized plans

__all__ = ["QUANTIZED_STRATEGIES", "STRATEGIES", "Choice", "choose"]
