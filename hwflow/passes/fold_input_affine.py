"""Fold a Mul/Div/Add/Sub by a constant into the Gemm or Conv that *follows* it.

Input normalisation (``(x - mean) / std``) is the common case: ``y = x * s + t``
feeding ``Gemm`` (possibly through a Flatten) is ``x (s B) + (t B + C)``; feeding a
Conv it is ``conv(x, W * s) + conv(t, W)``. The Conv case needs ``s`` and ``t`` to be
per input channel, and ``t = 0`` unless the Conv has no padding (padding inserts
zeros *after* the affine map, so a shift would not survive it).
"""

from __future__ import annotations

import numpy as np

from ..ir._geometry import window
from ..ir.graph import Graph, Node
from ._util import bypass, fits, sole_consumer
from .base import Pass, PassResult

__all__ = ["FoldInputAffine"]


def _affine(graph: Graph, node: Node) -> tuple[str, np.ndarray, np.ndarray] | None:
    """``(x, s, t)`` with ``node(x) = x * s + t`` (s, t broadcast to x's shape), or None."""
    if node.op not in ("Mul", "Div", "Add", "Sub") or len(node.inputs) != 2:
        return None
    x, c = node.inputs
    if graph.const(c) is None and node.op in ("Mul", "Add"):
        x, c = c, x
    const = graph.const(c)
    if const is None or graph.const(x) is not None or const.dtype.kind != "f":
        return None
    shape = graph.shape(x)
    if graph.shape(node.outputs[0]) != shape:  # the constant must not broadcast x up
        return None
    k = np.broadcast_to(const.astype(np.float64), shape)
    if node.op == "Div" and not np.all(k != 0):
        return None
    one, zero = np.ones(shape), np.zeros(shape)
    s, t = {"Mul": (k, zero), "Div": (1.0 / np.where(k == 0, 1, k), zero), "Add": (one, k), "Sub": (one, -k)}[node.op]
    return x, s, t


def _gemm_after(graph: Graph, tensor: str) -> Node | None:
    """The Gemm reading ``tensor`` as A, possibly through a batch-keeping Flatten/Reshape."""
    node = sole_consumer(graph, tensor)
    while node is not None and node.op in ("Flatten", "Reshape") and node.inputs[0] == tensor:
        out = graph.shape(node.outputs[0])
        if len(out) != 2 or out[0] != graph.shape(tensor)[0]:
            return None
        tensor = node.outputs[0]
        node = sole_consumer(graph, tensor)
    if node is None or node.op != "Gemm" or node.inputs[0] != tensor or node.attrs.get("transA"):
        return None
    return node


def _fold_gemm(graph: Graph, gemm: Node, s: np.ndarray, t: np.ndarray) -> bool:
    b = graph.const(gemm.inputs[1])
    c = graph.const(gemm.inputs[2]) if len(gemm.inputs) > 2 and gemm.inputs[2] else None
    if b is None or (len(gemm.inputs) > 2 and gemm.inputs[2] and c is None):
        return False
    s, t = s.reshape(-1), t.reshape(-1)  # batch 1: the flattened feature order
    trans_b = int(gemm.attrs.get("transB", 0))
    bk = (b.T if trans_b else b).astype(np.float64)  # (K, M)
    m = bk.shape[1]
    alpha, beta = float(gemm.attrs.get("alpha", 1.0)), float(gemm.attrs.get("beta", 1.0))
    c0 = np.zeros(m) if c is None else c.astype(np.float64)
    if np.broadcast_shapes(c0.shape, (1, m)) != (1, m):
        return False
    bias = alpha * (t @ bk) + beta * np.broadcast_to(c0, (1, m)).reshape(m)
    new_b = bk * s[:, None]
    new_b = new_b.T if trans_b else new_b
    if not fits(b.dtype, new_b, bias):
        return False
    gemm.inputs[1] = graph.add_const(f"{gemm.inputs[1]}_scaled", new_b.astype(b.dtype)).name
    bias_name = graph.add_const(f"{gemm.name}_bias", bias.astype(b.dtype)).name
    gemm.inputs = gemm.inputs[:2] + [bias_name]
    gemm.attrs["beta"] = 1.0
    return True


def _fold_conv(graph: Graph, conv: Node, s: np.ndarray, t: np.ndarray) -> bool:
    w = graph.const(conv.inputs[1])
    b = graph.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
    if w is None or (len(conv.inputs) > 2 and conv.inputs[2] and b is None):
        return False
    shape = graph.shape(conv.inputs[0])
    axes = tuple(i for i in range(s.ndim) if i != 1)  # s and t must be constant per channel
    if not (np.all(s == s.max(axis=axes, keepdims=True)) and np.all(t == t.max(axis=axes, keepdims=True))):
        return False
    sv, tv = s.max(axis=axes).reshape(-1), t.max(axis=axes).reshape(-1)
    if np.any(tv != 0) and any(window(shape[2:], w.shape[2:], conv.attrs).pads):
        return False
    groups = int(conv.attrs.get("group", 1))
    m, cg = w.shape[0], w.shape[1]
    # input channel of weight (m, j) is (m // (m / groups)) * cg + j
    chan = (np.arange(m) // (m // groups))[:, None] * cg + np.arange(cg)[None, :]
    wf = w.astype(np.float64)
    extra = (wf.sum(axis=tuple(range(2, w.ndim))) * tv[chan]).sum(axis=1)
    new_w = wf * sv[chan].reshape(chan.shape + (1,) * (w.ndim - 2))
    bias = (np.zeros(m) if b is None else b.astype(np.float64)) + extra
    if not fits(w.dtype, new_w, bias):
        return False
    conv.inputs[1] = graph.add_const(f"{conv.inputs[1]}_scaled", new_w.astype(w.dtype)).name
    conv.inputs = conv.inputs[:2] + [graph.add_const(f"{conv.name}_bias", bias.astype(w.dtype)).name]
    return True


class FoldInputAffine(Pass):
    """Fold ``x * s + t`` (Mul/Div/Add/Sub by a constant) into the following Gemm/Conv."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in graph.nodes:
            m = _affine(graph, node)
            if m is None:
                continue
            x, s, t = m
            if graph.shape(x)[:1] != (1,):
                continue
            nxt = sole_consumer(graph, node.outputs[0])
            gemm = _gemm_after(graph, node.outputs[0])
            if gemm is not None:
                done = _fold_gemm(graph, gemm, s, t)
            elif nxt is not None and nxt.op == "Conv" and nxt.inputs[0] == node.outputs[0] and len(s.shape) >= 3:
                done = _fold_conv(graph, nxt, s, t)
            else:
                done = False
            if done:
                bypass(graph, node, x)
                modified = True
        return PassResult(graph, modified)
