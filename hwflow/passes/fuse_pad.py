"""Fuse a standalone Pad (TF's explicit padding) into the Conv, AveragePool or MaxPool after it.

A zero Pad is a Conv's own padding, and an AveragePool's that counts the padding. A
MaxPool's own padding never wins (-inf; the minimum code in the integer contract), so a
Pad before it fuses when its value never wins either: -inf (or float32's lowest), or 0
on a tensor that is never negative (a Relu's, a Clip's with min >= 0, a Sigmoid's, or a
layer's with such a fused activation), while every window keeps a real cell.
"""

from __future__ import annotations

import numpy as np

from ..ir._geometry import window
from ..ir.graph import Graph, Node
from ._util import sole_consumer
from .base import Pass, PassResult

__all__ = ["FusePad"]


_NONNEGATIVE = ("Relu", "Sigmoid")


def _never_negative(graph: Graph, tensor: str) -> bool:
    """Whether ``tensor`` is a Relu's, Sigmoid's or Clip's (min >= 0) output, or a layer's with
    such a fused activation."""
    node = graph.producer(tensor)
    if node is None:
        return False
    act = node.attrs.get("activation") or {"op": node.op, "min": node.attrs.get("min")}
    return act["op"] in _NONNEGATIVE or act["op"] == "Clip" and act.get("min") is not None and act["min"] >= 0


def _spatial_pads(graph: Graph, pad: Node, maxpool: bool = False) -> tuple[list[int], list[int]] | None:
    """(begin, end) over the spatial axes of a constant Pad of an NC... tensor that pads only
    those axes, by non-negative amounts, with 0 (``maxpool``: a value no MaxPool window's
    maximum can be); None for any other Pad."""
    a = pad.attrs
    rank = len(graph.shape(pad.inputs[0]))
    pads = [int(p) for p in a.get("pads", ())]
    if rank < 3 or len(pads) != 2 * rank or min(pads) < 0:
        return None
    if (a.get("mode") or "constant") not in ("constant", b"constant"):
        return None
    value = float(a.get("value", 0.0))
    lowest = value <= float(np.finfo(np.float32).min)
    if not (value == 0.0 and (not maxpool or _never_negative(graph, pad.inputs[0])) or maxpool and lowest):
        return None
    begin, end = pads[:rank], pads[rank:]
    if any(begin[:2]) or any(end[:2]):  # batch or channel padding is no window padding
        return None
    return begin[2:], end[2:]


def _fusable(graph: Graph, pad: Node) -> Node | None:
    """The Conv or AveragePool that ``pad`` can be fused into, if any.

    Zero padding is the Conv's own padding; an AveragePool's only when its padding counts
    in the mean (``count_include_pad``) or it has none. A MaxPool's padding never wins: a
    Pad that never wins either, and leaves a real cell in every window, is its padding.
    """
    nxt = sole_consumer(graph, pad.outputs[0])
    if nxt is None or nxt.inputs[0] != pad.outputs[0]:
        return None
    if nxt.op == "MaxPool":
        sp = _spatial_pads(graph, pad, maxpool=True)
        if sp is None or len(nxt.outputs) > 1 and nxt.outputs[1]:
            return None
        own = window(graph.shape(nxt.inputs[0])[2:], nxt.attrs["kernel_shape"], nxt.attrs)
        total = [b + e for b, e in zip(sp[0], own.pads_begin)] + [e + p for e, p in zip(sp[1], own.pads_end)]
        return nxt if all(p < k for p, k in zip(total, list(nxt.attrs["kernel_shape"]) * 2)) else None
    if _spatial_pads(graph, pad) is None:
        return None
    if nxt.op == "Conv":
        return nxt
    if nxt.op == "AveragePool":
        own = window(graph.shape(nxt.inputs[0])[2:], nxt.attrs["kernel_shape"], nxt.attrs)
        if int(nxt.attrs.get("count_include_pad", 0)) or not any(own.pads):
            return nxt
    return None


class FusePad(Pass):
    """Fold ``Pad(x) -> Conv/AveragePool/MaxPool`` into the layer's ``pads`` (explicit, begin and end
    per axis, so TF's asymmetric 'same' padding survives); ``auto_pad`` is resolved first."""

    def call(self, graph: Graph) -> PassResult:
        modified = False
        for pad in list(graph.nodes):
            if pad.op != "Pad" or (nxt := _fusable(graph, pad)) is None:
                continue
            begin, end = _spatial_pads(graph, pad, maxpool=nxt.op == "MaxPool")
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
