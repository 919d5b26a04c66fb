"""Accuracy recovery on the float plan: k-sigma clamping, cross-layer equalization,
bias correction (Nagel et al., "Data-Free Quantization", 2019)."""

from __future__ import annotations

import numpy as np

from ._feval import linear
from ._lower import FLayer, Plan

__all__ = ["clamp_weights", "equalize", "equalization_pairs", "bias_correction"]


def clamp_weights(plan: Plan, k: float) -> None:
    """Clamp each output channel's weights to ``mean ± k·std`` (in place).

    Outliers stretch the quantization step of the whole channel; clipping them costs
    less than the precision they take from every other weight.
    """
    for fl in plan.layers:
        if fl.has_weight:
            rows = fl.weight.reshape(fl.weight.shape[0], -1)
            mu, sd = rows.mean(axis=1, keepdims=True), rows.std(axis=1, keepdims=True)
            fl.weight = np.clip(rows, mu - k * sd, mu + k * sd).reshape(fl.weight.shape)


def equalization_pairs(plan: Plan) -> list[tuple[FLayer, FLayer]]:
    """``(first, second)`` Conv/Gemm pairs where ``first`` feeds only ``second``, through
    ReLU or nothing, optionally a MaxPool (both commute with a positive per-channel scale)."""
    pairs = []
    for fl in plan.layers:
        if not fl.has_weight or fl.lut is not None or fl.groups != 1:
            continue
        if fl.clamp is not None and fl.clamp["op"] != "Relu":
            continue  # a Clip max does not commute with scaling
        t = fl.output
        users = plan.consumers(t)
        while len(users) == 1 and users[0].op == "maxpool" and t != plan.output:
            t = users[0].output
            users = plan.consumers(t)
        if len(users) == 1 and users[0].has_weight and users[0].groups == 1 and t != plan.output:
            pairs.append((fl, users[0]))
    return pairs


def equalize(plan: Plan, iterations: int = 20) -> int:
    """Cross-layer equalization (in place); returns the number of pairs equalized.

    For channel ``i`` between ``W1`` (rows) and ``W2`` (the columns reading ``i``),
    ``s_i = sqrt(r1_i / r2_i)``: ``W1[i] /= s_i``, ``b1[i] /= s_i``, ``W2[:, i] *= s_i``
    makes both ranges ``sqrt(r1_i·r2_i)``; the network's function is unchanged.
    """
    pairs = equalization_pairs(plan)
    for _ in range(iterations):
        for a, b in pairs:
            c = a.weight.shape[0]
            r1 = np.abs(a.weight.reshape(c, -1)).max(axis=1)
            w2 = b.weight.reshape(b.weight.shape[0], c, -1)  # gemm reading C*H*W, or conv OIHW
            r2 = np.abs(w2).max(axis=(0, 2))
            ok = (r1 > 0) & (r2 > 0)
            s = np.where(ok, np.sqrt(np.where(ok, r1 / np.where(r2 > 0, r2, 1), 1)), 1.0)
            a.weight = a.weight / s.reshape(-1, *([1] * (a.weight.ndim - 1)))
            a.bias = a.bias / s
            if a.bn is not None:  # the output statistics scale with the channel
                a.bn = (a.bn[0] / s, a.bn[1] / s)
            b.weight = (w2 * s[None, :, None]).reshape(b.weight.shape)
    return len(pairs)


def bias_correction(fl: FLayer, w_deq: np.ndarray, x: np.ndarray, x_hat: np.ndarray | None = None) -> np.ndarray:
    """The float bias plus the mean output error the quantization causes, per channel.

    Empirical (calibration data): ``x`` is the layer's float input and ``x_hat`` the
    same samples as the integer network so far delivers them (dequantized); the
    correction is ``E[W·x] - E[Wq·x_hat]``, so it also cancels the mean shift of
    clipped or rounded activations upstream. Analytical (no data): ``x`` is the
    expected input (from BatchNorm statistics or propagated moments) and
    ``E[(Wq - W)·x] = (Wq - W)·E[x]``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x_hat is None:
        err = linear(fl, x, weight=w_deq - fl.weight, bias=False)
    else:
        err = linear(fl, np.asarray(x_hat, np.float64), weight=w_deq, bias=False) - linear(fl, x, bias=False)
    axes = (0,) + tuple(range(2, err.ndim))
    return fl.bias - err.mean(axis=axes)
