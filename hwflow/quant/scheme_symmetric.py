"""Symmetric scheme: zero points 0; requantizer ``M`` of ``mbits`` bits plus a shift."""

from __future__ import annotations

from ._common import symmetric_weight_scale
from ._scheme import Scheme, fixed_point, symmetric_act_scale

__all__ = ["SymmetricScheme"]


class SymmetricScheme(Scheme):
    """Scales are free reals; ``M / 2**n ≈ s_in·s_w[c] / s_out`` with ``M < 2**mbits``."""

    name = "symmetric"

    def weight_scale(self, w, bits, per_channel):
        return symmetric_weight_scale(w, bits, per_channel)

    def act_params(self, lo, hi, bits, values=None):
        return symmetric_act_scale(lo, hi, bits), 0

    def multiplier(self, r):
        m, n = fixed_point(r, self.mbits)
        return m, n, self.mbits
