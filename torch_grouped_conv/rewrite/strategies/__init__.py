"""Lowering strategies beyond the default `grouped` emitters (see registry.py).

Importing this package registers every strategy's emitters.
"""

from torch_grouped_conv.rewrite.strategies import auto, channels_last, im2col, matmul, split, taps  # noqa: F401  (register emitters)
from torch_grouped_conv.rewrite.strategies.registry import Choice, choose

STRATEGIES = ("grouped", "split", "channels-last", "im2col", "taps", "matmul", "auto")

__all__ = ["STRATEGIES", "Choice", "choose"]
