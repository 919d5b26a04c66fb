"""ONNX QDQ interchange: export a QGraph, import pre-quantized models.

Export writes the standard QuantizeLinear/DequantizeLinear form (opset 21) that
onnxruntime runs: integer weights and int32 biases as initializers behind
DequantizeLinear, every activation passed through Q then DQ with its scale and zero
point, and float ops in between. A layer's narrower clamp (fused ReLU/Clip, or fewer
than 8/16 bits) becomes a Clip before the Quantize. onnxruntime rounds half to even
and multiplies by the real scale where the integer contract rounds half up after an
``M/2**n`` approximation, so each layer agrees with :func:`~hwflow.quant.reference.run_int`
within one code. Weights are written as the integer values the MAC multiplies by, whatever their
format (QDQ and QONNX have no power-of-two weight type: a pot weight is its integer
``±2**k``). A threshold layer (bipolar output, see :mod:`hwflow.quant.qgraph`) becomes
``GreaterOrEqual`` against its per-channel threshold, half a step below it so float
rounding of an accumulator exactly at the threshold cannot flip it, then ``Where``
choosing ``±scale``. Run it with graph optimizations disabled to get exactly these
semantics: onnxruntime's fused int8 kernels on x86 without VNNI may saturate u8·s8
pair sums at int16 (its documented ``reduce_range`` issue), which is not QDQ's meaning.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..ir.onnx_builder import OnnxBuilder
from .qgraph import QGraph, QLayer, QTensor

__all__ = ["export_qdq", "OPSET"]

OPSET = 21


def _container(bits: int) -> tuple[type, int]:
    return (np.int8, TensorProto.INT8) if bits <= 8 else (np.int16, TensorProto.INT16)


class _Builder(OnnxBuilder):
    def __init__(self, qg: QGraph):
        super().__init__()
        self.qg = qg
        self.pre: dict[str, str] = {}  # layer output -> ONNX name of its LUT input codes

    def node(self, op: str, ins: list[str], base: str, **attrs) -> str:
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, ins, [out], name=self.fresh(f"{op}_{base}"), **attrs))
        return out

    def qparams(self, t: QTensor) -> tuple[str, str]:
        dtype, _ = _container(t.bits)
        return (self.const(f"{t.name}_scale", np.float32(t.scale)),
                self.const(f"{t.name}_zero_point", np.array(t.zero_point, dtype=dtype)))

    def clip(self, x: str, t: QTensor, lo: int, hi: int, base: str) -> str:
        """Clip the float ``x`` to codes ``[lo, hi]`` of ``t`` when narrower than the container."""
        cdt, _ = _container(t.bits)
        info = np.iinfo(cdt)
        if lo <= info.min and hi >= info.max:
            return x
        rlo = np.float32((lo - t.zero_point) * t.scale)
        rhi = np.float32((hi - t.zero_point) * t.scale)
        return self.node("Clip", [x, self.const(f"{base}_min", rlo), self.const(f"{base}_max", rhi)], f"{base}_clip")

    def qdq(self, x: str, t: QTensor, lo: int, hi: int, base: str) -> str:
        """Clip, QuantizeLinear and DequantizeLinear ``x`` into tensor ``t``'s codes."""
        x = self.clip(x, t, lo, hi, base)
        s, z = self.qparams(t)
        q = self.node("QuantizeLinear", [x, s, z], f"{base}_q")
        return self.node("DequantizeLinear", [q, s, z], base)


def export_qdq(qg: QGraph, path=None, opset: int = OPSET, expose: bool = False) -> onnx.ModelProto:
    """Write ``qg`` as an ONNX QDQ model (float input and output, like the original).

    Parameters
    ----------
    qg : QGraph
    path : str or pathlib.Path, optional
        Where to save it (else only returned).
    expose : bool
        Also output every activation tensor (dequantized) as ``act::NAME`` and every
        LUT's input code space as ``pre::NAME`` (NAME as in ``qg``), so each layer can
        be checked on its own inputs.

    Returns
    -------
    onnx.ModelProto
    """
    b = _Builder(qg)
    tin = qg.tensors[qg.input]
    b.names.add("input")
    env = {qg.input: b.qdq("input", tin, *tin.range, qg.input)}
    for layer in qg.layers:
        env[layer.output] = _layer(b, layer, env)
    tout = qg.tensors[qg.output]
    out_name = env[qg.output]
    outputs = [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *tout.shape[1:]])]
    if expose:
        for t, onnx_name in env.items():
            if t == qg.output:
                continue
            alias = f"act::{t}"
            b.nodes.append(helper.make_node("Identity", [onnx_name], [alias], name=b.fresh(f"expose_{t}")))
            outputs.append(helper.make_tensor_value_info(alias, TensorProto.FLOAT, ["N", *qg.tensors[t].shape[1:]]))
        for t, onnx_name in b.pre.items():
            alias = f"pre::{t}"
            b.nodes.append(helper.make_node("Identity", [onnx_name], [alias], name=b.fresh(f"expose_pre_{t}")))
            outputs.append(helper.make_tensor_value_info(alias, TensorProto.FLOAT, ["N", *qg.tensors[t].shape[1:]]))
        model_out = f"act::{qg.output}"
        b.nodes.append(helper.make_node("Identity", [out_name], [model_out], name=b.fresh("expose_out")))
        outputs.append(helper.make_tensor_value_info(model_out, TensorProto.FLOAT, ["N", *tout.shape[1:]]))
    graph = helper.make_graph(
        b.nodes, qg.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *tin.shape[1:]])],
        outputs,
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hwflow")
    model.ir_version = 10
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model


def _weight_dq(b: _Builder, layer: QLayer, w_scale: np.ndarray) -> str:
    dtype, _ = _container(layer.mul_wbits)
    w = b.const(f"{layer.name}_w_q", layer.weight.astype(dtype))
    per = w_scale.size > 1
    s = b.const(f"{layer.name}_w_scale", w_scale.astype(np.float32) if per else np.float32(w_scale[0]))
    z = b.const(f"{layer.name}_w_zero_point", np.zeros(w_scale.size, dtype) if per else np.array(0, dtype))
    return b.node("DequantizeLinear", [w, s, z], f"{layer.name}_w", **({"axis": 0} if per else {}))


def _layer(b: _Builder, layer: QLayer, env: dict[str, str]) -> str:
    qg = b.qg
    ins = [qg.tensors[t] for t in layer.inputs]
    out = qg.tensors[layer.output]
    x = [env[t] for t in layer.inputs]
    base = layer.output
    geo = {"kernel_shape": list(layer.kernel), "strides": list(layer.strides), "pads": list(layer.pads)}
    if layer.op == "maxpool":
        y = b.node("MaxPool", x, f"{base}_f", **geo)
        return b.qdq(y, out, *out.range, base)
    if layer.op == "concat":
        y = b.node("Concat", x, f"{base}_f", axis=1)
        return b.qdq(y, out, *out.range, base)
    if layer.op in ("conv", "gemm"):
        w_scale = np.atleast_1d(np.asarray(_attr(layer, "w_scale"), dtype=np.float64))
        w = _weight_dq(b, layer, w_scale)
        s_acc = ins[0].scale * np.broadcast_to(w_scale, (layer.out_channels,))
        # undo the zero-point fold: the float op sees (q - z) already
        bias = layer.bias + ins[0].zero_point * layer.weight.reshape(layer.out_channels, -1).sum(axis=1)
        bq = b.const(f"{layer.name}_b_q", bias.astype(np.int32))
        bs = b.const(f"{layer.name}_b_scale", s_acc.astype(np.float32))
        bz = b.const(f"{layer.name}_b_zero_point", np.zeros(layer.out_channels, np.int32))
        bias_f = b.node("DequantizeLinear", [bq, bs, bz], f"{layer.name}_b", axis=0)
        if layer.op == "conv":
            y = b.node("Conv", [x[0], w, bias_f], f"{base}_f", group=layer.groups, **geo)
        else:
            flat = b.node("Flatten", [x[0]], f"{base}_flat", axis=1) if len(ins[0].shape) != 2 else x[0]
            y = b.node("Gemm", [flat, w, bias_f], f"{base}_f", transB=1)
    elif layer.op == "avgpool":
        y = b.node("AveragePool", x, f"{base}_f", count_include_pad=1, **geo)
    elif layer.op == "add":
        y = b.node("Add", x, f"{base}_f")
    else:  # lut
        y = x[0]
    if layer.is_threshold:
        return b.qdq(_threshold(b, layer, ins, out, y), out, *out.range, base)
    # the real code space the requantizer writes (the LUT's input space if any)
    space = out if layer.lut is None else _lut_space(layer, out)
    if layer.op == "lut":
        y_space = y  # the LUT reads the input code directly (m=1, n=0, z=0)
    else:
        y_space = b.qdq(y, space, layer.lo, layer.hi, f"{base}_pre" if layer.lut is not None else base)
    if layer.lut is None:
        return y_space
    if layer.op != "lut":
        b.pre[layer.output] = y_space
    act = layer.attrs.get("activation", "")
    if act not in ("Tanh", "Sigmoid", "LeakyRelu", "Relu", "Sign"):
        raise ValueError(f"layer {layer.name!r}: cannot export a LUT of activation {act!r}")
    extra = {"alpha": float(layer.attrs.get("alpha", 0.01))} if act == "LeakyRelu" else {}
    y = b.node(act, [y_space], f"{base}_act", **extra)
    return b.qdq(y, out, *out.range, base)


def _threshold(b: _Builder, layer: QLayer, ins: list[QTensor], out: QTensor, y: str) -> str:
    """``±scale`` of the bipolar ``out`` from the float ``y`` of a threshold layer: ``+1``
    iff its accumulator reaches ``hi - lut_zero_point``.

    The accumulator is ``y / unit + offset``: ``unit`` is the real value of one step
    (per channel for Conv/Gemm), ``offset`` the input zero point of a standalone LUT.
    """
    t = layer.hi - layer.lut_zero_point
    offset = 0
    if layer.op in ("conv", "gemm"):
        unit = ins[0].scale * np.broadcast_to(np.asarray(_attr(layer, "w_scale"), np.float64), (layer.out_channels,))
        unit = unit.reshape((1, -1) + (1,) * (len(ins[0].shape) - 2 if layer.op == "conv" else 0))
    elif layer.op == "avgpool":
        unit = ins[0].scale / (layer.kernel[0] * layer.kernel[1])
    elif layer.op == "add":
        unit = ins[0].scale / layer.add_m[0]
    else:
        unit, offset = ins[0].scale, ins[0].zero_point
    thr = b.const(f"{layer.name}_threshold", np.asarray((t - offset - 0.5) * unit, np.float32))
    cond = b.node("GreaterOrEqual", [y, thr], f"{layer.output}_ge")
    plus, minus = (b.const(f"{layer.name}_{k}", np.float32(v * out.scale)) for k, v in (("plus", 1), ("minus", -1)))
    return b.node("Where", [cond, plus, minus], f"{layer.output}_sign")


def _attr(layer: QLayer, key: str):
    if key not in layer.attrs:
        raise ValueError(f"layer {layer.name!r} lacks attrs[{key!r}] (set by hwflow.quant.quantize); cannot export QDQ")
    return layer.attrs[key]


def _lut_space(layer: QLayer, out: QTensor) -> QTensor:
    return QTensor(f"{layer.output}_pre", out.shape, out.bits, float(_attr(layer, "lut_scale")), layer.lut_zero_point)
