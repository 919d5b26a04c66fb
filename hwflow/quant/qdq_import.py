"""Import pre-quantized ONNX models: onnxruntime QDQ and QONNX ``Quant`` (Brevitas).

The quantization nodes are taken out and their parameters kept: what remains is an
ordinary float model (weights replaced by their dequantized values) plus, in
``graph.meta["fixed_qparams"]``, every activation's scale, zero point and width and
every weight's scale and width. :func:`~hwflow.quant.quantize` then uses those instead
of calibrating (tensors the model left unquantized are calibrated as usual).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UnsupportedOpError
from ..ir.ops import OPS

__all__ = ["is_quantized", "strip_quantization", "follow_fusion"]

# ONNX element type -> (bits, signed)
_ELEM_BITS = {
    onnx.TensorProto.INT8: (8, True), onnx.TensorProto.UINT8: (8, False),
    onnx.TensorProto.INT16: (16, True), onnx.TensorProto.UINT16: (16, False),
    onnx.TensorProto.INT4: (4, True), onnx.TensorProto.UINT4: (4, False),
}


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether the model has QuantizeLinear/DequantizeLinear nodes (a QDQ model)."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _signed_codes(bits: int, signed: bool, zero_point: int) -> tuple[int, int]:
    """``(bits, zero_point)`` in hwflow's signed codes: unsigned ``u`` becomes ``u - 2**(bits-1)``."""
    return bits, int(zero_point) if signed else int(zero_point) - (1 << (bits - 1))


def strip_quantization(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """Remove Q/DQ nodes; return the float model and the parameters.

    Returns
    -------
    (onnx.ModelProto, dict)
        ``{"tensors": {name: (scale, zero_point, bits)}, "weights": {name: {"scale": array,
        "bits": int, "value": array}}}``; tensor names are the float model's.

    Raises
    ------
    UnsupportedOpError
        Asymmetric weights, per-channel activation scales or an unsupported width.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consts = dict(inits)
    for n in g.node:  # Constant nodes may carry scales
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    producers = {o: n for n in g.node for o in n.output}
    tensors: dict[str, tuple[float, int, int]] = {}
    weights: dict[str, dict] = {}
    rename: dict[str, str] = {}
    new_inits: dict[str, np.ndarray] = {}
    drop: list[onnx.NodeProto] = []

    def attr(node, name, default):
        for a in node.attribute:
            if a.name == name:
                return onnx.helper.get_attribute_value(a)
        return default

    def elem_type(name: str) -> int:
        for i in g.initializer:
            if i.name == name:
                return i.data_type
        raise UnsupportedOpError(f"zero point {name!r} must be a constant initializer")

    for node in g.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            q = inits[node.input[0]].astype(np.int64)
            s = np.asarray(consts[node.input[1]], np.float64)
            zname = node.input[2] if len(node.input) > 2 and node.input[2] else None
            z = np.asarray(consts[zname], np.int64) if zname else np.zeros_like(s, dtype=np.int64)
            axis = int(attr(node, "axis", 1))
            shape = [1] * q.ndim
            if s.size > 1:
                shape[axis] = -1
            value = (q - z.reshape(shape)) * s.reshape(shape)
            new_inits[node.output[0]] = value.astype(np.float32)
            drop.append(node)
            if q.ndim >= 2:  # a weight (bias and scalars are requantized by hwflow)
                bits, signed = _ELEM_BITS.get(elem_type(node.input[0]), (None, None))
                if bits is None:
                    raise UnsupportedOpError(f"weight {node.input[0]!r}: element type is not int4/8/16")
                zc = z - (0 if signed else (1 << (bits - 1)))
                if np.any(zc != 0):
                    raise UnsupportedOpError(f"weight {node.input[0]!r} has zero point(s) {np.unique(z)!r}; hwflow needs symmetric weights")
                weights[node.output[0]] = {"scale": s.ravel(), "bits": bits, "value": value, "axis": axis}
        elif node.op_type == "QuantizeLinear":
            users = [n for n in g.node if node.output[0] in n.input]
            if not users or any(u.op_type != "DequantizeLinear" for u in users):
                raise UnsupportedOpError(f"QuantizeLinear {node.name!r} must feed DequantizeLinear nodes only")
            s = np.asarray(consts[node.input[1]], np.float64)
            if s.size != 1:
                raise UnsupportedOpError(f"QuantizeLinear {node.name!r}: per-channel activation scales are not supported")
            zname = node.input[2] if len(node.input) > 2 and node.input[2] else None
            z = int(np.asarray(consts[zname]).ravel()[0]) if zname else 0
            bits, signed = _ELEM_BITS.get(elem_type(zname), (None, None)) if zname else (8, False)
            if bits is None:
                raise UnsupportedOpError(f"QuantizeLinear {node.name!r}: element type is not int4/8/16")
            b, zp = _signed_codes(bits, signed, z)
            tensors[node.input[0]] = (float(s.ravel()[0]), zp, b)
            for u in users:
                rename[u.output[0]] = node.input[0]
                drop.append(u)
            drop.append(node)
    for node in drop:
        g.node.remove(node)
    for name, value in new_inits.items():
        g.initializer.append(numpy_helper.from_array(value, name))

    def canon(t: str) -> str:
        while t in rename:
            t = rename[t]
        return t

    for node in g.node:
        for i, t in enumerate(node.input):
            node.input[i] = canon(t)
    for out in g.output:
        if out.name in rename:
            out.name = canon(out.name)
    used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.value_info[:]  # stale after the rewrite; the importer infers shapes again
    return model, {"tensors": tensors, "weights": weights}


def follow_fusion(graph, params: dict) -> dict:
    """Re-key activation parameters for the optimizer's activation fusion.

    When ``FuseActivation`` folds ``act(layer(x))`` into the layer, the layer keeps
    its own output name and the activation's output name disappears; the parameters
    quantized *after* the activation are the ones that now describe the layer's
    output. For Tanh/Sigmoid/LeakyRelu (LUTs), the layer's own parameters, if any,
    become those of the LUT's input code space (``NAME::pre``).
    """
    tensors = dict(params["tensors"])
    for node in graph.nodes:
        spec = OPS.get(node.op)
        if spec is None or spec.activation is None:
            continue
        src, out = node.inputs[0], node.outputs[0]
        prod = graph.producer(src)
        if prod is None or prod.op not in ("Conv", "Gemm", "MatMul", "Add") or len(graph.consumers(src)) != 1:
            continue
        if spec.activation == "table" and src in tensors:
            tensors[f"{src}::pre"] = tensors[src]
        if out in tensors:
            tensors[src] = tensors[out]
    return {**params, "tensors": tensors}
