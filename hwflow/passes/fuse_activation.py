"""Fuse an elementwise activation into the Conv/Gemm that produces its input.

The activations are the registry's :data:`~hwflow.ir.ops.ACTIVATIONS` (Relu, Clip,
LeakyRelu, Sigmoid, Tanh, Sign).

The layer gains ``attrs["activation"]`` (see :mod:`hwflow.ir.graph`); only when the
layer's output feeds nothing but the activation and no activation is fused yet.
"""

from __future__ import annotations

from typing import Any

from ..ir.graph import Graph, Node
from ..ir.ops import ACTIVATIONS, WEIGHTED_OPS
from ._util import absorb, sole_consumer
from .base import Pass, PassResult

__all__ = ["FuseActivation", "ACTIVATIONS"]


def _describe(node: Node) -> dict[str, Any]:
    if node.op == "Clip":
        lo, hi = node.attrs.get("min"), node.attrs.get("max")
        return {
            "op": "Clip",
            "min": float("-inf") if lo is None else float(lo),
            "max": float("inf") if hi is None else float(hi),
        }
    if node.op == "LeakyRelu":
        return {"op": "LeakyRelu", "alpha": float(node.attrs.get("alpha", 0.01))}
    return {"op": node.op}


class FuseActivation(Pass):
    """Move an activation node into its producing layer's ``attrs["activation"]``."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for act in graph.nodes:
            if act.op not in ACTIVATIONS or len(act.inputs) != 1:
                continue
            layer = graph.producer(act.inputs[0])
            if layer is None or layer.op not in WEIGHTED_OPS or "activation" in layer.attrs:
                continue
            if sole_consumer(graph, act.inputs[0]) is not act:
                continue
            layer.attrs["activation"] = _describe(act)
            absorb(graph, layer, act)
            modified = True
        return PassResult(graph, modified)
