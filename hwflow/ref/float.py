"""The float reference: a numpy interpreter of hwflow's float graph.

It runs raw (just imported) and optimized graphs alike: fused activations
(``attrs["activation"]`` on Conv/Gemm) and the host-side tail (Softmax, LogSoftmax,
ArgMax) are computed too. Its outputs equal onnxruntime's within 1e-5.

Each node is evaluated by its op's kernel in :mod:`hwflow.ir.kernels` (through
:func:`hwflow.ir.ops.run_node`), the very kernels constant folding uses.

Batches: graph shapes have batch 1, but ``x`` may carry any leading batch ``N``; every
kernel works on the batch axis directly, so calibrating on hundreds of samples is cheap.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..ir.graph import Graph, Node
from ..ir.kernels import apply_activation, reshape_target
from ..ir.ops import run_node

__all__ = ["run_float", "run_float_multi", "run_node", "apply_activation"]

def run_float_multi(graph: Graph, feeds: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run ``graph`` on named inputs and return its outputs by name.

    Parameters
    ----------
    graph : Graph
    feeds : dict of str to numpy.ndarray
        One array per graph input. Activations may carry a batch ``N`` on axis 0
        where the graph declares 1.
    keep : bool
        Return every computed tensor (inputs included), not only the outputs.
    """
    env: dict[str, np.ndarray] = {}
    batched, n = False, 1
    for name in graph.inputs:
        if name not in feeds:
            raise DataError(f"no value given for graph input {name!r}")
        t = graph.tensors[name]
        x = np.asarray(feeds[name])
        if x.dtype != t.dtype and not (x.dtype.kind == t.dtype.kind == "b"):
            x = x.astype(t.dtype)
        if x.ndim != len(t.shape) or tuple(x.shape[1:]) != t.shape[1:]:
            raise DataError(
                f"input {name!r} has shape {x.shape!r}; the model expects {t.shape!r} (any batch)"
            )
        if x.ndim > 0 and x.shape[0] != t.shape[0]:
            batched, n = True, x.shape[0]
        env[name] = x

    def value(t: str) -> np.ndarray | None:
        if not t:
            return None
        if t in env:
            return env[t]
        return graph.tensors[t].data

    for node in graph.nodes:
        ins = [value(t) for t in node.inputs]
        on_batch = batched and bool(node.inputs) and not graph.tensors[node.inputs[0]].is_const
        if on_batch:
            _check_batch_axis(graph, node)
        if on_batch and node.op == "Reshape":
            outs = [_batched_reshape(graph, node, ins[0], n)]
        else:
            outs = run_node(node, ins)
        for name, arr in zip(node.outputs, outs):
            if name:
                env[name] = arr
    if keep:
        return env
    return {t: value(t) for t in graph.outputs}


def _check_batch_axis(graph: Graph, node: Node) -> None:
    """Refuse a batch when ``node`` would mix samples (it works on axis 0)."""
    rank = len(graph.shape(node.inputs[0]))
    a = node.attrs
    axes: list[int] = []
    if node.op in ("Concat", "Softmax", "LogSoftmax", "ArgMax"):
        default = {"Concat": 0, "ArgMax": 0, "Softmax": 1 if a.get("coerce_2d") else -1}.get(node.op, -1)
        axes = [int(a.get("axis", default))]
    elif node.op == "Flatten":
        axes = [0] if int(a.get("axis", 1)) == 0 else []  # axis 0 merges the batch into one row
    elif node.op == "Transpose":
        perm = a.get("perm")
        axes = [0] if perm is not None and perm[0] != 0 else ([] if perm is not None or rank < 2 else [0])
    elif node.op in ("Squeeze", "Unsqueeze"):
        axes = [int(x) for x in a.get("axes") or []]
    elif node.op == "Gemm" and a.get("transA"):
        axes = [0]
    if any((x + rank if x < 0 else x) == 0 for x in axes):
        raise DataError(f"node {node.name!r} ({node.op}) works across axis 0, the batch: run one sample at a time")


def _batched_reshape(graph: Graph, node: Node, x: np.ndarray, n: int) -> np.ndarray:
    """Reshape keeping a batch ``n`` that the static shapes declare as 1."""
    out_shape = graph.shape(node.outputs[0])
    if x.ndim and x.shape[0] == n and graph.shape(node.inputs[0])[0] == 1 and out_shape and out_shape[0] == 1:
        return x.reshape((n,) + tuple(out_shape[1:]))
    # not batch-major (e.g. a label lookup's (1, n)): plain ONNX semantics, if they fit
    target = reshape_target(x.shape, graph.const(node.inputs[1]).tolist(), bool(node.attrs.get("allowzero", 0)))
    if int(np.prod(target, dtype=np.int64)) == x.size:
        return x.reshape(target)
    raise DataError(
        f"node {node.name!r} (Reshape) mixes the batch axis into {out_shape!r}; run one sample at a time"
    )


def run_float(graph: Graph, x: np.ndarray, keep: bool = False):
    """Run the float reference on a one-input graph.

    Parameters
    ----------
    graph : Graph
        A raw or optimized graph with exactly one input.
    x : numpy.ndarray
        The input, with the graph's input shape or with any batch ``N`` on axis 0.
    keep : bool
        If True, return a dict of every computed tensor (input and every node output).

    Returns
    -------
    numpy.ndarray or tuple or dict
        The output (a tuple if the graph has several), or the dict with ``keep``.
    """
    if len(graph.inputs) != 1:
        raise DataError(f"run_float needs a one-input graph; {graph.name!r} has inputs {graph.inputs!r}")
    res = run_float_multi(graph, {graph.inputs[0]: x}, keep=keep)
    if keep:
        return res
    outs = tuple(res[t] for t in graph.outputs)
    return outs[0] if len(outs) == 1 else outs
