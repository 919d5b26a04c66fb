"""Fuse a standalone zero Pad (TF's explicit padding) into the Conv or AveragePool after it."""

from __future__ import annotations

from ..ir._geometry import window
from ..ir.graph import Graph, Node
from ._util import sole_consumer
from .base import Pass, PassResult

__all__ = ["FusePad"]


def _spatial_pads(graph: Graph, pad: Node) -> tuple[list[int], list[int]] | None:
    """(begin, end) over the spatial axes of a constant-zero Pad of an NC... tensor that
    pads only those axes, by non-negative amounts; None for any other Pad."""
    a = pad.attrs
    rank = len(graph.shape(pad.inputs[0]))
    pads = [int(p) for p in a.get("pads", ())]
    if rank < 3 or len(pads) != 2 * rank or min(pads) < 0:
        return None
    if (a.get("mode") or "constant") not in ("constant", b"constant") or float(a.get("value", 0.0)) != 0.0:
        return None
    begin, end = pads[:rank], pads[rank:]
    if any(begin[:2]) or any(end[:2]):  # batch or channel padding is no window padding
        return None
    return begin[2:], end[2:]


def _fusable(graph: Graph, pad: Node) -> Node | None:
    """The Conv or AveragePool that ``pad`` can be fused into, if any.

    Zero padding is the Conv's own padding; an AveragePool's only when its padding counts
    in the mean (``count_include_pad``) or it has none. A MaxPool pads with -inf, not 0.
    """
    nxt = sole_consumer(graph, pad.outputs[0])
    if nxt is None or nxt.inputs[0] != pad.outputs[0] or _spatial_pads(graph, pad) is None:
        return None
    if nxt.op == "Conv":
        return nxt
    if nxt.op == "AveragePool":
        own = window(graph.shape(nxt.inputs[0])[2:], nxt.attrs["kernel_shape"], nxt.attrs)
        if int(nxt.attrs.get("count_include_pad", 0)) or not any(own.pads):
            return nxt
    return None


class FusePad(Pass):
    """Fold ``Pad(x) -> Conv/AveragePool`` into the layer's ``pads`` (explicit, begin and end
    per axis, so TF's asymmetric 'same' padding survives); ``auto_pad`` is resolved first."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for pad in list(graph.nodes):
            if pad.op != "Pad" or (nxt := _fusable(graph, pad)) is None:
                continue
            begin, end = _spatial_pads(graph, pad)
            a = nxt.attrs
            padded = graph.shape(nxt.inputs[0])[2:]
            kernel = a["kernel_shape"] if nxt.op != "Conv" else graph.shape(nxt.inputs[1])[2:]
            own = window(padded, kernel, a)
            a["pads"] = [b + p for b, p in zip(begin, own.pads_begin)] + [e + p for e, p in zip(end, own.pads_end)]
            a["auto_pad"] = "NOTSET"
            if nxt.op == "AveragePool":
                a["count_include_pad"] = 1
            graph.rename_uses(pad.outputs[0], pad.inputs[0])
            graph.remove_node(pad.name)
            graph.tensors.pop(pad.outputs[0], None)
            modified = True
        return PassResult(graph, modified)

    def ensures(self, graph: Graph) -> None:
        left = [n.name for n in graph.nodes if n.op == "Pad" and _fusable(graph, n) is not None]
        if left:
            raise AssertionError(f"fusable Pad nodes remain: {left!r}")
