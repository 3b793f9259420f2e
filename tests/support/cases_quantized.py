"""The quantized convolutions the tests run (see tests/support/quantized.py):
every case (plain, depthwise, multiplier, grouped) in 1D, 2D and 3D, forward
and transposed, ui8 and si8 data, zero and non-zero zero points."""

from __future__ import annotations

from tests.support.quantized import QConv

# Forward convolutions: the accumulator and the QLinearConv tests. Names say rank and case.
FORWARD = [
    QConv("q2d_grouped", (6, 6), 8, 8, 4, (3, 3), padding=(1, 1), expected_case="quantized_grouped"),
    QConv("q2d_conv_stride2_ui8_weight", (7, 7), 3, 4, 1, (3, 3), stride=(2, 2), padding=(1, 1),
          input_zero_point=0, weight_storage="ui8", weight_zero_point=120, bias=False,
          expected_case="quantized_conv"),
    QConv("q2d_depthwise_dilation2", (7, 7), 4, 4, 4, (3, 3), padding=(2, 2), dilation=(2, 2),
          input_zero_point=255, weight_zero_point=-3, expected_case="quantized_depthwise"),
    QConv("q2d_multiplier_batch2", (5, 5), 3, 6, 3, (3, 3), batch=2, expected_case="quantized_depthwise_multiplier"),
    QConv("q2d_grouped_dynamic_batch", (6, 6), 8, 8, 4, (3, 3), padding=(1, 1), batch=3, dynamic_batch=True,
          expected_case="quantized_grouped"),
    QConv("q1d_grouped_stride2", (9,), 6, 4, 2, (3,), stride=(2,), padding=(2,), expected_case="quantized_grouped"),
    QConv("q1d_conv_ui8_weight", (8,), 3, 5, 1, (2,), weight_storage="ui8", weight_zero_point=7,
          expected_case="quantized_conv", upstream_lowers=False),
    QConv("q3d_grouped", (4, 4, 4), 4, 6, 2, (2, 3, 2), padding=(1, 0, 1), expected_case="quantized_grouped",
          upstream_lowers=False),
    QConv("q3d_conv_stride", (3, 4, 4), 2, 3, 1, (2, 2, 2), stride=(1, 2, 1), bias=False,
          expected_case="quantized_conv"),
    QConv("q3d_depthwise", (4, 4, 3), 3, 3, 3, (3, 3, 1), padding=(1, 1, 0), input_zero_point=60,
          expected_case="quantized_depthwise", upstream_lowers=False),
]

# Checked on the accumulator only: onnxruntime has no QLinearConv kernel for
# an int8 input, and ONNX has no QLinearConvTranspose.
ACCUMULATOR_ONLY = [
    QConv("q2d_grouped_si8_input", (5, 5), 6, 6, 3, (3, 3), padding=(1, 1), input_storage="si8",
          input_zero_point=-5, weight_zero_point=4, expected_case="quantized_grouped"),
]
TRANSPOSED = [
    QConv("qt2d_grouped", (5, 5), 4, 4, 2, (3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1),
          transposed=True, input_zero_point=7, weight_zero_point=-2, expected_case="quantized_transposed_grouped"),
    QConv("qt1d_conv", (6,), 3, 2, 1, (4,), stride=(3,), padding=(1,), transposed=True,
          expected_case="quantized_transposed_conv"),
    QConv("qt3d_depthwise_si8_input", (3, 3, 3), 2, 2, 2, (2, 2, 2), stride=(2, 1, 2), transposed=True,
          input_storage="si8", input_zero_point=3, expected_case="quantized_transposed_depthwise"),
]

PER_CHANNEL = QConv("q2d_grouped_per_channel", (6, 6), 8, 8, 4, (3, 3), padding=(1, 1), per_channel=True,
                    bias=False, expected_case="grouped")
