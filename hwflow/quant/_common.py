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


_SEARCH_ELEMENTS = 1 << 17


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
    lo, qmax = int_range(bits)
    amax = np.abs(rows_eval).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    if not search:
        return amax / qmax
    ratios = np.concatenate([[1.0], np.linspace(0.3, 0.99, 70)])
    errs = np.empty((ratios.size, len(rows_eval)))
    # Blocks of rows x ratios of about _SEARCH_ELEMENTS: temporaries that small are
    # reused by the allocator, where larger ones cost a page fault per 4 KiB each time.
    step = max(1, _SEARCH_ELEMENTS // rows_eval.shape[1])
    for r0 in range(0, len(rows_eval), step):
        rows = rows_eval[r0:r0 + step]
        per = max(1, _SEARCH_ELEMENTS // rows.size)
        for c0 in range(0, ratios.size, per):
            s = (amax[None, r0:r0 + step] * ratios[c0:c0 + per, None] / qmax)[:, :, None]  # (R, C, 1)
            v = rows[None] / s
            q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), lo, qmax)
            errs[c0:c0 + per, r0:r0 + step] = ((q * s - rows[None]) ** 2).mean(axis=2)
    best = np.argmin(errs, axis=0)  # first minimum: ties keep the widest
    return amax * ratios[best] / qmax
