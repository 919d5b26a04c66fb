"""Shared helpers: read and write Conv/Gemm weights and biases of a float Graph."""

from __future__ import annotations

import numpy as np

from ..ir import kernels
from ..ir._geometry import window
from ..ir.graph import Graph, Node
from ..ir.ops import WEIGHTED_OPS

__all__ = ["weight_nodes", "get_weight", "set_weight", "get_bias", "set_bias", "linear"]


def weight_nodes(graph: Graph) -> list[Node]:
    """Conv/Gemm nodes whose weight is a constant, in topological order."""
    out = []
    for node in graph.nodes:
        if node.op in WEIGHTED_OPS and len(node.inputs) > 1 and graph.const(node.inputs[1]) is not None:
            if node.op == "Gemm" and node.attrs.get("transA", 0):
                continue
            out.append(node)
    return out


def _trans(node: Node) -> bool:
    """Whether the stored Gemm weight is ``(Cin, Cout)`` (transB = 0)."""
    return node.op == "Gemm" and not node.attrs.get("transB", 0)


def get_weight(graph: Graph, node: Node) -> np.ndarray:
    """The weight, output channels first: Conv ``(Cout, Cin/g, kh, kw)``, Gemm ``(Cout, Cin)`` (float64)."""
    w = np.asarray(graph.const(node.inputs[1]), dtype=np.float64)
    return w.T.copy() if _trans(node) else w.copy()


def set_weight(graph: Graph, node: Node, w: np.ndarray) -> None:
    """Store ``w`` (output channels first) as the node's weight, in a fresh constant."""
    old = graph.tensors[node.inputs[1]]
    data = (w.T if _trans(node) else w).astype(old.dtype)
    t = graph.add_const(f"{node.name}.weight_pruned", np.ascontiguousarray(data))
    graph.replace_input(node, node.inputs[1], t.name)


def get_bias(graph: Graph, node: Node) -> np.ndarray:
    """The bias ``(Cout,)`` (zeros when the node has none; a Gemm's ``beta`` applied)."""
    cout = get_weight(graph, node).shape[0]
    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(cout)
    b = np.asarray(graph.const(node.inputs[2]), dtype=np.float64)
    if node.op == "Gemm":
        b = float(node.attrs.get("beta", 1.0)) * np.broadcast_to(b.reshape(-1), (cout,))
    return b.reshape(-1).copy()


def set_bias(graph: Graph, node: Node, b: np.ndarray) -> None:
    """Store ``b`` as the node's bias (adding one if the node has none)."""
    if node.op == "Gemm":
        node.attrs["beta"] = 1.0
    dtype = graph.tensors[node.inputs[1]].dtype
    t = graph.add_const(f"{node.name}.bias_pruned", np.asarray(b, dtype=dtype).reshape(-1))
    if len(node.inputs) < 3:
        node.inputs = list(node.inputs) + [t.name]
        graph.replace_input(node, t.name, t.name)
    else:
        graph.replace_input(node, node.inputs[2], t.name)


def linear(graph: Graph, node: Node, x: np.ndarray, w: np.ndarray | None = None,
           b: np.ndarray | None = None) -> np.ndarray:
    """The node's output before its fused activation, on a batch ``x`` (float64).

    ``w``/``b`` default to the node's own weight and bias.
    """
    w = get_weight(graph, node) if w is None else w
    b = get_bias(graph, node) if b is None else b
    x = np.asarray(x, dtype=np.float64)
    if node.op == "Gemm":
        alpha = float(node.attrs.get("alpha", 1.0))
        return alpha * (x.reshape(x.shape[0], -1) @ w.T) + b
    return kernels.conv(x, w, b, window(x.shape[2:], w.shape[2:], node.attrs), int(node.attrs.get("group", 1)))
