"""The interface every scheme implements (one scheme a file: scheme_*.py)."""

from __future__ import annotations

import numpy as np

from .arith import int_range


class Scheme:
    """How scales, zero points and requantizer multipliers are chosen.

    Subclasses set ``name`` and implement :meth:`weight_scale`, :meth:`act_params` and
    :meth:`multiplier`.
    """

    name = ""
    #: whether activations may have a non-zero zero point
    zero_points = False

    def __init__(self, mbits: int = 16):
        self.mbits = mbits

    def weight_scale(self, w: np.ndarray, bits: int, per_channel: bool) -> np.ndarray:
        """Scale per output channel ``(Cout,)`` or per tensor ``(1,)``; weights have z = 0."""
        raise NotImplementedError

    def weight_scale_candidates(self, w: np.ndarray, bits: int, per_channel: bool) -> list[np.ndarray]:
        """Other scales (each ``(Cout,)``) worth trying when rounding can compensate errors
        (GPTQ picks by output error): clipping ratios of ``max|w|`` by default."""
        rows = np.abs(np.asarray(w, np.float64).reshape(w.shape[0], -1))
        amax = rows.max(axis=1) if per_channel else np.full(w.shape[0], rows.max())
        amax = np.where(amax > 0, amax, 1.0)
        qmax = int_range(bits)[1]
        return [amax * r / qmax for r in (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)]

    def act_params(self, lo: float, hi: float, bits: int, values=None) -> tuple[float, int]:
        """``(scale, zero_point)`` of an activation tensor with real range ``[lo, hi]``;
        ``values`` (an array or :class:`~hwflow.quant.calibrate.RangeSketch`), when given,
        lets a scheme measure its error (:func:`~hwflow.quant.calibrate.quant_mse`)."""
        raise NotImplementedError

    def multiplier(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(m, n, mbits)`` with ``m / 2**n ≈ r`` elementwise (``r > 0``)."""
        raise NotImplementedError


def fixed_point(r: np.ndarray, mbits: int, max_shift: int = 62) -> tuple[np.ndarray, np.ndarray]:
    """Unsigned ``m`` of ``mbits`` bits and shift ``n`` with ``m / 2**n`` closest to ``r``.

    ``m`` is normalised into ``[2**(mbits-1), 2**mbits)`` so it keeps every bit of
    precision; ``n`` may be <= 0 (a left shift) for ``r >= 2**(mbits-1)``.
    """
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    if not (np.isfinite(r).all() and (r > 0).all()):
        raise ValueError(f"multipliers must be finite and > 0, not {r!r}")
    _, e = np.frexp(r)  # r = f * 2**e with f in [0.5, 1)
    n = (mbits - e).astype(np.int64)
    n = np.minimum(n, max_shift)
    m = np.round(np.ldexp(r, n)).astype(np.int64)
    over = m >= (1 << mbits)
    m = np.where(over, m >> 1, m)
    n = np.where(over, n - 1, n)
    return m.astype(np.int64), n.astype(np.int64)


def range_with_zero(lo: float, hi: float) -> tuple[float, float]:
    """Widen ``[lo, hi]`` to contain 0 (real zero must be exact)."""
    return min(float(lo), 0.0), max(float(hi), 0.0)


def symmetric_act_scale(lo: float, hi: float, bits: int) -> float:
    """Scale putting ``max(|lo|, |hi|)`` at the largest positive code."""
    amax = max(abs(float(lo)), abs(float(hi)))
    return amax / int_range(bits)[1] if amax > 0 else 1.0
