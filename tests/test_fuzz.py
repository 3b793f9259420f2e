"""The fuzz property (e2e_tests/fuzz.py) with a fixed seed: 25 random conv
configs (rank 1-3, groups, stride/padding/dilation, transposed with valid
output_padding, bias, f32/f64/f16/bf16, dynamic batch) on refbackend, one in
four also on IREE."""

from hypothesis import HealthCheck, given, settings

from e2e_tests.fuzz import Config, check_config, conv_configs, uses_iree


@settings(derandomize=True, max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(conv_configs())
def test_random_convolutions_match_pytorch(config: Config) -> None:
    backends = ("refbackend", "iree") if uses_iree(config, 4) else ("refbackend",)
    check_config(config, backends)
