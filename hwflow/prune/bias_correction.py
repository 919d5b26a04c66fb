"""Bias correction after pruning: give each layer back its original mean output.

Pruning (unstructured or structured) shifts the mean of every layer's output: the zeroed
weights, and in the layer after a channel pruning the removed channels, contributed
``E[w x]`` that is now missing. For each pruned Conv/Gemm in order, the correction runs
the original and the pruned graph on calibration data and adds to the bias the difference
of the layer's mean output (before its activation) per output channel. Layers are corrected
in topological order on the already corrected graph, so a layer also absorbs the mean
shift its inputs still carry.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..ir.graph import Graph
from ..ref.float import run_float
from ._layers import get_bias, linear, set_bias, weight_nodes

__all__ = ["correct_bias"]


def _means(y: np.ndarray) -> np.ndarray:
    """Per output channel mean over the batch (and pixels)."""
    return y.mean(axis=(0, 2, 3)) if y.ndim == 4 else y.mean(axis=0)


def correct_bias(original: Graph, pruned: Graph, calib: np.ndarray) -> tuple[Graph, dict[str, np.ndarray]]:
    """Correct the biases of ``pruned`` so each layer's mean output matches ``original``.

    Parameters
    ----------
    original : Graph
        The graph before pruning.
    pruned : Graph
        The pruned graph (not modified); ``meta["kept_channels"]`` tells which original
        output channels a structurally pruned layer kept.
    calib : numpy.ndarray
        Calibration inputs ``(N, *input_shape[1:])``.

    Returns
    -------
    graph : Graph
        The corrected copy.
    shifts : dict of str to numpy.ndarray
        The amount added to each layer's bias.
    """
    calib = np.asarray(calib, dtype=np.float32)
    if calib.ndim < 1 or calib.shape[0] == 0:
        raise DataError(f"bias correction needs calibration data, got shape {calib.shape!r}")
    g = pruned.copy()
    kept = g.meta.get("kept_channels", {})
    orig_nodes = {n.name: n for n in weight_nodes(original)}
    env_o = run_float(original, calib, keep=True)
    shifts: dict[str, np.ndarray] = {}
    for node in weight_nodes(g):
        on = orig_nodes.get(node.name)
        if on is None:
            continue
        want = _means(linear(original, on, env_o[on.inputs[0]]))
        if node.name in kept:
            want = want[np.asarray(kept[node.name], dtype=np.int64)]
        env_p = run_float(g, calib, keep=True)
        have = _means(linear(g, node, env_p[node.inputs[0]]))
        shift = want - have
        if np.abs(shift).max(initial=0.0) == 0.0:
            continue
        set_bias(g, node, get_bias(g, node) + shift)
        shifts[node.name] = shift
    g.verify()
    return g, shifts
