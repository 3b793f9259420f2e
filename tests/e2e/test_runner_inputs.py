"""The runners' inputs and results, on both runners (runners/signature.py):

- every input is checked before the call: a wrong dtype, rank, static dim or
  count of inputs is one InputError naming the input and what to do (before
  the check, refbackend read a float64 or float16 buffer as float32, past
  its end for the narrower one);
- results keep the model's dtypes: an ONNX QLinearConv with a uint8 output
  comes back as uint8 and equals onnxruntime's (as int8, every value >= 128
  would be off by 256); uint8 and bool inputs and outputs round-trip;
- what is not a linalg-on-tensors module (torch IR, a string) and an
  unknown backend are InputErrors too.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import torch_grouped_conv as tgc
from tests.support.cases_quantized import FORWARD
from tests.support.quantized import qlinearconv_model
from torch_grouped_conv import BACKENDS, InputError
from torch_grouped_conv.api import lower_to_linalg
from torch_grouped_conv.runners.signature import INPUTS_ATTR, RESULTS_ATTR, entry_function


def grouped_conv() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Conv2d(16, 32, 3, groups=4).eval(), torch.randn(1, 16, 8, 8)


@pytest.fixture(scope="module")
def conv_module():
    model, x = grouped_conv()
    return tgc.compile(model, x), model, x


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, conv_module):
    module, model, x = conv_module
    return tgc.load(module, backend=request.param), model, x


BAD_INPUTS = {
    "float64": (lambda x: [x.double()], "input 0: dtype float64, the module was compiled for float32; cast it"),
    "float16": (lambda x: [x.half()], "input 0: dtype float16, the module was compiled for float32"),
    "bfloat16": (lambda x: [x.bfloat16()], "input 0: dtype bfloat16, the module was compiled for float32"),
    "int64": (lambda x: [x.long()], "input 0: dtype int64"),
    "rank": (lambda x: [x[0]], "input 0: rank 3 (shape [16, 8, 8]), the module was compiled for rank 4 (1x16x8x8)"),
    "static_dim": (lambda x: [torch.randn(1, 16, 9, 8)], "input 0: shape [1, 16, 9, 8], the module was compiled "
                                                         "for 1x16x8x8 (dim 2 must be 8)"),
    "batch": (lambda x: [torch.randn(2, 16, 8, 8)], "(dim 0 must be 1)"),
    "too_many": (lambda x: [x, x], "2 inputs given, the module takes 1 (1x16x8x8 float32)"),
    "none": (lambda x: [], "0 inputs given, the module takes 1"),
    "a_list": (lambda x: [x.tolist()], "input 0: dtype float64"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_a_wrong_input_is_one_input_error(loaded, case: str) -> None:
    program, model, x = loaded
    make, message = BAD_INPUTS[case]
    with pytest.raises(InputError) as raised:
        program(*make(x))
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    # The module still answers right after a refused call.
    [y] = program(x)
    np.testing.assert_allclose(y, model(x).detach().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_ir_is_an_input_error(backend: str) -> None:
    model, x = grouped_conv()
    torch_ir = tgc.compile(model, x, output_type="torch")
    with pytest.raises(InputError, match=r"this module is torch IR, not linalg-on-tensors; compile with "
                                         r"output_type='linalg-on-tensors', or lower it with "
                                         r"torch_grouped_conv.api.lower_to_linalg\(module\)"):
        tgc.run(torch_ir, x, backend=backend)
    # ... and what it says to do works.
    lower_to_linalg(torch_ir)
    [y] = tgc.run(torch_ir, x, backend=backend)
    np.testing.assert_allclose(y, model(x).detach().numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("thing", [42, {"main": None}])
def test_not_a_module_is_an_input_error(thing: object, backend: str) -> None:
    with pytest.raises(InputError, match=r"expected an MLIR module \(torch_mlir.ir.Module\).*got "):
        tgc.run(thing, torch.zeros(1), backend=backend)


@pytest.mark.parametrize("backend", [*BACKENDS, None])
def test_a_string_that_names_no_file_is_an_input_error(backend: str | None) -> None:
    with pytest.raises(InputError, match="'str' does not exist; load/run take a linalg-on-tensors module"):
        tgc.run("str", torch.zeros(1), backend=backend)


def test_an_unknown_backend_is_an_input_error(conv_module) -> None:
    with pytest.raises(InputError, match="unknown backend 'nonsense'; choose one of refbackend, iree"):
        tgc.load(conv_module[0], backend="nonsense")


# --- dtypes kept ------------------------------------------------------------------


def uint8_qlinearconv() -> tuple[onnx.ModelProto, np.ndarray]:
    """QLinearConv alone: uint8 in, uint8 out (`qlinearconv_model` without its
    Quantize/DequantizeLinear), and a uint8 input."""
    conv = FORWARD[0]
    model = onnx.ModelProto()
    model.CopyFrom(qlinearconv_model(conv).model)
    graph = model.graph
    [qlinear] = [n for n in graph.node if n.op_type == "QLinearConv"]
    del graph.node[:]
    graph.node.append(qlinear)
    graph.input[0].CopyFrom(helper.make_tensor_value_info("x_q", TensorProto.UINT8, list(conv.input_shape)))
    graph.output[0].CopyFrom(helper.make_tensor_value_info("y_q", TensorProto.UINT8, list(conv.output_shape)))
    onnx.checker.check_model(model)
    x = np.random.default_rng(1).integers(0, 256, conv.input_shape).astype(np.uint8)
    return model, x


@pytest.fixture(scope="module")
def qlinearconv_uint8():
    model, x = uint8_qlinearconv()
    return tgc.compile_onnx(model), model, x


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_uint8_qlinearconv_output_stays_uint8_and_matches_onnxruntime(qlinearconv_uint8, backend: str) -> None:
    import onnxruntime

    module, model, x = qlinearconv_uint8
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    [expected] = session.run(None, {"x_q": x})
    assert expected.dtype == np.uint8 and (expected >= 128).sum() > expected.size // 4  # read as int8, off by 256
    [got] = tgc.run(module, x, backend=backend)
    assert got.dtype == np.uint8
    # Within one quantization step of onnxruntime (as tests/e2e/test_quantized.py).
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1
    with pytest.raises(InputError, match="input 0: dtype int8, the module was compiled for uint8"):
        tgc.run(module, x.view(np.int8), backend=backend)


def test_the_model_dtypes_are_recorded_on_main(qlinearconv_uint8) -> None:
    main = entry_function(qlinearconv_uint8[0])
    assert str(main.attributes[INPUTS_ATTR]) == '["uint8"]'
    assert str(main.attributes[RESULTS_ATTR]) == '["uint8"]'
    assert "tensor<1x8x6x6xi8>" in str(main.attributes["function_type"])  # signless in linalg


class MaskedConv(torch.nn.Module):
    """float, uint8 and bool in; float, uint8 and bool out."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, groups=2, padding=1)

    def forward(self, x: torch.Tensor, level: torch.Tensor, mask: torch.Tensor):
        y = self.conv(x)
        return y, level + 100, (y > 0) & mask


@pytest.mark.parametrize("backend", BACKENDS)
def test_uint8_and_bool_round_trip(backend: str) -> None:
    torch.manual_seed(0)
    model = MaskedConv().eval()
    x = torch.randn(1, 4, 5, 5)
    level = torch.randint(0, 256, (1, 4, 5, 5), dtype=torch.uint8)
    mask = torch.rand(1, 4, 5, 5) > 0.5
    module = tgc.compile(model, x, level, mask)
    y, lifted, masked = tgc.run(module, x, level, mask, backend=backend)
    want_y, want_lifted, want_masked = (t.detach().numpy() for t in model(x, level, mask))
    assert (y.dtype, lifted.dtype, masked.dtype) == (np.float32, np.uint8, np.bool_)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-4)
    assert np.array_equal(lifted, want_lifted) and (want_lifted < level.numpy()).any()  # wrapped around 255
    assert np.array_equal(masked, want_masked) and masked.any() and not masked.all()
    with pytest.raises(InputError, match="input 2: dtype uint8, the module was compiled for bool"):
        tgc.run(module, x, level, mask.to(torch.uint8), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_linalg_module_without_recorded_dtypes_takes_its_builtin_types(backend: str) -> None:
    """Linalg from elsewhere (no attributes from `lower_to_linalg`): i8 is int8, i1 is bool."""
    from torch_mlir import ir

    module = ir.Module.parse("""
    func.func @main(%a: tensor<2x3xi8>, %m: tensor<2x3xi1>) -> (tensor<2x3xi8>, tensor<2x3xi1>) {
      return %a, %m : tensor<2x3xi8>, tensor<2x3xi1>
    }""", ir.Context())
    a = np.array([[-128, -1, 0], [1, 2, 127]], np.int8)
    m = np.array([[True, False, True], [False, False, True]])
    got_a, got_m = tgc.run(module, a, m, backend=backend)
    assert got_a.dtype == np.int8 and np.array_equal(got_a, a)
    assert got_m.dtype == np.bool_ and np.array_equal(got_m, m)
    with pytest.raises(InputError, match="input 0: dtype uint8, the module was compiled for int8"):
        tgc.run(module, a.view(np.uint8), m, backend=backend)
