"""Accuracy recovery on the float plan: k-sigma clamping, cross-layer equalization,
bias correction (Nagel et al., "Data-Free Quantization", 2019)."""

from __future__ import annotations

import numpy as np

from ..ir import kernels
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

    Conv and Gemm are linear, so the mean of ``W·x`` over samples and output positions
    is ``W`` times the mean input patch: one sum over the data, no convolution.
    """
    p = mean_patch(fl, np.asarray(x, dtype=np.float64))
    if x_hat is None:
        err = _apply(fl, w_deq - fl.weight, p)
    else:
        err = _apply(fl, w_deq, mean_patch(fl, np.asarray(x_hat, np.float64))) - _apply(fl, fl.weight, p)
    return fl.bias - err


def mean_patch(fl: FLayer, x: np.ndarray) -> np.ndarray:
    """The mean over samples and output positions of the input patch a Conv/Gemm output
    reads (zero padding included): ``(C, *kernel)``, or ``(K,)`` for a Gemm."""
    if fl.op == "gemm":
        return x.reshape(len(x), -1).mean(axis=0)
    win = fl.window(x.shape[2:])
    r = len(win.kernel)
    total = x.sum(axis=0, keepdims=True)  # summing the samples first: the windows see one map
    v = kernels.windows(kernels.pad_windows(total, win, 0), win)  # 1, C, *out, *kernel
    n_out = len(x) * int(np.prod(win.out, dtype=np.int64))
    return v.sum(axis=(0, *range(2, 2 + r))) / n_out


def _apply(fl: FLayer, w: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``w`` (the layer's weight layout) applied to mean patch ``p``: the mean output per channel."""
    if fl.op == "gemm":
        return w @ p
    g = fl.groups
    m = w.shape[0]
    return np.matmul(w.reshape(g, m // g, -1), p.reshape(g, -1, 1)).reshape(m)
