"""Fold a per-channel Mul/Div/Add/Sub by a constant into the preceding Conv/Gemm.

``(W a + b) * c`` is ``(W c) a + b c``, and ``(W a + b) + c`` is ``W a + (b + c)``:
exact up to float rounding, so long as ``c`` varies only along output channels and
the layer's output feeds nothing else.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import WEIGHTED_OPS
from ._util import absorb, channel_vector, sole_consumer
from .base import Pass, PassResult
from .fold_batchnorm import scale_output_channels

__all__ = ["FoldAffine"]

_OPS = ("Mul", "Div", "Add", "Sub")


def _match(graph: Graph, node: Node) -> tuple[Node, np.ndarray] | None:
    """The (layer, constant) pair when ``node`` is ``layer_output <op> constant``."""
    if node.op not in _OPS or len(node.inputs) != 2:
        return None
    a, c = node.inputs
    layer = graph.producer(a)
    const = graph.const(c)
    if const is None and node.op in ("Mul", "Add"):  # commutative: constant may come first
        a, c = c, a
        layer, const = graph.producer(a), graph.const(c)
    if layer is None or const is None or layer.op not in WEIGHTED_OPS:
        return None
    if sole_consumer(graph, a) is not node:
        return None
    out_shape = graph.shape(a)
    vec = channel_vector(const, out_shape, 1)
    if vec is None or graph.shape(node.outputs[0]) != out_shape:
        return None
    return layer, vec.astype(np.float64)


class FoldAffine(Pass):
    """Fold Mul/Div/Add/Sub by per-channel constants into the producing Conv/Gemm."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in graph.nodes:
            m = _match(graph, node)
            if m is None:
                continue
            layer, c = m
            ones, zeros = np.ones_like(c), np.zeros_like(c)
            if node.op == "Div" and not np.all(c != 0):
                continue
            scale, shift = {
                "Mul": (c, zeros),
                "Div": (1.0 / np.where(c == 0, 1, c), zeros),
                "Add": (ones, c),
                "Sub": (ones, -c),
            }[node.op]
            if scale_output_channels(graph, layer, scale, shift):
                absorb(graph, layer, node)
                modified = True
        return PassResult(graph, modified)
