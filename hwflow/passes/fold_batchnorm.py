"""Fold BatchNormalization into the Conv or Gemm that produces its input.

``y = (x - mean) * s + beta`` with ``s = scale / sqrt(var + eps)`` per channel, and
``x = W * a + b``; so ``y = (W * s) * a + (b - mean) * s + beta``: the weights of each
output channel are scaled and the bias adjusted. Only when the layer's output feeds
nothing but the BatchNormalization and no activation is fused yet.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import WEIGHTED_OPS
from ._util import absorb, fits, sole_consumer
from .base import Pass, PassResult

__all__ = ["FoldBatchNorm", "scale_output_channels"]


def scale_output_channels(graph: Graph, layer: Node, scale: np.ndarray, shift: np.ndarray) -> bool:
    """Make ``layer`` (Conv/Gemm with constant weights) compute ``y * scale + shift`` per channel.

    Returns False (changing nothing) when the layer's form does not allow it.
    """
    w = graph.const(layer.inputs[1])
    if w is None or "activation" in layer.attrs:
        return False
    b = graph.const(layer.inputs[2]) if len(layer.inputs) > 2 and layer.inputs[2] else None
    if len(layer.inputs) > 2 and layer.inputs[2] and b is None:
        return False
    dtype = w.dtype
    if layer.op == "Conv":
        m = w.shape[0]
        w2 = w * scale.reshape((m,) + (1,) * (w.ndim - 1))
        b0 = np.zeros(m, dtype) if b is None else b
    elif layer.op == "Gemm":
        trans_b = int(layer.attrs.get("transB", 0))
        m = w.shape[0] if trans_b else w.shape[1]
        w2 = w * (scale[:, None] if trans_b else scale[None, :])
        if b is None:
            b0 = np.zeros(m, dtype)
        else:
            if np.broadcast_shapes(b.shape, (1, m)) != (1, m):  # C varies along rows: not a bias
                return False
            b0 = np.broadcast_to(b, (1, m)).reshape(m) * float(layer.attrs.get("beta", 1.0))
    else:
        return False
    if not fits(dtype, w2, b0 * scale + shift):
        return False
    if layer.op == "Gemm":
        # y = alpha * A W + beta * C: scaling W scales the first term (alpha stays), and
        # the new C carries beta, so beta becomes 1.
        layer.attrs["beta"] = 1.0
    w_name = graph.add_const(f"{layer.inputs[1]}_folded", w2.astype(dtype)).name
    b_name = graph.add_const(f"{layer.name}_bias", (b0 * scale + shift).astype(dtype)).name
    graph.replace_input(layer, layer.inputs[1], w_name)
    if len(layer.inputs) > 2 and layer.inputs[2]:
        graph.replace_input(layer, layer.inputs[2], b_name)
    else:
        layer.inputs = layer.inputs[:2] + [b_name]  # a constant: no edge to add
    return True


class FoldBatchNorm(Pass):
    """Fold each BatchNormalization into its producing Conv/Gemm (weights and bias)."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for bn in graph.nodes:
            if bn.op != "BatchNormalization":
                continue
            layer = graph.producer(bn.inputs[0])
            if layer is None or layer.op not in WEIGHTED_OPS or sole_consumer(graph, bn.inputs[0]) is not bn:
                continue
            params = [graph.const(t) for t in bn.inputs[1:5]]
            if any(p is None for p in params):
                continue
            gamma, beta, mean, var = (p.astype(np.float64) for p in params)
            s = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
            if scale_output_channels(graph, layer, s, beta - mean * s):
                # The training-set mean/std of the layer's new output (beta, |gamma|):
                # the quantizer's data-free calibration and bias correction use them.
                layer.attrs["bn_stats"] = {"mean": beta, "std": np.abs(gamma)}
                absorb(graph, layer, bn)
                modified = True
        return PassResult(graph, modified)
