"""Write the trained network as ONNX with QONNX ``Quant`` nodes, which ``compile`` imports fixed.

The model is the plan again, layer for layer, in plain ONNX (Conv, Gemm, MaxPool,
AveragePool, Add, Concat, Relu/Clip, Tanh/Sigmoid/LeakyRelu), and a ``Quant`` node
(domain ``qonnx.custom_op.general``: ``x, scale, zeropt, bitwidth``; ``signed=1``,
``narrow=0``, ``rounding_mode="ROUND"``) wherever the integer network has a type:

- after the input and after every layer but a MaxPool (exact on codes: its output has
  its input's type), with the tensor's scale, zero point and width;
- on every weight, per output channel (scale shaped ``(C, 1, 1, 1)`` or ``(C, 1)``) or
  per tensor. The weight initializers hold the codes times the scale, exactly on the
  grid, so every reader (QONNX's half-to-even ``ROUND``, hwflow's half-away-from-zero)
  gets the same codes.

Biases stay float (a real offset before the activation's Quant). The host tail (Softmax,
ArgMax) follows the last Quant. Layer nodes keep the plan's names. ``compile`` reads the
model with :func:`hwflow.quant.qonnx.quantize_qonnx`, which builds the integer network
that computes exactly what qonnx's executor computes for it: residual Adds, Concats and
the tables (a Quant, the activation, a Quant) included.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..ir.export import EXPORT_OPSET, _Exporter
from ..ir.graph import Graph
from ..ir.onnx_builder import OnnxBuilder
from ..ir.ops import QONNX_DOMAIN
from .net import QuantNet

__all__ = ["to_qonnx", "METADATA_KEY"]

#: ``metadata_props`` key of the training record (JSON).
METADATA_KEY = "hwflow.finetune"


class _Builder(OnnxBuilder):
    def __init__(self, taken, layers: set[str]):
        super().__init__({*taken, *layers})  # no tensor or other node takes a layer's name
        self.layers = layers

    def node(self, op: str, ins: list[str], out: str, name: str | None = None, domain: str = "", **attrs) -> str:
        name = name if name in self.layers else self.fresh(name or f"{op}_{out}")
        self.nodes.append(helper.make_node(op, ins, [out], name=name, domain=domain, **attrs))
        return out

    def quant(self, x: str, scale, zero_point: int, bits: int, out: str) -> str:
        """``Quant(x)``; ``scale`` a scalar or an array shaped to broadcast against ``x``."""
        ins = [x,
               self.const(f"{out}_scale", np.asarray(scale, np.float32)),
               self.const(f"{out}_zeropt", np.float32(zero_point)),
               self.const(f"{out}_bitwidth", np.float32(bits))]
        return self.node("Quant", ins, self.fresh(out), name=f"Quant_{out}", domain=QONNX_DOMAIN,
                         signed=1, narrow=0, rounding_mode="ROUND")


def to_qonnx(net: QuantNet, graph: Graph, record: dict | None = None) -> onnx.ModelProto:
    """The trained ``net`` as a QONNX model.

    Parameters
    ----------
    net : QuantNet
    graph : Graph
        The float graph ``net``'s plan was lowered from (its input, output and host tail).
    record : dict, optional
        Stored as JSON in ``metadata_props`` under :data:`METADATA_KEY`.

    Returns
    -------
    onnx.ModelProto
        Opset 17 plus ``qonnx.custom_op.general`` 1, checked by ``onnx.checker``.
    """
    plan = net.plan
    tail = [n for n in graph.nodes if n.attrs.get("host")]
    b = _Builder({plan.input, graph.inputs[0], *graph.outputs, *(t for n in tail for t in [*n.inputs, *n.outputs])},
                 {l.name for l in plan.layers})
    name = {plan.input: plan.input}  # plan tensor -> its quantized ONNX tensor

    def quant_act(t: str, y: str) -> str:
        q = net.act(t)
        return b.quant(y, q.scale.numpy()[0], q.zero_point, q.bits, f"{t}_q")

    user = plan.input
    if plan.input_layout is not None:  # the user's array, transposed and reshaped as the model did (_input_layout)
        user, perm = graph.inputs[0], [int(a) for a in plan.input_layout["perm"]]
        t = user if perm == sorted(perm) else b.node("Transpose", [user], b.fresh(f"{user}_transposed"), perm=perm)
        shape = b.const(f"{user}_shape", np.array([-1, *plan.shapes[plan.input][1:]], dtype=np.int64))
        b.node("Reshape", [t, shape], plan.input)
    name[plan.input] = quant_act(plan.input, plan.input)
    for i, fl in enumerate(plan.layers):
        x = [name[t] for t in fl.inputs]
        geo = {"kernel_shape": list(fl.kernel), "strides": list(fl.strides), "pads": list(fl.pads)}
        y = b.fresh(fl.output)
        if fl.op in ("conv", "gemm"):
            w, bias, wq = net.layer_params(i)
            codes = wq.codes(w)
            s = wq.scale.numpy()
            s = s.reshape(-1, *([1] * (codes.ndim - 1))) if s.size > 1 else s.reshape(())
            w_name = b.const(f"{fl.name}.weight", (codes * s).astype(np.float32))
            w_q = b.quant(w_name, s, 0, wq.bits, f"{fl.name}.weight_q")
            b_name = b.const(f"{fl.name}.bias", bias.detach().numpy().astype(np.float32))
            if fl.op == "conv":
                b.node("Conv", [x[0], w_q, b_name], y, name=fl.name, group=fl.groups, **geo)
            else:
                src = x[0]
                if len(plan.shapes[fl.inputs[0]]) != 2:
                    src = b.node("Flatten", [src], b.fresh(f"{fl.inputs[0]}_flat"), axis=1)
                b.node("Gemm", [src, w_q, b_name], y, name=fl.name, transB=1)
        elif fl.op == "maxpool":
            b.node("MaxPool", x, y, name=fl.name, **geo)
        elif fl.op == "avgpool":
            b.node("AveragePool", x, y, name=fl.name, count_include_pad=1, **geo)
        elif fl.op == "add":
            b.node("Add", x, y, name=fl.name)
        elif fl.op == "concat":
            b.node("Concat", x, y, name=fl.name, axis=1)
        else:  # lut: the table alone
            y = x[0]
        if fl.clamp is not None:
            y = _activation(b, fl.clamp, y, fl.name)
        if fl.lut is not None:
            if fl.op != "lut":
                space = net.space(i)
                y = b.quant(y, space.scale.numpy()[0], space.zero_point, space.bits, f"{fl.output}_pre_q")
            y = _activation(b, fl.lut, y, fl.name, node=fl.name if fl.op == "lut" else None)
        # a MaxPool is exact on codes: its output keeps its input's type, and takes no Quant
        name[fl.output] = y if fl.op == "maxpool" else quant_act(fl.output, y)
    out = name[plan.output]
    outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", *plan.shapes[plan.output][1:]])]
    if tail:
        ex = _Exporter(graph)
        ex.names |= b.names
        for n in tail:
            ex.node(n)
        ex.nodes[0].input[0] = out
        b.nodes += ex.nodes
        b.inits += ex.inits
        # the tail's own constants (a classifier's class labels, a Reshape's shape)
        b.inits += [numpy_helper.from_array(np.ascontiguousarray(graph.tensors[t].data), t)
                    for t in dict.fromkeys(t for n in tail for t in n.inputs) if graph.tensors[t].is_const]
        outputs = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(graph.tensors[o].dtype),
                                                 ["N", *graph.shape(o)[1:]]) for o in graph.outputs]
    in_shape = plan.input_layout["shape"] if plan.input_layout is not None else plan.shapes[plan.input]
    inputs = [helper.make_tensor_value_info(user, TensorProto.FLOAT, ["N", *in_shape[1:]])]
    g = helper.make_graph(b.nodes, graph.name, inputs, outputs, b.inits)
    model = helper.make_model(g, producer_name="hwflow finetune", opset_imports=[
        helper.make_opsetid("", EXPORT_OPSET), helper.make_opsetid(QONNX_DOMAIN, 1),
        *([helper.make_opsetid("ai.onnx.ml", 1)] if any(n.domain == "ai.onnx.ml" for n in b.nodes) else [])])
    model.ir_version = 8
    if record is not None:
        helper.set_model_props(model, {METADATA_KEY: json.dumps(record, sort_keys=True)})
    onnx.checker.check_model(model)
    return model


def _activation(b: _Builder, act: dict, x: str, layer: str, node: str | None = None) -> str:
    """An activation node (Relu, Clip with constant bounds, Tanh, Sigmoid, LeakyRelu), named
    ``node`` (a table layer's own name) or after its output."""
    op = act["op"]
    out = b.fresh(f"{layer}_{op.lower()}")
    node = node or out
    if op == "Clip":
        bounds = ["" if act.get(k) is None else b.const(f"{layer}_{k}", np.float32(act[k])) for k in ("min", "max")]
        while bounds and not bounds[-1]:
            bounds.pop()
        return b.node("Clip", [x, *bounds], out, name=node)
    extra = {"alpha": float(act.get("alpha", 0.01))} if op == "LeakyRelu" else {}
    return b.node(op, [x], out, name=node, **extra)
