"""Normalise Flatten/Reshape.

- a Reshape that keeps axis 0 and flattens the rest (``(N, F)``, e.g. ``(1, -1)``)
  becomes ``Flatten(axis=1)``, which is batch-agnostic;
- a Reshape or Flatten whose output shape equals its input shape is removed;
- Flatten/Reshape of a Flatten/Reshape reads the original tensor directly.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ._util import bypass
from .base import Pass, PassResult

__all__ = ["NormalizeReshape"]

_RESHAPES = ("Reshape", "Flatten")


def _is_flatten1(graph: Graph, node: Node) -> bool:
    src, dst = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
    return len(src) >= 1 and len(dst) == 2 and dst[0] == src[0]


class NormalizeReshape(Pass):
    """Rewrite Reshape to Flatten where equivalent, drop no-op reshapes, collapse chains."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in graph.nodes:
            if node.op not in _RESHAPES or graph.const(node.inputs[0]) is not None:
                continue
            src = node.inputs[0]
            if graph.shape(src) == graph.shape(node.outputs[0]):
                bypass(graph, node, src)
                modified = True
                continue
            prev = graph.producer(src)
            if prev is not None and prev.op in _RESHAPES:  # reshape of a reshape
                graph.replace_input(node, src, prev.inputs[0])
                src = prev.inputs[0]
                modified = True
                if node.op == "Reshape" or not _is_flatten1(graph, node):
                    # a Flatten axis or a 0 in the target shape referred to the
                    # intermediate shape: spell out the static target instead
                    node.op, node.attrs = "Reshape", {}
                    shape = graph.add_const(f"{node.name}_shape", np.array(graph.shape(node.outputs[0]), np.int64))
                    node.inputs = [src, shape.name]
            if node.op == "Reshape" and _is_flatten1(graph, node):
                node.op, node.attrs, node.inputs = "Flatten", {"axis": 1}, node.inputs[:1]
                modified = True
            elif node.op == "Flatten" and node.attrs.get("axis", 1) != 1 and _is_flatten1(graph, node):
                node.attrs["axis"] = 1
                modified = True
        return PassResult(graph, modified)
