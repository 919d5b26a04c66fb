"""Small graph queries and rewrites shared by the passes."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node


def sole_consumer(graph: Graph, tensor: str) -> Node | None:
    """The only node reading ``tensor`` if there is exactly one and it is not a graph output."""
    if tensor in graph.outputs:
        return None
    consumers = graph.consumers(tensor)
    return consumers[0] if len(consumers) == 1 else None


def bypass(graph: Graph, node: Node, keep: str) -> None:
    """Remove ``node``, making every reader of its (first) output read ``keep`` instead.

    A graph output keeps its name: the tensor ``keep`` is renamed to it instead,
    when ``keep`` is an intermediate tensor.
    """
    out = node.outputs[0]
    graph.remove_node(node.name)
    if out in graph.outputs and graph.producer(keep) is not None and keep not in graph.outputs:
        for t in node.outputs:
            graph.tensors.pop(t, None)
        graph.rename_tensor(keep, out)
        return
    graph.rename_uses(out, keep)
    for t in node.outputs:
        if t and t not in graph.outputs and not graph.consumers(t):
            graph.tensors.pop(t, None)


def absorb(graph: Graph, producer: Node, follower: Node) -> None:
    """Remove ``follower`` (which read ``producer``'s output) and let ``producer`` stand in for it."""
    bypass(graph, follower, producer.outputs[0])


def channel_vector(c: np.ndarray, out_shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """``c`` as a vector along ``axis`` of ``out_shape`` if broadcasting it varies only there."""
    c = np.asarray(c)
    if c.ndim > len(out_shape):
        return None
    full = (1,) * (len(out_shape) - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(full) if i != axis):
        return None
    if full[axis] not in (1, out_shape[axis]):
        return None
    return np.broadcast_to(c.reshape(-1), (out_shape[axis],)).copy() if c.size == 1 else c.reshape(-1).copy()


def fits(dtype: np.dtype, *arrays: np.ndarray) -> bool:
    """True if every array is finite once cast to ``dtype`` (a fold must not create Inf/NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(np.isfinite(np.asarray(a).astype(dtype)).all() for a in arrays)
