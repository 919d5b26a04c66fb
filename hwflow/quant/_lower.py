"""Lower a float Graph to a plan of float layers that map one-to-one onto QLayers.

The plan is what the quantizer works on: weights in float (so equalization and
clamping can edit them), fused activations resolved, Flatten/Reshape gone (a Gemm
reads the 4-D tensor), BatchNorm folded, MatMul+Add merged, host tail split off.
It accepts optimized graphs and, for robustness, the common unoptimized patterns.
What each ONNX op lowers to is the op registry's ``quant`` (:data:`hwflow.ir.ops.OPS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ir._geometry import Window, window
from ..ir.graph import Graph, Node
from ..ir.ops import OPS


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def act_fn(act: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """The float function of an activation dict ``{"op": ..., ...}``."""
    op = act["op"]
    if op == "Tanh":
        return np.tanh
    if op == "Sign":
        return np.sign
    if op == "Sigmoid":
        return _sigmoid
    if op == "LeakyRelu":
        a = float(act.get("alpha", 0.01))
        return lambda x: np.where(x >= 0, x, x * a)
    if op == "Relu":
        return lambda x: np.maximum(x, 0)
    if op == "Clip":
        lo, hi = act.get("min"), act.get("max")
        return lambda x: np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    raise UnsupportedOpError(f"activation {op!r} is not supported; use Relu, Clip, LeakyRelu, Sigmoid, Tanh or Sign")


@dataclass
class FLayer:
    """A float layer of the plan (becomes one QLayer)."""

    name: str
    op: str  # conv gemm maxpool avgpool add concat lut
    inputs: list[str]
    output: str
    weight: np.ndarray | None = None  # conv OIHW, gemm (Cout, Cin); float64
    bias: np.ndarray | None = None
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    clamp: dict[str, Any] | None = None  # Relu/Clip folded into lo/hi
    lut: dict[str, Any] | None = None  # Tanh/Sigmoid/LeakyRelu(/Relu standalone)
    pre: str | None = None  # tensor holding the code space the LUT is indexed by
    bn: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std) of the output before clamp
    weight_name: str | None = None  # the initializer it came from (pre-quantized imports)
    nodes: list[str] = field(default_factory=list)

    @property
    def has_weight(self) -> bool:
        return self.op in ("conv", "gemm")

    def window(self, in_spatial: tuple[int, ...]) -> Window:
        """The window of a conv/maxpool/avgpool layer over an input of ``in_spatial``."""
        return window(in_spatial, self.kernel, {"strides": self.strides, "pads": self.pads})


@dataclass
class Plan:
    """Float layers in execution order plus the tensors they connect."""

    name: str
    input: str
    output: str
    layers: list[FLayer]
    shapes: dict[str, tuple[int, ...]]
    host_tail: list[str]

    def producer(self, tensor: str) -> FLayer | None:
        for l in self.layers:
            if l.output == tensor:
                return l
        return None

    def consumers(self, tensor: str) -> list[FLayer]:
        return [l for l in self.layers if tensor in l.inputs]


def _window2d(node: Node, in_shape, kernel) -> tuple:
    if len(in_shape) != 4 or len(kernel) != 2:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): only 2-D windows on NCHW tensors are supported")
    win = window(in_shape[2:], kernel, node.attrs)
    if any(d != 1 for d in win.dilations):
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): dilations {win.dilations} are not supported")
    pads = []
    # widen the end pads so every output window fits (ceil_mode overhang)
    ends = []
    for i in range(2):
        need = (win.out[i] - 1) * win.strides[i] + win.kernel[i]
        ends.append(max(win.pads_end[i], need - in_shape[2 + i] - win.pads_begin[i]))
    pads = (win.pads_begin[0], win.pads_begin[1], ends[0], ends[1])
    overhang = tuple(e - p for e, p in zip(ends, win.pads_end))
    return tuple(win.kernel), tuple(win.strides), pads, overhang


def lower(graph: Graph) -> Plan:
    """Walk ``graph`` in topological order and build the float plan.

    Raises
    ------
    UnsupportedOpError
        Naming the node and op hwflow cannot map onto integer layers.
    """
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedOpError(
            f"hwflow quantizes one-input one-output networks; {graph.name!r} has inputs {graph.inputs!r} and outputs {graph.outputs!r}"
        )
    consts: dict[str, np.ndarray] = {n: t.data for n, t in graph.tensors.items() if t.is_const}
    alias: dict[str, str] = {}
    layers: list[FLayer] = []
    by_out: dict[str, FLayer] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    host_tail: list[str] = []
    x = graph.inputs[0]
    shapes[x] = tuple(graph.shape(x))
    out_tensor = graph.outputs[0]

    def canon(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    def uses(t: str) -> int:
        # how many node inputs (plus graph outputs) read ``t``, seen through aliases
        names = {t} | {a for a in alias if canon(a) == t}
        n = sum(1 for node in graph.nodes for i in node.inputs if i in names)
        return n + sum(1 for o in graph.outputs if o in names)

    def add(layer: FLayer, node: Node) -> None:
        layer.nodes = layer.nodes or [node.name]
        shapes[layer.output] = tuple(graph.shape(node.outputs[0]))
        layers.append(layer)
        by_out[layer.output] = layer

    def mergeable(t: str) -> FLayer | None:
        """The layer producing ``t`` if an activation may fuse into it."""
        prod = by_out.get(t)
        if prod is None or prod.op not in ("conv", "gemm", "avgpool", "add") or prod.lut is not None:
            return None
        return prod if uses(t) == 1 and t != canon(out_tensor) else None

    def rename_output(layer: FLayer, new: str, node: Node) -> None:
        del by_out[layer.output]
        layer.output = new
        layer.nodes.append(node.name)
        by_out[new] = layer
        shapes[new] = tuple(graph.shape(node.outputs[0]))

    for node in graph.nodes:
        op = node.op
        ins = [canon(t) if t else t for t in node.inputs]
        act_ins = [t for t in ins if t and t not in consts]
        out = node.outputs[0]
        spec = OPS.get(op)
        kind = None if spec is None else spec.quant
        host = spec is not None and spec.host
        if host_tail or node.attrs.get("host") or host:
            if not host and not node.attrs.get("host"):
                raise UnsupportedOpError(f"node {node.name!r} ({op}) follows the host-side tail {host_tail!r}")
            if not host_tail:
                out_tensor = ins[0]
            host_tail.append(op)
            continue
        if kind == "const":
            consts[out] = np.asarray(node.attrs["value"])
            continue
        if not act_ins:
            raise UnsupportedOpError(f"node {node.name!r} ({op}) computes a constant; run the optimizer (constant folding) first")
        if kind == "layout":
            src = act_ins[0]
            if op == "Reshape" or op == "Flatten":
                ish, osh = graph.shape(src), graph.shape(out)
                if len(osh) != 2 or osh[0] != ish[0]:
                    raise UnsupportedOpError(
                        f"node {node.name!r} ({op}) reshapes {ish} to {osh}; only flattening to (1, F) is supported"
                    )
            alias[out] = src
            continue
        if kind == "conv" and op == "Conv":
            w = consts.get(ins[1])
            if w is None:
                raise UnsupportedOpError(f"node {node.name!r} (Conv): weights must be constant")
            b = consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
            kernel, strides, pads, overhang = _window2d(node, graph.shape(ins[0]), w.shape[2:])
            w = np.asarray(w, np.float64)  # no copy if float64 already (weights are never written in place)
            layer = FLayer(node.name, "conv", [ins[0]], out, w,
                           np.zeros(w.shape[0]) if b is None else b.astype(np.float64).ravel(),
                           kernel, strides, pads, int(node.attrs.get("group", 1)), bn=_bn_stats(node),
                           weight_name=ins[1])
            _fuse_attr_activation(layer, node)
            add(layer, node)
            continue
        if kind == "gemm":
            if len(act_ins) != 1 or ins[0] != act_ins[0]:
                raise UnsupportedOpError(f"node {node.name!r} ({op}): the second operand must be a constant weight")
            b_mat = np.asarray(consts[ins[1]], np.float64)
            if op == "Gemm":
                if int(node.attrs.get("transA", 0)):
                    raise UnsupportedOpError(f"node {node.name!r} (Gemm): transA=1 is not supported")
                w = b_mat if int(node.attrs.get("transB", 0)) else b_mat.T
                if float(node.attrs.get("alpha", 1.0)) != 1.0:
                    w = w * float(node.attrs["alpha"])
                c = consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
                bias = np.zeros(w.shape[0]) if c is None else np.broadcast_to(
                    np.asarray(c, np.float64).ravel() * float(node.attrs.get("beta", 1.0)), (w.shape[0],)).copy()
            else:
                if b_mat.ndim != 2 or len(graph.shape(ins[0])) != 2:
                    raise UnsupportedOpError(f"node {node.name!r} (MatMul): only (1, F) x (F, K) is supported")
                w, bias = b_mat.T, np.zeros(b_mat.shape[1])
            layer = FLayer(node.name, "gemm", [ins[0]], out, w, bias, bn=_bn_stats(node), weight_name=ins[1])
            _fuse_attr_activation(layer, node)
            add(layer, node)
            continue
        if kind == "add" and len(ins) == 2 and len(act_ins) == 1:
            prod = mergeable(act_ins[0])
            c = consts[[t for t in ins if t in consts][0]]
            if prod is None or not prod.has_weight or prod.clamp is not None or c.size not in (1, prod.weight.shape[0]):
                raise UnsupportedOpError(
                    f"node {node.name!r} ({op} of a constant) only follows a Conv/Gemm/MatMul as its bias"
                )
            prod.bias = prod.bias + np.broadcast_to(np.asarray(c, np.float64).ravel(), prod.bias.shape)
            rename_output(prod, out, node)
            continue
        if kind == "add" and len(ins) == 2:
            if graph.shape(act_ins[0]) != graph.shape(act_ins[1]):
                raise UnsupportedOpError(f"node {node.name!r} ({op}): broadcasting add is not supported")
            add(FLayer(node.name, "add", act_ins, out), node)
            continue
        if kind == "conv" and op == "BatchNormalization":  # into the Conv before it, else a depthwise conv
            scale, beta, mean, var = (consts[t].astype(np.float64) for t in ins[1:5])
            k = scale / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
            prod = mergeable(ins[0])
            if prod is not None and prod.op == "conv" and prod.clamp is None and prod.lut is None:
                prod.weight = prod.weight * k[:, None, None, None]
                prod.bias = (prod.bias - mean) * k + beta
                prod.bn = (beta.copy(), np.abs(scale).copy())
                rename_output(prod, out, node)
            else:
                c = k.size
                if len(graph.shape(ins[0])) != 4:
                    raise UnsupportedOpError(f"node {node.name!r} (BatchNormalization): only on NCHW tensors")
                layer = FLayer(node.name, "conv", [ins[0]], out, k.reshape(c, 1, 1, 1), beta - mean * k,
                               groups=c, bn=(beta.copy(), np.abs(scale).copy()))
                add(layer, node)
            continue
        if kind == "lut":
            act = {"op": op}
            if op == "Clip":
                lo = consts.get(ins[1]) if len(ins) > 1 and ins[1] else node.attrs.get("min")
                hi = consts.get(ins[2]) if len(ins) > 2 and ins[2] else node.attrs.get("max")
                act.update(min=None if lo is None else float(lo), max=None if hi is None else float(hi))
            if op == "LeakyRelu":
                act["alpha"] = float(node.attrs.get("alpha", 0.01))
            prod = mergeable(act_ins[0])
            if prod is not None:
                if spec.activation == "clamp":
                    prod.clamp = _merge_clamp(prod.clamp, act)
                else:
                    prod.lut, prod.pre = act, prod.output
                rename_output(prod, out, node)
            else:
                add(FLayer(node.name, "lut", [act_ins[0]], out, lut=act, pre=act_ins[0]), node)
            continue
        if kind == "maxpool":
            if int(node.attrs.get("storage_order", 0)) or len(node.outputs) > 1 and node.outputs[1]:
                raise UnsupportedOpError(f"node {node.name!r} (MaxPool): the indices output is not supported")
            kernel, strides, pads, _ = _window2d(node, graph.shape(ins[0]), node.attrs["kernel_shape"])
            add(FLayer(node.name, "maxpool", [ins[0]], out, kernel=kernel, strides=strides, pads=pads), node)
            continue
        if kind == "avgpool":
            shp = graph.shape(ins[0])
            if op == "GlobalAveragePool":
                if len(shp) != 4:
                    raise UnsupportedOpError(f"node {node.name!r} (GlobalAveragePool): only on NCHW tensors")
                kernel, strides, pads, overhang = tuple(shp[2:]), (1, 1), (0, 0, 0, 0), (0, 0)
            else:
                kernel, strides, pads, overhang = _window2d(node, shp, node.attrs["kernel_shape"])
                if any(overhang):
                    raise UnsupportedOpError(
                        f"node {node.name!r} (AveragePool): ceil_mode windows that overhang the input are not supported"
                    )
                if any(pads) and not int(node.attrs.get("count_include_pad", 0)):
                    raise UnsupportedOpError(
                        f"node {node.name!r} (AveragePool): padding with count_include_pad=0 divides border windows "
                        f"by fewer cells, which one integer multiplier cannot do; export with count_include_pad=1 or without pads"
                    )
            add(FLayer(node.name, "avgpool", [ins[0]], out, kernel=kernel, strides=strides, pads=pads), node)
            continue
        if kind == "concat":
            axis = int(node.attrs.get("axis", 1))
            if axis not in (1, 1 - len(graph.shape(out))):
                raise UnsupportedOpError(f"node {node.name!r} (Concat): only the channel axis 1 is supported, not {axis}")
            add(FLayer(node.name, "concat", act_ins, out), node)
            continue
        raise UnsupportedOpError(f"node {node.name!r}: op {op} cannot be quantized; supported: {_quantizable()}")
    out_tensor = canon(out_tensor)
    if out_tensor == x:
        raise UnsupportedOpError(f"graph {graph.name!r} has no layer to quantize")
    if out_tensor not in by_out:
        raise UnsupportedOpError(f"graph output {out_tensor!r} is not produced by a quantizable layer")
    # drop layers whose result nobody uses (e.g. after a host tail)
    return Plan(graph.name, x, out_tensor, layers, shapes, host_tail)


def _quantizable() -> str:
    return ", ".join(op for op, d in OPS.items() if d.quant not in (None, "const"))


def _bn_stats(node: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, std)`` a folded BatchNorm left in ``attrs["bn_stats"]`` (passes.fold_batchnorm)."""
    st = node.attrs.get("bn_stats")
    if not st:
        return None
    return np.asarray(st["mean"], np.float64).ravel(), np.asarray(st["std"], np.float64).ravel()


def _merge_clamp(old: dict | None, new: dict) -> dict:
    """Compose two Relu/Clip clamps into one ``{"op": "Clip", min, max}``."""
    def bounds(a):
        if a is None:
            return -np.inf, np.inf
        if a["op"] == "Relu":
            return 0.0, np.inf
        return (-np.inf if a.get("min") is None else a["min"]), (np.inf if a.get("max") is None else a["max"])

    (l1, h1), (l2, h2) = bounds(old), bounds(new)
    lo, hi = max(l1, l2), min(h1, h2)
    if hi == np.inf and lo == 0.0:
        return {"op": "Relu"}
    return {"op": "Clip", "min": None if lo == -np.inf else lo, "max": None if hi == np.inf else hi}


def _fuse_attr_activation(layer: FLayer, node: Node) -> None:
    act = node.attrs.get("activation")
    if not act:
        return
    act = dict(act)
    act_fn(act)  # validates the op
    if act["op"] in ("Relu", "Clip"):
        layer.clamp = _merge_clamp(None, act)
    else:
        layer.lut, layer.pre = act, f"{node.outputs[0]}::pre"
