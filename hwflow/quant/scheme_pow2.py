"""Power-of-2 scheme: every scale is ``2**e``, so requantizing is a shift (``M = 1``).

For each weight channel (or tensor) and each activation, the exponent is the floor or
the ceiling of ``log2(max / qmax)``, whichever quantizes with the smaller MSE: the
ceiling never clips, the floor halves the step and clips the tail.
"""

from __future__ import annotations

import numpy as np

from ._common import channel_rows, weight_mse
from ._scheme import Scheme
from .arith import int_range
from .calibrate import RangeSketch, quant_mse

__all__ = ["Pow2Scheme"]


def _exponents(amax: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    amax = np.where(amax > 0, amax, 1.0)
    ceil = np.ceil(np.log2(amax / int_range(bits)[1]))
    return ceil - 1, ceil


class Pow2Scheme(Scheme):
    """Shift-only requantization; no multiplier in hardware."""

    name = "pow2"

    def weight_scale(self, w, bits, per_channel):
        rows = channel_rows(w)
        if not per_channel:
            rows = rows.reshape(1, -1)
        lo, hi = _exponents(np.abs(rows).max(axis=1), bits)
        s_lo, s_hi = np.exp2(lo), np.exp2(hi)
        return np.where(weight_mse(rows, s_lo, bits) < weight_mse(rows, s_hi, bits), s_lo, s_hi)

    def weight_scale_candidates(self, w, bits, per_channel):
        rows = np.abs(channel_rows(w))
        amax = rows.max(axis=1) if per_channel else np.full(w.shape[0], rows.max())
        lo, hi = _exponents(amax, bits)
        return [np.exp2(lo), np.exp2(hi), np.exp2(lo - 1)]

    def act_params(self, lo, hi, bits, values=None):
        amax = max(abs(float(lo)), abs(float(hi)))
        e_lo, e_hi = (float(e[0]) for e in _exponents(np.array([amax]), bits))
        if values is None or (values.count if isinstance(values, RangeSketch) else np.size(values)) == 0:
            return float(np.exp2(e_hi)), 0
        errs = [quant_mse(values, float(np.exp2(e)), 0, bits) for e in (e_lo, e_hi)]
        return float(np.exp2(e_lo if errs[0] < errs[1] else e_hi)), 0

    def multiplier(self, r):
        r = np.atleast_1d(np.asarray(r, dtype=np.float64))
        n = -np.round(np.log2(r)).astype(np.int64)
        if not np.allclose(np.exp2(-n.astype(np.float64)), r, rtol=1e-12):
            raise ValueError(f"pow2 multipliers must be powers of two, not {r!r}")
        return np.ones_like(n), n, 1
