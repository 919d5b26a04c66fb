"""Eliminate dead code: nodes and constants no graph output depends on."""

from __future__ import annotations

from ..ir.graph import Graph
from .base import Pass, PassResult

__all__ = ["EliminateDeadCode", "eliminate_dead_code"]


def eliminate_dead_code(graph: Graph) -> bool:
    """Remove unused nodes and tensors in place; return whether anything was removed."""
    return graph.remove_dead()


class EliminateDeadCode(Pass):
    """Remove every node whose outputs nobody reads, and every unreferenced tensor."""

    def call(self, graph: Graph) -> PassResult:
        return PassResult(graph, eliminate_dead_code(graph))

    def ensures(self, graph: Graph) -> None:
        read = set(graph.outputs) | {t for n in graph.nodes for t in n.inputs}
        for node in graph.nodes:
            if not any(t in read for t in node.outputs if t):
                raise AssertionError(f"node {node.name!r} is still dead")
