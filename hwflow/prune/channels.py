"""Structured pruning: remove whole output channels of Conv/Gemm layers by L1/L2 norm.

Removing output channel ``c`` of a layer deletes row ``c`` of its weight and bias, the
channel from every per-channel op after it (pooling, activations, BatchNormalization),
and the matching input channel of each layer that reads it: a Conv's input channel ``c``,
or a Gemm's input feature ``c`` (after a Flatten, the block ``c*H*W .. (c+1)*H*W - 1``).
So the MAC work shrinks in both layers, not only the storage.

A layer is left alone (and reported as skipped, with the reason) when its channels are
tied to something else: the graph output (the logits), an Add or a Concat, a grouped
convolution, or any op the op registry does not mark ``per_channel``.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError
from ..ir.graph import Graph, Node
from ..ir.ops import OPS
from ._layers import get_bias, get_weight, set_bias, set_weight, weight_nodes

__all__ = ["prune_channels", "channel_plan"]


def channel_plan(graph: Graph, node: Node) -> tuple[list[Node], list[tuple[Node, int]], str]:
    """What removing output channels of ``node`` touches.

    Returns
    -------
    passes : list of Node
        Per-channel nodes between ``node`` and its readers (BatchNormalization is rewritten).
    sinks : list of (Node, int)
        Readers: a Conv or Gemm and the number of input features per channel (``H*W``
        after a Flatten, else 1).
    reason : str
        Empty if the channels can be removed, else why not.
    """
    if node.op == "Conv" and int(node.attrs.get("group", 1)) != 1:
        return [], [], "grouped convolution"
    passes: list[Node] = []
    sinks: list[tuple[Node, int]] = []
    todo = [node.outputs[0]]
    while todo:
        t = todo.pop()
        if t in graph.outputs:
            return [], [], "its channels are outputs of the network"
        for c in graph.consumers(t):
            if OPS[c.op].per_channel and c.inputs[0] == t:
                passes.append(c)
                todo.append(c.outputs[0])
            elif c.op == "Conv" and c.inputs[0] == t and int(c.attrs.get("group", 1)) == 1:
                sinks.append((c, 1))
            elif c.op == "Gemm" and c.inputs[0] == t and len(graph.shape(t)) == 2 and not c.attrs.get("transA", 0):
                sinks.append((c, 1))
            elif c.op in ("Flatten", "Reshape") and len(graph.shape(t)) == 4 and len(graph.shape(c.outputs[0])) == 2:
                hw = graph.shape(t)[2] * graph.shape(t)[3]
                readers = graph.consumers(c.outputs[0])
                if c.outputs[0] in graph.outputs or not readers or any(
                        r.op != "Gemm" or r.inputs[0] != c.outputs[0] or r.attrs.get("transA", 0) for r in readers):
                    return [], [], f"{c.op} {c.name!r} is not read by Gemm layers only"
                passes.append(c)
                sinks += [(r, hw) for r in readers]
            elif c.attrs.get("host"):
                return [], [], f"its channels feed the host op {c.op} {c.name!r}"
            else:
                return [], [], f"its channels are tied by {c.op} {c.name!r}"
    if not sinks:
        return [], [], "no layer reads it"
    return passes, sinks, ""


def _scores(w: np.ndarray, norm: str) -> np.ndarray:
    flat = w.reshape(w.shape[0], -1)
    return np.abs(flat).sum(axis=1) if norm == "l1" else np.sqrt((flat ** 2).sum(axis=1))


def prune_channels(graph: Graph, fraction: float | dict[str, float], norm: str = "l1") -> tuple[Graph, dict]:
    """Remove the output channels of smallest norm and rewrite the readers.

    Parameters
    ----------
    graph : Graph
        An optimized float graph (not modified).
    fraction : float or dict of str to float
        Fraction of each layer's output channels to remove (rounded down): one figure
        for every prunable layer, or ``{node name: fraction}``.
    norm : {"l1", "l2"}
        Channel score: the L1 or L2 norm of its weights.

    Returns
    -------
    graph : Graph
        The pruned copy (``meta["kept_channels"]`` maps each pruned layer to the
        original indices of the channels it kept).
    report : dict
        ``{"pruned": {name: (before, after)}, "skipped": {name: reason}}``.

    Raises
    ------
    OptionError
        A fraction outside [0, 1), one that removes every channel of a layer, a named
        layer that cannot be pruned, an unknown layer or norm.
    """
    if norm not in ("l1", "l2"):
        raise OptionError(f"channel norm must be 'l1' or 'l2', not {norm!r}")
    g = graph.copy()
    nodes = weight_nodes(g)
    names = [n.name for n in nodes]
    named = isinstance(fraction, dict)
    fractions = dict(fraction) if named else {n: fraction for n in names}
    unknown = sorted(set(fractions) - set(names))
    if unknown:
        raise OptionError(f"unknown layer(s) {', '.join(map(repr, unknown))} to prune; layers are: {', '.join(names)}")
    for name, f in fractions.items():
        try:
            ok = 0.0 <= float(f) < 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise OptionError(f"channel fraction of layer {name!r} must be in [0, 1) "
                              f"(pruning all channels leaves nothing to compute), not {f!r}")
    report: dict = {"pruned": {}, "skipped": {}}
    kept_all: dict[str, list[int]] = dict(g.meta.get("kept_channels", {}))
    for node in nodes:
        if node.name not in fractions:
            continue
        passes, sinks, reason = channel_plan(g, node)
        if reason:
            if named:
                raise OptionError(f"cannot prune channels of layer {node.name!r}: {reason}")
            report["skipped"][node.name] = reason
            continue
        w = get_weight(g, node)
        cout = w.shape[0]
        remove = int(np.floor(float(fractions[node.name]) * cout + 1e-9))
        if remove >= cout:
            raise OptionError(f"pruning {remove} of {cout} channels of layer {node.name!r} removes them all; "
                              f"use a smaller fraction")
        if remove == 0:
            continue
        order = np.argsort(_scores(w, norm), kind="stable")  # ties: lower index removed first
        keep = np.sort(order[remove:])
        _remove(g, node, keep, passes, sinks)
        prev = kept_all.get(node.name, list(range(cout)))
        kept_all[node.name] = [prev[i] for i in keep]
        report["pruned"][node.name] = (cout, len(keep))
    g.meta["kept_channels"] = kept_all
    g.verify()
    return g, report


def _remove(g: Graph, node: Node, keep: np.ndarray, passes: list[Node], sinks: list[tuple[Node, int]]) -> None:
    """Keep only channels ``keep`` of ``node`` and rewrite everything that reads them."""
    w, b = get_weight(g, node), get_bias(g, node)
    cout = w.shape[0]
    set_weight(g, node, w[keep])
    set_bias(g, node, b[keep])
    if node.attrs.get("bn_stats"):  # a folded BatchNorm's statistics are per channel too
        node.attrs["bn_stats"] = {k: np.asarray(v)[keep] for k, v in node.attrs["bn_stats"].items()}
    _set_channels(g, node.outputs[0], len(keep))
    for p in passes:
        if p.op == "BatchNormalization":
            for i in range(1, 5):
                v = g.const(p.inputs[i])
                t = g.add_const(f"{p.name}.param_pruned", np.asarray(v)[keep])
                g.replace_input(p, p.inputs[i], t.name)
        if p.op in ("Flatten", "Reshape"):
            if p.op == "Reshape":
                shape = g.add_const(f"{p.name}.shape_pruned", np.array([1, -1], dtype=np.int64))
                g.replace_input(p, p.inputs[1], shape.name)
            t = g.tensors[p.outputs[0]]
            t.shape = (t.shape[0], t.shape[1] // cout * len(keep))
        else:
            _set_channels(g, p.outputs[0], len(keep))
    for sink, hw in sinks:
        w = get_weight(g, sink)
        if sink.op == "Conv":
            set_weight(g, sink, w[:, keep])
        else:
            cols = (keep[:, None] * hw + np.arange(hw)[None, :]).ravel()
            set_weight(g, sink, w[:, cols])


def _set_channels(g: Graph, tensor: str, c: int) -> None:
    t = g.tensors[tensor]
    t.shape = (t.shape[0], c) + tuple(t.shape[2:])
