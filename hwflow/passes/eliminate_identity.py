"""Eliminate Identity, Dropout (inference: identity) and Cast to the same type."""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ._util import bypass
from .base import Pass, PassResult

__all__ = ["EliminateIdentity"]


def _is_noop(graph: Graph, node: Node) -> bool:
    if node.op == "Identity":
        return True
    if node.op == "Dropout":  # its mask output, when anyone reads it, keeps the node
        return all(not t or (t not in graph.outputs and not graph.consumers(t)) for t in node.outputs[1:])
    if node.op == "Cast":
        return graph.tensors[node.inputs[0]].dtype == graph.tensors[node.outputs[0]].dtype
    return False


class EliminateIdentity(Pass):
    """Remove Identity, Dropout and no-op Cast nodes, rewiring readers to their input."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for node in graph.nodes:
            if _is_noop(graph, node):
                bypass(graph, node, node.inputs[0])
                modified = True
        return PassResult(graph, modified)

    def ensures(self, graph: Graph) -> None:
        left = [n.name for n in graph.nodes if _is_noop(graph, n)]
        if left:
            raise AssertionError(f"no-op nodes remain: {left!r}")
