"""Quantized convolutions for the tests: configurations, the two ways to
get them into torch-backend IR, and exact references.

- `QConv`: one per-tensor quantized convolution (8-bit input and weight,
  zero points, optional i32 bias), forward or transposed, any spatial rank.
- `accumulator_ir(conv)`: hand-written torch-backend IR in the form
  torch-mlir's ONNX import produces (`aten._make_per_tensor_quantized_tensor`
  on ui8/si8 tensors -> `aten.convolution` -> `!torch.qint32`), returning the
  i32 accumulator (`aten.int_repr`). Its exact reference is
  `reference_accumulator`: PyTorch's float64 convolution of (q - zero point),
  exact for these sizes.
- `qlinearconv_model(conv)`: an ONNX model QuantizeLinear -> QLinearConv ->
  DequantizeLinear (float in, float out) for the comparison with torch-mlir's
  own lowering and with onnxruntime.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch_mlir import ir
from torch_mlir.dialects import torch as torch_d

from tests.support.onnx_import import import_onnx
from torch_grouped_conv.api import apply_strategy, lower_to_linalg
from torch_grouped_conv.report import RewriteReport

STORAGE_NUMPY = {"ui8": np.uint8, "si8": np.int8}
QUANTIZED_TYPE = {"ui8": "!torch.quint8", "si8": "!torch.qint8"}
ONNX_TYPE = {"ui8": TensorProto.UINT8, "si8": TensorProto.INT8}


@dataclass(frozen=True)
class QConv:
    """Layout: input [N, C, *spatial], weight [F, C/G, *k] ([C, F/G, *k] transposed)."""

    name: str
    spatial: tuple[int, ...]
    c_in: int
    c_out: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...] | None = None  # None: all 1
    padding: tuple[int, ...] | None = None  # None: all 0
    dilation: tuple[int, ...] | None = None
    output_padding: tuple[int, ...] | None = None
    transposed: bool = False
    batch: int = 1
    input_storage: str = "ui8"
    input_zero_point: int = 131
    weight_storage: str = "si8"
    weight_zero_point: int = 0
    bias: bool = True
    per_channel: bool = False  # QLinearConv only: per-output-channel weight scales
    # Whether torch-mlir 20261001's own lowering handles the QLinearConv model
    # (it fails to legalize some quantized 1D/3D convolutions).
    upstream_lowers: bool = True
    dynamic_batch: bool = False  # the batch dim is dynamic ("?" in the IR, "N" in the ONNX model)
    expected_case: str = field(default="", compare=False)

    @property
    def rank(self) -> int:
        return len(self.spatial)

    def window(self, name: str, default: int) -> tuple[int, ...]:
        value = getattr(self, name)
        return value if value is not None else (default,) * self.rank

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.spatial)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.c_in, self.c_out // self.groups, *self.kernel)
        return (self.c_out, self.c_in // self.groups, *self.kernel)

    @property
    def output_shape(self) -> tuple[int, ...]:
        sizes = []
        for i, (h, k) in enumerate(zip(self.spatial, self.kernel, strict=False)):
            s, p, d = self.window("stride", 1)[i], self.window("padding", 0)[i], self.window("dilation", 1)[i]
            if self.transposed:
                sizes.append((h - 1) * s - 2 * p + d * (k - 1) + self.window("output_padding", 0)[i] + 1)
            else:
                sizes.append((h + 2 * p - d * (k - 1) - 1) // s + 1)
        return (self.batch, self.c_out, *sizes)


def integer_data(conv: QConv, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random input and weight in their storage types and an i32 bias."""
    rng = np.random.default_rng(seed)

    def draw(storage: str, shape: tuple[int, ...]) -> np.ndarray:
        info = np.iinfo(STORAGE_NUMPY[storage])
        return rng.integers(info.min, info.max + 1, shape).astype(STORAGE_NUMPY[storage])

    x = draw(conv.input_storage, conv.input_shape)
    w = draw(conv.weight_storage, conv.weight_shape)
    b = rng.integers(-5000, 5000, (conv.c_out,)).astype(np.int32)
    return x, w, b


def reference_accumulator(conv: QConv, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """bias + sum (x - zp_x) * (w - zp_w), by PyTorch's float64 convolution
    (exact: every partial sum is an integer far below 2**53)."""
    xf = torch.tensor(x.astype(np.float64) - conv.input_zero_point)
    wf = torch.tensor(w.astype(np.float64) - conv.weight_zero_point)
    bf = torch.tensor(b.astype(np.float64)) if b is not None else None
    stride, padding, dilation = conv.window("stride", 1), conv.window("padding", 0), conv.window("dilation", 1)
    if conv.transposed:
        fn = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
              3: torch.nn.functional.conv_transpose3d}[conv.rank]
        out = fn(xf, wf, bf, stride, padding, conv.window("output_padding", 0), conv.groups, dilation)
    else:
        fn = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}[conv.rank]
        out = fn(xf, wf, bf, stride, padding, dilation, conv.groups)
    result = out.numpy()
    assert np.array_equal(result, np.round(result)) and np.abs(result).max() < 2**31
    return result.astype(np.int32)


# --- hand-written torch-backend IR -------------------------------------------------


def vtensor(shape: tuple[int | None, ...], dtype: str) -> str:
    return f"!torch.vtensor<[{','.join('?' if d is None else str(d) for d in shape)}],{dtype}>"


def accumulator_ir(conv: QConv, weight_maker: str = "per_tensor") -> str:
    """`@main(x, w[, b]) -> i32 accumulator` with `conv` on per-tensor quantized operands.

    `weight_maker="per_channel"` makes the weight with
    `aten._make_per_channel_quantized_tensor` instead (for the refusal test).
    """
    batch = None if conv.dynamic_batch else conv.batch
    x_shape, y_shape = (batch, *conv.input_shape[1:]), (batch, *conv.output_shape[1:])
    x_t, w_t = vtensor(x_shape, conv.input_storage), vtensor(conv.weight_shape, conv.weight_storage)
    qx_t = vtensor(x_shape, QUANTIZED_TYPE[conv.input_storage])
    qw_t = vtensor(conv.weight_shape, QUANTIZED_TYPE[conv.weight_storage])
    acc_t, out_t = vtensor(y_shape, "!torch.qint32"), vtensor(y_shape, "si32")
    b_t = vtensor((conv.c_out,), "si32")
    args = [f"%x: {x_t}", f"%w: {w_t}"] + ([f"%b: {b_t}"] if conv.bias else [])
    lines = [
        "%scale = torch.constant.float 5.000000e-01",
        f"%xzp = torch.constant.int {conv.input_zero_point}",
        f"%wzp = torch.constant.int {conv.weight_zero_point}",
        f"%transposed = torch.constant.bool {str(conv.transposed).lower()}",
        f"%groups = torch.constant.int {conv.groups}",
        "%none = torch.constant.none",
        f"%xq = torch.aten._make_per_tensor_quantized_tensor %x, %scale, %xzp : {x_t}, !torch.float, !torch.int -> {qx_t}",
    ]
    if weight_maker == "per_channel":
        f_axis = conv.weight_shape[0]
        lines += [
            f"%wscales = torch.vtensor.literal(dense<5.000000e-01> : tensor<{f_axis}xf64>) : !torch.vtensor<[{f_axis}],f64>",
            f"%wzps = torch.vtensor.literal(dense<0> : tensor<{f_axis}xsi64>) : !torch.vtensor<[{f_axis}],si64>",
            "%axis = torch.constant.int 0",
            f"%wq = torch.aten._make_per_channel_quantized_tensor %w, %wscales, %wzps, %axis : {w_t}, "
            f"!torch.vtensor<[{f_axis}],f64>, !torch.vtensor<[{f_axis}],si64>, !torch.int -> {qw_t}",
        ]
    else:
        lines.append(f"%wq = torch.aten._make_per_tensor_quantized_tensor %w, %scale, %wzp : {w_t}, !torch.float, "
                     f"!torch.int -> {qw_t}")
    lists = []
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("output_padding", 0)):
        items = []
        for i, v in enumerate(conv.window(name, default)):
            lines.append(f"%{name}{i} = torch.constant.int {v}")
            items.append(f"%{name}{i}")
        types = ", ".join(["!torch.int"] * len(items))
        lines.append(f"%{name} = torch.prim.ListConstruct {', '.join(items)} : ({types}) -> !torch.list<int>")
        lists.append(f"%{name}")
    bias, bias_t = ("%b", b_t) if conv.bias else ("%none", "!torch.none")
    lines += [
        f"%acc = torch.aten.convolution %xq, %wq, {bias}, {lists[0]}, {lists[1]}, {lists[2]}, %transposed, "
        f"{lists[3]}, %groups : {qx_t}, {qw_t}, {bias_t}, !torch.list<int>, !torch.list<int>, !torch.list<int>, "
        f"!torch.bool, !torch.list<int>, !torch.int -> {acc_t}",
        f"%out = torch.aten.int_repr %acc : {acc_t} -> {out_t}",
        f"return %out : {out_t}",
    ]
    body = "\n    ".join(lines)
    return f"func.func @main({', '.join(args)}) -> {out_t} {{\n    {body}\n}}"


def parse(text: str) -> ir.Module:
    context = ir.Context()
    torch_d.register_dialect(context)
    return ir.Module.parse(text, context)


def runner_args(conv: QConv, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Arguments for the runners, in the model's own dtypes (ui8 data as
    uint8: the runners refuse its int8 bits, see runners/signature.py)."""
    return [x, w] + ([b] if conv.bias else [])


# --- ONNX QLinearConv models --------------------------------------------------------


@dataclass(frozen=True)
class QLinearModel:
    model: onnx.ModelProto
    input: np.ndarray  # float32, the model's one input
    y_scale: float  # one quantization step of the output


def qlinearconv_model(conv: QConv, seed: int = 0) -> QLinearModel:
    """QuantizeLinear -> QLinearConv(`conv`) -> DequantizeLinear, with output
    scale and zero point fitted to the output range on this model's input."""
    assert not conv.transposed, "ONNX has no QLinearConvTranspose"
    rng = np.random.default_rng(seed)
    x_float = rng.standard_normal(conv.input_shape).astype(np.float32)
    _, w, b = integer_data(conv, seed)
    x_scale = float(np.ptp(x_float) / 255)
    x_zp = conv.input_zero_point
    x_info = np.iinfo(STORAGE_NUMPY[conv.input_storage])
    x_q = np.clip(np.round(x_float / x_scale) + x_zp, x_info.min, x_info.max).astype(x_info.dtype)
    f_out = conv.c_out
    w_scales = (0.01 * (1 + np.arange(f_out) / f_out)).astype(np.float32) if conv.per_channel else np.float32(0.01)
    bias = b if conv.bias else None
    acc = reference_accumulator(conv, x_q, w, bias).astype(np.float64)
    real = acc * x_scale * (w_scales.reshape(1, -1, *[1] * conv.rank) if conv.per_channel else w_scales)
    y_scale = float((real.max() - real.min()) / 255)
    y_zp = int(np.clip(np.round(-real.min() / y_scale), 0, 255))
    w_zp = np.full((f_out,), conv.weight_zero_point) if conv.per_channel else np.array(conv.weight_zero_point)

    def init(name: str, array: np.ndarray, dtype: int) -> onnx.TensorProto:
        return helper.make_tensor(name, dtype, array.shape, np.asarray(array).flatten().tolist())

    inits = [
        init("x_scale", np.array(x_scale, np.float32), TensorProto.FLOAT),
        init("x_zp", np.array(x_zp), ONNX_TYPE[conv.input_storage]),
        init("w", w, ONNX_TYPE[conv.weight_storage]),
        init("w_scale", np.asarray(w_scales, np.float32), TensorProto.FLOAT),
        init("w_zp", w_zp, ONNX_TYPE[conv.weight_storage]),
        init("y_scale", np.array(y_scale, np.float32), TensorProto.FLOAT),
        init("y_zp", np.array(y_zp), TensorProto.UINT8),
    ] + ([init("b", b, TensorProto.INT32)] if conv.bias else [])
    padding = conv.window("padding", 0)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
        helper.make_node(
            "QLinearConv", ["x_q", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"]
            + (["b"] if conv.bias else []), ["y_q"],
            group=conv.groups, kernel_shape=list(conv.kernel), strides=list(conv.window("stride", 1)),
            dilations=list(conv.window("dilation", 1)), pads=list(padding) * 2,
        ),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["y"]),
    ]
    batch: list[int | str] = ["N"] if conv.dynamic_batch else [conv.batch]
    graph = helper.make_graph(
        nodes, conv.name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, batch + list(conv.input_shape[1:]))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, batch + list(conv.output_shape[1:]))], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return QLinearModel(model, x_float, y_scale)


def onnxruntime_output(model: QLinearModel) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": model.input})[0]


# --- compiling ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lowered:
    module: ir.Module  # linalg-on-tensors; read-only (the runners copy it)
    report: RewriteReport


def lower(module: ir.Module, grouped_conv: str | None) -> Lowered:
    """The plugin (`grouped_conv`, None for torch-mlir's own lowering), then
    torch-mlir's linalg pipeline, in place."""
    report = apply_strategy(module, grouped_conv)
    lower_to_linalg(module)
    return Lowered(module, report)


@functools.cache
def lowered_accumulator(conv: QConv, grouped_conv: str | None = "grouped") -> Lowered:
    return lower(parse(accumulator_ir(conv)), grouped_conv)


@functools.cache
def lowered_qlinearconv(conv: QConv, grouped_conv: str | None = "grouped") -> Lowered:
    return lower(import_onnx(qlinearconv_model(conv).model), grouped_conv)
