"""The quantized fuzz property (tests/campaigns/fuzz_quantized.py) with a fixed
seed: 8 random per-tensor quantized conv configs (rank 1-3, groups 1-8 with
1-4 channels per group, stride/padding/dilation, transposed, ui8/si8 input
and weight with random zero points, bias, dynamic batch; strategies grouped,
auto, im2col in rotation), each on refbackend and IREE, exactly equal to
PyTorch's integer result."""

from hypothesis import HealthCheck, given, settings

from tests.campaigns.fuzz_quantized import check_quantized, quantized_configs, strategy_for
from tests.support.quantized import QConv


@settings(derandomize=True, max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(quantized_configs())
def test_random_quantized_convolutions_are_exact(conv: QConv) -> None:
    check_quantized(conv, strategy_for(conv))
