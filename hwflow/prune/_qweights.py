"""Replace a quantized layer's integer weights while keeping the zero-point fold exact."""

from __future__ import annotations

import numpy as np

from ..quant.arith import int_range
from ..quant.qgraph import QGraph, QLayer

__all__ = ["replace_qweights"]


def replace_qweights(qg: QGraph, layer: QLayer, w: np.ndarray) -> None:
    """Give ``layer`` the integer weights ``w``, moving its bias by the zero-point fold.

    The QGraph's bias holds ``bias - z_in * sum(w[c])`` (see :mod:`hwflow.quant.qgraph`);
    new weights change that sum, so the bias moves by ``z_in * (sum(w_old) - sum(w_new))``
    and the layer still computes ``bias + sum((q_in - z_in) * w_new)`` exactly.
    """
    w = np.asarray(w, dtype=np.int64)
    if w.shape != layer.weight.shape:
        raise ValueError(f"layer {layer.name!r}: new weight shape {w.shape!r} != {layer.weight.shape!r}")
    if not layer.weight_format.contains(w):
        raise ValueError(f"layer {layer.name!r}: new weights are not all {layer.wformat}{layer.wbits} values")
    z_in = qg.tensors[layer.inputs[0]].zero_point
    old = layer.weight.reshape(layer.weight.shape[0], -1).sum(axis=1)
    new = w.reshape(w.shape[0], -1).sum(axis=1)
    bias = layer.bias + z_in * (old - new)
    blo, bhi = int_range(32)
    layer.bias = np.clip(bias, blo, bhi).astype(np.int64)
    layer.weight = w
