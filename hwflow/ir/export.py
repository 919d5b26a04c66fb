"""Export a :class:`~hwflow.ir.graph.Graph` back to ONNX (opset 17).

Used to check passes against onnxruntime and to hand an optimized float model to
other tools. hwflow-only annotations are spelled out as plain ONNX: a fused
activation becomes a node after its layer, normalised attributes (Clip bounds,
Squeeze axes, Pad's pads and value) become inputs again, and ``host``/``coerce_2d`` marks are dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_builder import OnnxBuilder
from .graph import Graph, Node
from .ops import OPS

__all__ = ["to_onnx", "EXPORT_OPSET"]

EXPORT_OPSET = 17

# hwflow annotations, not ONNX attributes (bn_stats: a folded BatchNorm's statistics,
# kept for the quantizer's data-free calibration).
_HWFLOW_ATTRS = ("activation", "host", "coerce_2d", "bn_stats")


def _plain(v: Any) -> Any:
    if isinstance(v, np.dtype):
        return helper.np_dtype_to_tensor_dtype(v)
    if isinstance(v, np.ndarray):
        return numpy_helper.from_array(v)
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


class _Exporter(OnnxBuilder):
    def __init__(self, graph: Graph):
        super().__init__(graph.tensors)
        self.graph = graph

    def emit(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> None:
        attrs = {k: _plain(v) for k, v in attrs.items() if v is not None}
        domain = OPS[op].domain if op in OPS else ""
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))

    def node(self, n: Node) -> None:
        attrs = {k: v for k, v in n.attrs.items() if k not in _HWFLOW_ATTRS}
        inputs, outputs = list(n.inputs), list(n.outputs)
        act = n.attrs.get("activation")
        if act:
            pre = self.fresh(f"{outputs[0]}__preact")
            final, outputs = outputs[0], [pre] + outputs[1:]
        if n.op == "Clip":
            lo, hi = attrs.pop("min", None), attrs.pop("max", None)
            inputs = inputs[:1] + [self._bound(n, "min", lo), self._bound(n, "max", hi)]
        if n.op == "Dropout":
            attrs.pop("ratio", None)  # an input since opset 12; inference ignores it anyway
        if n.op in ("Squeeze", "Unsqueeze") and "axes" in attrs:
            inputs = inputs[:1] + [self.const(f"{n.name}_axes", np.array(attrs.pop("axes"), np.int64))]
        if n.op == "Pad":  # pads and value are inputs since opset 11
            pads, value = attrs.pop("pads"), attrs.pop("value", 0.0)
            dtype = self.graph.tensors[n.inputs[0]].dtype
            inputs = inputs[:1] + [self.const(f"{n.name}_pads", np.array(pads, np.int64)),
                                   self.const(f"{n.name}_value", np.array(value, dtype))]
        if n.op in ("Softmax", "LogSoftmax") and n.attrs.get("coerce_2d"):
            self._coerce_2d(n, attrs)
        else:
            self.emit(n.op, inputs, outputs, n.name, **attrs)
        if act:
            kw: dict[str, Any] = {}
            ins = [pre]
            if act["op"] == "LeakyRelu":
                kw["alpha"] = float(act.get("alpha", 0.01))
            if act["op"] == "Clip":
                ins += [self._bound(n, "min", act.get("min")), self._bound(n, "max", act.get("max"))]
            self.emit(act["op"], ins, [final], self.fresh(f"{n.name}__{act['op'].lower()}"), **kw)

    def _bound(self, n: Node, key: str, v: Any) -> str:
        if v is None or not np.isfinite(v):
            return ""
        return self.const(f"{n.name}_{key}", np.array(v, dtype=np.float32))

    def _coerce_2d(self, n: Node, attrs: dict) -> None:
        """Opset < 13 Softmax over all axes from ``axis`` on: Flatten, Softmax, Reshape."""
        shape = self.graph.shape(n.inputs[0])
        axis = int(attrs.get("axis", 1))
        axis = axis + len(shape) if axis < 0 else axis
        flat, soft = self.fresh(f"{n.name}__flat"), self.fresh(f"{n.name}__2d")
        self.emit("Flatten", [n.inputs[0]], [flat], self.fresh(f"{n.name}__flatten"), axis=axis)
        self.emit(n.op, [flat], [soft], n.name, axis=1)
        target = self.const(f"{n.name}_shape", np.array(shape, np.int64))
        self.emit("Reshape", [soft, target], [n.outputs[0]], self.fresh(f"{n.name}__reshape"))


def _value_info(graph: Graph, name: str) -> onnx.ValueInfoProto:
    t = graph.tensors[name]
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), list(t.shape))


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """Build an ONNX model computing the same function as ``graph``.

    Parameters
    ----------
    graph : Graph

    Returns
    -------
    onnx.ModelProto
        Opset :data:`EXPORT_OPSET`, constants as initializers, checked by
        ``onnx.checker``.
    """
    ex = _Exporter(graph)
    for n in graph.nodes:
        ex.node(n)
    used = {t for n in ex.nodes for t in n.input} | set(graph.outputs)
    for name, t in graph.tensors.items():
        if t.is_const and name in used:
            ex.inits.append(numpy_helper.from_array(np.ascontiguousarray(t.data), name))
    g = helper.make_graph(
        ex.nodes,
        graph.name,
        [_value_info(graph, t) for t in graph.inputs],
        [_value_info(graph, t) for t in graph.outputs],
        initializer=ex.inits,
    )
    opsets = [helper.make_opsetid("", EXPORT_OPSET)]
    if any(n.domain == "ai.onnx.ml" for n in ex.nodes):
        opsets.append(helper.make_opsetid("ai.onnx.ml", 1))
    model = helper.make_model(g, opset_imports=opsets, producer_name="hwflow")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
