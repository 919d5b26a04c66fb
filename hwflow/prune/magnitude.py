"""Unstructured magnitude pruning: zero the smallest Conv/Gemm weights to a target sparsity."""

from __future__ import annotations

import numpy as np

from ..errors import OptionError
from ..ir.graph import Graph
from ._layers import get_weight, set_weight, weight_nodes
from ._qweights import replace_qweights

__all__ = ["prune_magnitude", "check_sparsity", "mask_qgraph"]


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """Return ``sparsity`` as a float, or raise OptionError unless it is in [0, 1)."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise OptionError(f"{what} must be a number in [0, 1), not {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise OptionError(f"{what} must be in [0, 1) (fraction of weights set to zero), not {sparsity!r}")
    return s


def prune_magnitude(graph: Graph, sparsity: float | dict[str, float], scope: str = "layer") -> tuple[Graph, dict]:
    """Zero the weights of smallest magnitude.

    Parameters
    ----------
    graph : Graph
        An optimized float graph (not modified).
    sparsity : float or dict of str to float
        Fraction of weights to zero, in [0, 1): one figure for every Conv/Gemm, or a
        dict ``{node name: sparsity}`` (layers not named stay dense).
    scope : {"layer", "global"}
        ``layer``: each layer reaches ``sparsity`` on its own (small layers keep their
        share). ``global``: one magnitude threshold over all layers, so layers with many
        small weights lose more. A dict of sparsities is always per layer.

    Returns
    -------
    graph : Graph
        A pruned copy.
    masks : dict of str to numpy.ndarray of bool
        Per node, ``True`` where the weight is kept (output channels first).

    Raises
    ------
    OptionError
        A sparsity outside [0, 1), an unknown scope or layer name.
    """
    if scope not in ("layer", "global"):
        raise OptionError(f"pruning scope must be 'layer' or 'global', not {scope!r}")
    g = graph.copy()
    nodes = weight_nodes(g)
    names = [n.name for n in nodes]
    if isinstance(sparsity, dict):
        unknown = sorted(set(sparsity) - set(names))
        if unknown:
            raise OptionError(f"unknown layer(s) {', '.join(map(repr, unknown))} to prune; layers are: {', '.join(names)}")
        targets = {k: check_sparsity(v, f"sparsity of layer {k!r}") for k, v in sparsity.items()}
        scope = "layer"
    else:
        s = check_sparsity(sparsity)
        targets = {k: s for k in names}
    weights = {n.name: get_weight(g, n) for n in nodes}
    masks: dict[str, np.ndarray] = {}
    if scope == "global":
        allw = np.concatenate([np.abs(w).ravel() for w in weights.values()])
        k = int(round(targets[names[0]] * allw.size)) if names else 0
        order = np.argsort(allw, kind="stable")  # ties broken by position: deterministic
        keep = np.ones(allw.size, bool)
        keep[order[:k]] = False
        pos = 0
        for name, w in weights.items():
            masks[name] = keep[pos:pos + w.size].reshape(w.shape)
            pos += w.size
    else:
        for name, w in weights.items():
            if name not in targets:
                continue
            k = int(round(targets[name] * w.size))
            order = np.argsort(np.abs(w).ravel(), kind="stable")
            keep = np.ones(w.size, bool)
            keep[order[:k]] = False
            masks[name] = keep.reshape(w.shape)
    for node in nodes:
        if node.name in masks:
            set_weight(g, node, np.where(masks[node.name], weights[node.name], 0.0))
    g.verify()
    return g, masks


def mask_qgraph(qg, masks: dict[str, np.ndarray]) -> None:
    """Zero the integer weights of ``qg`` where ``masks`` (from :func:`prune_magnitude`) are False.

    Quantization may move a pruned weight off zero (GPTQ spreads rounding errors onto
    the weights not yet rounded); this puts the zeros back, with the zero-point fold of
    the bias kept exact, and marks each layer ``attrs["pruned"] = True``.

    Raises
    ------
    OptionError
        For a layer with binary weights (±1: no zero to prune to).
    """
    for layer in qg.layers:
        nodes = layer.attrs.get("nodes") or [layer.name]
        mask = next((masks[n] for n in nodes if n in masks), None)
        if layer.weight is None or mask is None:
            continue
        if mask.shape != layer.weight.shape:
            raise ValueError(f"layer {layer.name!r}: mask shape {mask.shape!r} != weight {layer.weight.shape!r}")
        if layer.wformat == "binary":
            raise OptionError(f"layer {layer.name!r} has binary weights (±1, no zero); magnitude pruning (--prune) "
                              f"needs int, pot or ternary weights")
        replace_qweights(qg, layer, np.where(mask, layer.weight, 0))
        layer.attrs["pruned"] = True
