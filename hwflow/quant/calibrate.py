"""Activation range calibration: minmax, percentile, entropy (TensorRT KL), mse.

Each method maps the observed values of one tensor to a real range ``(lo, hi)`` that
the scheme then turns into a scale and zero point. The values are summarized by a
:class:`RangeSketch`, built while the calibration data streams through the float network
(:func:`hwflow.quant._feval.calibration_pass`): the exact extremes and a fine
log-scale histogram of every value, so the ranges depend on all the data, not on which
values a subsample kept, in bounded memory. ``none`` (no data) lives in
:mod:`hwflow.quant.calibrate_none`.
"""

from __future__ import annotations

import numpy as np

from .arith import int_range

__all__ = ["RangeSketch", "calibrate_range", "entropy_threshold", "minmax_range", "percentile_range", "mse_range",
           "quant_mse"]

#: Mantissa bits of the sketch's bins: 2**MANT_BITS bins an octave, each 2**-MANT_BITS of
#: its values wide (0.8 %).
MANT_BITS = 7
_SHIFT = 23 - MANT_BITS  # of a float32's bits
_KEYS = 1 << (31 - _SHIFT)  # every non-negative float32 (inf included) has a key below this
_F32_MAX = float(np.finfo(np.float32).max)


class RangeSketch:
    """A tensor's values for range calibration: count, exact min and max, and a histogram.

    The histogram's bins follow the float32 encoding of ``|x|`` (exponent and the top
    :data:`MANT_BITS` mantissa bits), one set for each sign: a bin spans 0.8 % of its
    values whatever their magnitude, and the memory is fixed (:data:`_KEYS` counts a sign,
    512 KB). Adding values in any order or batching gives the same counts; the methods
    read the values as spread uniformly inside each bin.
    """

    __slots__ = ("count", "lo", "hi", "counts")

    def __init__(self) -> None:
        self.count = 0
        self.lo, self.hi = np.inf, -np.inf
        self.counts = np.zeros(2 * _KEYS, dtype=np.int64)  # [positive keys | negative keys]

    @classmethod
    def of(cls, values: np.ndarray) -> "RangeSketch":
        """The sketch of ``values``."""
        s = cls()
        s.add(values)
        return s

    @classmethod
    def merge(cls, sketches: list["RangeSketch"]) -> "RangeSketch":
        """One sketch of the values of all ``sketches`` (tensors that share a range)."""
        out = cls()
        for s in sketches:
            out.count += s.count
            out.lo, out.hi = min(out.lo, s.lo), max(out.hi, s.hi)
            out.counts += s.counts
        return out

    def add(self, values: np.ndarray) -> None:
        """Count ``values`` (any shape, finite)."""
        f = np.asarray(values, dtype=np.float64).ravel()
        if f.size == 0:
            return
        self.count += f.size
        self.lo, self.hi = min(self.lo, float(f.min())), max(self.hi, float(f.max()))
        a = np.minimum(np.abs(f), _F32_MAX).astype(np.float32)
        keys = (a.view(np.uint32) >> _SHIFT).astype(np.intp)
        keys[f < 0] += _KEYS
        self.counts += np.bincount(keys, minlength=2 * _KEYS)

    def bins(self, absolute: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(u, v, n)``: the non-empty bins in increasing order, ``n`` values in ``[u, v]``
        each, the ends cut to the observed extremes (of ``|x|`` if ``absolute``)."""
        pos, neg = self.counts[:_KEYS], self.counts[_KEYS:]
        if absolute:
            pos, neg = pos + neg, np.zeros_like(neg)
        kp, kn = np.flatnonzero(pos), np.flatnonzero(neg)[::-1]
        edge = lambda k: (k.astype(np.uint32) << _SHIFT).view(np.float32).astype(np.float64)
        u = np.concatenate([-edge(kn + 1), edge(kp)])
        v = np.concatenate([-edge(kn), edge(kp + 1)])
        n = np.concatenate([neg[kn], pos[kp]]).astype(np.float64)
        lo, hi = (0.0, max(abs(self.lo), abs(self.hi))) if absolute else (self.lo, self.hi)
        return np.clip(u, lo, hi), np.clip(v, lo, hi), n

    def cdf(self, x: np.ndarray, absolute: bool = False) -> np.ndarray:
        """How many values (of ``|x|`` if ``absolute``) lie below ``x``: piecewise linear."""
        u, v, n = self.bins(absolute)
        c = np.cumsum(n)
        xp = np.stack([u, v], axis=1).ravel()
        fp = np.stack([c - n, c], axis=1).ravel()
        return np.interp(x, xp, fp, left=0.0, right=float(self.count))

    def quantile(self, q: float, absolute: bool = False) -> float:
        """The value below which a fraction ``q`` of the values (of ``|x|``) lies."""
        u, v, n = self.bins(absolute)
        c = np.cumsum(n)
        xp = np.stack([u, v], axis=1).ravel()
        fp = np.stack([c - n, c], axis=1).ravel()
        # fp rises (not strictly) with xp: invert on the rising pieces
        return float(np.interp(q * self.count, fp, xp))


def _sketch(values) -> RangeSketch:
    return values if isinstance(values, RangeSketch) else RangeSketch.of(values)


def quant_mse(values, scale, zero_point, bits: int):
    """Mean squared error of quantizing ``values`` (array or :class:`RangeSketch`) with
    ``scale`` and ``zero_point`` to ``bits``-bit codes and back.

    For a sketch, ``scale`` and ``zero_point`` may be arrays (one error per pair), and
    each bin's error is integrated over the bin with its values spread uniformly (in
    closed form: the rounding error's square has a known integral over a code step, and
    the clipped tails are quadratics), so a bin wider than a code step costs no accuracy.
    """
    if not isinstance(values, RangeSketch):
        from ._common import fake_quant

        v = np.asarray(values, dtype=np.float64)
        return float(np.mean((fake_quant(v, scale, zero_point, bits) - v) ** 2))
    qlo, qhi = int_range(bits)
    u, v, n = values.bins()
    scale = np.asarray(scale, dtype=np.float64)[..., None]
    zp = np.asarray(zero_point, dtype=np.float64)[..., None]
    tu, tv = u / scale + zp, v / scale + zp  # the code axis

    def prim(t):  # the integral of (t - clip(round(t)))**2 from qlo - 1/2 to t
        c = np.clip(t, qlo - 0.5, qhi + 0.5)
        k = np.floor(c + 0.5)
        r = c - k
        below, above = np.minimum(t - qlo, -0.5), np.maximum(t - qhi, 0.5)
        # inside, whole steps and the last part; beyond an end the error grows as (t - end)
        return (k - qlo) / 12.0 + (r * r * r + below * below * below + above * above * above + 0.125) / 3.0

    width = tv - tu
    wide = width > 1e-4
    tm = 0.5 * (tu + tv)
    point = (tm - np.clip(np.sign(tm) * np.floor(np.abs(tm) + 0.5), qlo, qhi)) ** 2  # narrow bins: the middle
    mean_sq = np.where(wide, (prim(tv) - prim(tu)) / np.where(wide, width, 1.0), point)
    err = scale[..., 0] ** 2 * (mean_sq @ n) / max(values.count, 1)
    return float(err) if err.ndim == 0 else err


def minmax_range(values) -> tuple[float, float]:
    """The observed ``(min, max)``."""
    if isinstance(values, RangeSketch):
        return float(values.lo), float(values.hi)
    return float(np.min(values)), float(np.max(values))


def percentile_range(values, pct: float = 99.99) -> tuple[float, float]:
    """Clip the two tails at ``pct`` (of |x| for a signed tensor, like onnxruntime).

    Exact for an array (``numpy.percentile``); from the histogram for a sketch (within a
    bin, 0.8 %, of the exact value).
    """
    lo, hi = minmax_range(values)
    if isinstance(values, RangeSketch):
        if lo >= 0:
            return lo, min(hi, values.quantile(pct / 100.0))
        t = values.quantile(pct / 100.0, absolute=True)
        return max(lo, -t), min(hi, t)
    if lo >= 0:
        return lo, float(np.percentile(values, pct))
    t = float(np.percentile(np.abs(values), pct))
    return max(lo, -t), min(hi, t)


def _smooth(p: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """Give empty bins ``eps`` taken evenly from the others (TensorRT/onnxruntime), so
    KL stays finite where Q has a hole that P does not."""
    zero = p == 0
    nz = p.size - int(zero.sum())
    if nz == 0:
        return None
    # scale the non-empty bins (not subtract) so none turns negative
    return np.where(zero, eps, p * (1.0 - eps * zero.sum()))


def entropy_threshold(values, bins: int = 2048, levels: int = 128) -> float:
    """TensorRT's calibration: the ``|x|`` threshold minimising KL(P || Q).

    ``P`` is the histogram of ``|x|`` (``bins`` bins over ``[0, max|x|]``) cut at bin
    ``i`` with the clipped tail added to its last bin; ``Q`` is ``P`` merged into
    ``levels`` quantization bins and expanded back over the non-empty bins. The
    threshold is the upper edge of the best ``i`` (``i`` from ``levels`` to ``bins``).
    Empty bins are smoothed with ``1e-4`` as TensorRT does. ``values`` is an array (its
    exact histogram) or a :class:`RangeSketch` (its bins spread over the linear ones).
    """
    if isinstance(values, RangeSketch):
        amax = max(abs(values.lo), abs(values.hi)) if values.count else 0.0
        if amax == 0.0:
            return 0.0
        edges = np.linspace(0.0, amax, bins + 1)
        hist = np.diff(values.cdf(edges, absolute=True))
        hist[-1] += values.count - values.cdf(np.array([amax]), absolute=True)[0]  # |x| = max itself
        hist[np.abs(hist) < 1e-9] = 0.0
    else:
        a = np.abs(np.asarray(values, dtype=np.float64).ravel())
        amax = float(a.max()) if a.size else 0.0
        if amax == 0.0:
            return 0.0
        hist, edges = np.histogram(a, bins=bins, range=(0.0, amax))
        hist = hist.astype(np.float64)
    # The first bin holds every exact zero (all of ReLU's negatives); left as is it
    # dominates P and drags the threshold down. NVIDIA's pytorch-quantization levels it.
    hist[0] = hist[1]
    best_i, best_kl = bins, np.inf
    for i in range(levels, bins + 1):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        nonzero = hist[:i] != 0
        # merge the i bins into `levels` groups (the last absorbs the remainder)
        group = np.minimum((np.arange(i) * levels) // i, levels - 1)
        sums = np.bincount(group, weights=hist[:i], minlength=levels)
        counts = np.bincount(group, weights=nonzero, minlength=levels)
        q = np.where(nonzero, sums[group] / np.maximum(counts[group], 1), 0.0)
        p_sum, q_sum = p.sum(), q.sum()
        if p_sum == 0 or q_sum == 0:
            continue
        p, q = _smooth(p / p_sum), _smooth(q / q_sum)
        if p is None or q is None:
            continue
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(edges[best_i])


def entropy_range(values, bits: int = 8) -> tuple[float, float]:
    """``(-t, t)`` cut to the observed range, ``t`` from :func:`entropy_threshold`."""
    lo, hi = minmax_range(values)
    t = entropy_threshold(values, levels=1 << (bits - 1))
    return max(lo, -t), min(hi, t)


def mse_range(values, act_params, bits: int, steps: int = 60) -> tuple[float, float]:
    """The clipping range that minimises the quantization MSE of ``values`` (an array or
    a :class:`RangeSketch`; the error is measured on the sketch, :func:`quant_mse`).

    ``act_params(lo, hi, bits) -> (scale, zero_point)`` is the scheme's, so the error
    measured is the one the chosen scheme will really make. Both ends shrink by one
    factor first; then, for a two-sided tensor, each end is refined on its own
    (coordinate descent), which only an asymmetric scheme can turn into a gain.
    """
    sketch = _sketch(values)
    lo, hi = minmax_range(sketch)
    if lo == hi:
        return lo, hi

    def errs(cands: list[tuple[float, float]]) -> np.ndarray:
        sz = np.array([act_params(a, b, bits) for a, b in cands], dtype=np.float64)
        return quant_mse(sketch, sz[:, 0], sz[:, 1], bits)

    fs = np.linspace(1.0, 0.2, steps)
    e = errs([(lo * f, hi * f) for f in fs])
    i = int(np.argmin(e))
    best, best_err = (lo * fs[i], hi * fs[i]), e[i]
    if lo < 0 < hi:
        for _ in range(2):
            for end in (0, 1):  # one end moves, the other stays
                gs = np.linspace(1.3, 0.5, 33)
                moved = np.clip(best[end] * gs, lo, hi)
                cands = [(m, best[1]) if end == 0 else (best[0], m) for m in moved]
                e = errs(cands)
                i = int(np.argmin(e))
                if e[i] < best_err:
                    best, best_err = cands[i], e[i]
    return float(best[0]), float(best[1])


def calibrate_range(method: str, values, bits: int, act_params, percentile: float = 99.99) -> tuple[float, float]:
    """The range of one tensor by ``method`` (minmax | percentile | entropy | mse) from its
    values (an array, or the :class:`RangeSketch` the calibration pass built)."""
    if method == "minmax":
        return minmax_range(values)
    if method == "percentile":
        return percentile_range(values, percentile)
    if method == "entropy":
        return entropy_range(values, bits)
    if method == "mse":
        return mse_range(values, act_params, bits)
    raise ValueError(f"unknown calibration method {method!r}")
