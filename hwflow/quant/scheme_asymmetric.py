"""Asymmetric scheme: activations carry a zero point, weights stay symmetric.

The zero point costs nothing in the datapath: the quantizer folds ``-z_in·Σw[c]`` into
the bias and padding inserts ``z_in`` (see :mod:`hwflow.quant.qgraph`). Its benefit is
that a one-sided tensor (after ReLU) uses every code instead of half of them.
"""

from __future__ import annotations

from .arith import int_range
from ._common import symmetric_weight_scale
from ._scheme import Scheme, fixed_point, range_with_zero

__all__ = ["AsymmetricScheme"]


class AsymmetricScheme(Scheme):
    """Affine activations ``r = s·(q - z)``; ``M`` of ``mbits`` bits plus a shift."""

    name = "asymmetric"
    zero_points = True

    def weight_scale(self, w, bits, per_channel):
        return symmetric_weight_scale(w, bits, per_channel)

    def act_params(self, lo, hi, bits, values=None):
        lo, hi = range_with_zero(lo, hi)
        qlo, qhi = int_range(bits)
        if hi - lo <= 0:
            return 1.0, 0
        scale = (hi - lo) / (qhi - qlo)
        z = int(min(max(round(qlo - lo / scale), qlo), qhi))
        return scale, z

    def multiplier(self, r):
        m, n = fixed_point(r, self.mbits)
        return m, n, self.mbits
