"""Fold constants: evaluate nodes whose inputs are all constant.

Evaluation uses the ops' float kernels (:func:`hwflow.ir.ops.run_node`), as the float
reference does, so a folded value is exactly what the interpreter would have computed
at run time. ``Shape`` of a tensor with a static shape folds too. Host-side ops are
left alone.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir.graph import Graph, Node, Tensor
from ..ir.ops import OPS, run_node
from .base import Pass, PassResult

__all__ = ["FoldConstants"]


def _foldable(graph: Graph, node: Node) -> bool:
    spec = OPS[node.op]
    if spec.host or not spec.fold:
        return False
    if spec.shape_only:
        return True  # shapes are static
    return all(graph.const(t) is not None for t in node.inputs if t)


class FoldConstants(Pass):
    """Replace every node whose inputs are all constant by its constant outputs."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in graph.nodes:
            if not _foldable(graph, node):
                continue
            if OPS[node.op].shape_only:
                ins = [np.zeros(graph.shape(node.inputs[0]), dtype=np.int8)]
            else:
                ins = [graph.const(t) if t else None for t in node.inputs]
            outs = run_node(node, ins)
            graph.remove_node(node.name)
            for t, v in zip(node.outputs, outs):
                if not t:
                    continue
                if v.dtype.kind == "f" and not np.isfinite(v).all():
                    raise ModelError(f"node {node.name!r} ({node.op}) computes NaN/Inf from constants")
                graph.add_tensor(Tensor(t, v.shape, v.dtype, v))
            modified = True
        return PassResult(graph, modified)

    def ensures(self, graph: Graph) -> None:
        left = [n.name for n in graph.nodes if _foldable(graph, n)]
        if left:
            raise AssertionError(f"constant nodes remain: {left!r}")
