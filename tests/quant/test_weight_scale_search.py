"""The blocked clipping search of symmetric_weight_scale equals the search over every ratio at once."""

import numpy as np
import pytest

from hwflow.quant import _common
from hwflow.quant._common import symmetric_weight_scale
from hwflow.quant.arith import int_range


def _direct(w: np.ndarray, bits: int, per_channel: bool) -> np.ndarray:
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    rows = rows if per_channel else rows.reshape(1, -1)
    lo, qmax = int_range(bits)
    amax = np.abs(rows).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    ratios = np.concatenate([[1.0], np.linspace(0.3, 0.99, 70)])
    s = (amax[None, :] * ratios[:, None] / qmax)[:, :, None]
    v = rows[None] / s
    q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), lo, qmax)
    return amax * ratios[np.argmin(((q * s - rows[None]) ** 2).mean(axis=2), axis=0)] / qmax


@pytest.mark.parametrize("shape", [(16, 3, 3, 3), (40, 300), (3, 5000), (7, 1)])
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_blocked_search_is_the_direct_search(shape, bits, per_channel, monkeypatch):
    monkeypatch.setattr(_common, "_SEARCH_ELEMENTS", 1000)  # many blocks of rows and of ratios
    rng = np.random.default_rng(sum(shape) + bits)
    w = rng.standard_normal(shape) * rng.uniform(0.1, 2.0, (shape[0],) + (1,) * (len(shape) - 1))
    np.testing.assert_array_equal(symmetric_weight_scale(w, bits, per_channel), _direct(w, bits, per_channel))
