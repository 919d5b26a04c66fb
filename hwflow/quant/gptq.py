"""Error-compensating weight rounding (GPTQ: Frantar et al., 2022, after Optimal Brain
Quantization).

Rounding each weight to its nearest code ignores that the errors of one output's
weights add up on correlated inputs. GPTQ quantizes the inputs of a layer one at a
time and spreads each rounding error over the weights not yet quantized, weighted by
the inverse of the inputs' second-moment matrix ``H = XᵀX`` from calibration data, so
the layer's output error ``‖(W - Q)X‖²`` is what gets minimised. The scales are
chosen beforehand (by the scheme); only the integer codes change.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._lower import FLayer
from .arith import int_range

__all__ = ["gptq_codes", "layer_inputs"]


def layer_inputs(fl: FLayer, x: np.ndarray, max_rows: int = 20000, seed: int = 0) -> list[np.ndarray]:
    """Per group, the rows the layer's weights multiply: ``(rows, K)`` float64.

    Gemm: the flattened input; Conv: im2col patches (zero padding, as the float op).
    """
    x = np.asarray(x, dtype=np.float64)
    if fl.op == "gemm":
        groups = [x.reshape(x.shape[0], -1)]
    else:
        t, l, b, r = fl.pads
        xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))
        win = sliding_window_view(xp, fl.kernel, axis=(2, 3))[:, :, :: fl.strides[0], :: fl.strides[1]]
        n, c, oh, ow, kh, kw = win.shape
        cg = c // fl.groups
        win = win.reshape(n, fl.groups, cg, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
        groups = list(win.reshape(fl.groups, n * oh * ow, cg * kh * kw))
    rng = np.random.default_rng(seed)
    return [g[rng.choice(len(g), max_rows, replace=False)] if len(g) > max_rows else g for g in groups]


def _gptq_rows(w: np.ndarray, s: np.ndarray, x: np.ndarray, bits: int, damp: float) -> np.ndarray:
    """Codes for ``w`` (C, K) with per-row scales ``s`` given inputs ``x`` (rows, K)."""
    lo, hi = int_range(bits)
    h = x.T @ x / max(len(x), 1)
    w = w.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    order = np.argsort(-np.diag(h), kind="stable")  # "act order": most active inputs first
    inv = np.argsort(order)
    w, h = w[:, order], h[np.ix_(order, order)]
    h[np.diag_indices_from(h)] += damp * np.mean(np.diag(h))
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper factor of H^-1
    except np.linalg.LinAlgError:
        return np.clip(np.sign(w) * np.floor(np.abs(w / s[:, None]) + 0.5), lo, hi)[:, inv]
    q = np.empty_like(w)
    for i in range(w.shape[1]):
        col = w[:, i]
        code = np.clip(np.sign(col / s) * np.floor(np.abs(col / s) + 0.5), lo, hi)
        q[:, i] = code
        err = (col - code * s) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return q[:, inv]


def gptq_codes(fl: FLayer, s_c: np.ndarray, bits: int, x: np.ndarray, damp: float = 0.01) -> np.ndarray:
    """Integer weight codes of ``fl`` (shape of its weight) for per-channel scales ``s_c``.

    Parameters
    ----------
    fl : FLayer
        A Conv or Gemm.
    s_c : numpy.ndarray
        Scale per output channel ``(Cout,)``.
    bits : int
        Weight width.
    x : numpy.ndarray
        The layer's float input on calibration data.
    damp : float
        Fraction of the mean diagonal added to ``H`` (numerical stability).
    """
    w = fl.weight.reshape(fl.weight.shape[0], -1)
    cout = w.shape[0]
    per = cout // fl.groups
    out = np.empty_like(w)
    for g, xg in enumerate(layer_inputs(fl, x)):
        rows = slice(g * per, (g + 1) * per)
        out[rows] = _gptq_rows(w[rows], s_c[rows], xg, bits, damp)
    return out.reshape(fl.weight.shape).astype(np.int64)
