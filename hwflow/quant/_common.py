"""Float helpers shared by the schemes: fake quantization, MSE, scale search."""

from __future__ import annotations

import numpy as np

from .arith import int_range


def fake_quant(x: np.ndarray, scale, zero_point, bits: int) -> np.ndarray:
    """Quantize then dequantize ``x`` (round half away from zero, as QTensor.quantize)."""
    lo, hi = int_range(bits)
    v = np.asarray(x, dtype=np.float64) / scale
    q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point, lo, hi)
    return (q - zero_point) * scale


def channel_rows(w: np.ndarray) -> np.ndarray:
    """A weight as ``(Cout, K)`` rows (float64)."""
    return np.asarray(w, dtype=np.float64).reshape(w.shape[0], -1)


def weight_mse(rows: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    """Per-row MSE of symmetric quantization of ``rows`` with per-row ``scale``."""
    return ((fake_quant(rows, scale[:, None], 0, bits) - rows) ** 2).mean(axis=1)


def symmetric_weight_scale(w: np.ndarray, bits: int, per_channel: bool, search: bool = True) -> np.ndarray:
    """Symmetric weight scale, per row or per tensor (shape ``(Cout,)`` or ``(1,)``).

    With ``search``, the clipping threshold is the one of a grid below ``max|w|`` that
    minimizes the quantization MSE (matters at 2..5 bits; at 8 bits it stays ~max).
    """
    rows = channel_rows(w)
    if not per_channel:
        rows_eval = rows.reshape(1, -1)
    else:
        rows_eval = rows
    qmax = int_range(bits)[1]
    amax = np.abs(rows_eval).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    best = amax / qmax
    if search:
        best_err = weight_mse(rows_eval, best, bits)
        for ratio in np.linspace(0.3, 0.99, 70):
            s = amax * ratio / qmax
            err = weight_mse(rows_eval, s, bits)
            better = err < best_err
            best = np.where(better, s, best)
            best_err = np.where(better, err, best_err)
    return best
