"""Turn MatMul (+ Add of a bias) with constant 2-D weights into Gemm.

``MatMul(a, W)`` with ``a`` of shape ``(N, K)`` and a constant ``W`` ``(K, M)`` is
``Gemm(a, W)``; a following ``Add`` of a constant that varies only along ``M`` (and
reads nothing else) becomes the Gemm's ``C``.
"""

from __future__ import annotations

from ..ir.graph import Graph, Node
from ._util import absorb, channel_vector, sole_consumer
from .base import Pass, PassResult

__all__ = ["MatMulAddToGemm"]


def _bias(graph: Graph, mm: Node) -> tuple[Node, str] | None:
    add = sole_consumer(graph, mm.outputs[0])
    if add is None or add.op != "Add":
        return None
    other = add.inputs[1] if add.inputs[0] == mm.outputs[0] else add.inputs[0]
    c = graph.const(other)
    if c is None or graph.shape(add.outputs[0]) != graph.shape(mm.outputs[0]):
        return None
    vec = channel_vector(c, graph.shape(mm.outputs[0]), 1)
    if vec is None:
        return None
    return add, graph.add_const(f"{mm.name}_bias", vec.astype(c.dtype)).name


class MatMulAddToGemm(Pass):
    """Rewrite 2-D MatMul with constant weights (and its bias Add) as Gemm."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for mm in graph.nodes:
            if mm.op != "MatMul":
                continue
            a, w = mm.inputs
            if graph.const(w) is None or graph.const(a) is not None:
                continue
            if len(graph.shape(a)) != 2 or len(graph.shape(w)) != 2:
                continue
            bias = _bias(graph, mm)
            mm.op = "Gemm"
            mm.attrs = {}
            if bias is not None:
                add, c = bias
                mm.inputs = [a, w, c]
                absorb(graph, mm, add)
            modified = True
        return PassResult(graph, modified)

    def ensures(self, graph: Graph) -> None:
        for n in graph.nodes:
            if n.op == "MatMul" and graph.const(n.inputs[1]) is not None and len(graph.shape(n.inputs[0])) == 2:
                if graph.const(n.inputs[0]) is None and len(graph.shape(n.inputs[1])) == 2:
                    raise AssertionError(f"MatMul {n.name!r} was not turned into Gemm")
