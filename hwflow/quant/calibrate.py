"""Activation range calibration: minmax, percentile, entropy (TensorRT KL), mse.

Each method maps the observed values of one tensor to a real range ``(lo, hi)`` that
the scheme then turns into a scale and zero point. ``none`` (no data) lives in
:mod:`hwflow.quant.calibrate_none`.
"""

from __future__ import annotations

import numpy as np

from ._common import fake_quant

__all__ = ["calibrate_range", "entropy_threshold", "minmax_range", "percentile_range", "mse_range"]

#: values kept per tensor for calibration (a uniform subsample beyond this; the streamed
#: float pass, :func:`hwflow.quant._feval.calibration_pass`, keeps its exact extremes)
MAX_VALUES = 1 << 18


def subsample(values: np.ndarray, limit: int = MAX_VALUES, seed: int = 0) -> np.ndarray:
    """A flat float64 view of ``values``, uniformly subsampled to at most ``limit``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size > limit:
        v = np.random.default_rng(seed).choice(v, limit, replace=False)
    return v


def minmax_range(v: np.ndarray) -> tuple[float, float]:
    """The observed ``(min, max)``."""
    return float(v.min()), float(v.max())


def percentile_range(v: np.ndarray, pct: float = 99.99) -> tuple[float, float]:
    """Clip the two tails at ``pct`` (of |x| for a signed tensor, like onnxruntime)."""
    lo, hi = minmax_range(v)
    if lo >= 0:
        return lo, float(np.percentile(v, pct))
    t = float(np.percentile(np.abs(v), pct))
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


def entropy_threshold(v: np.ndarray, bins: int = 2048, levels: int = 128) -> float:
    """TensorRT's calibration: the ``|x|`` threshold minimising KL(P || Q).

    ``P`` is the histogram of ``|x|`` (``bins`` bins over ``[0, max|x|]``) cut at bin
    ``i`` with the clipped tail added to its last bin; ``Q`` is ``P`` merged into
    ``levels`` quantization bins and expanded back over the non-empty bins. The
    threshold is the upper edge of the best ``i`` (``i`` from ``levels`` to ``bins``).
    Empty bins are smoothed with ``1e-4`` as TensorRT does.
    """
    a = np.abs(np.asarray(v, dtype=np.float64).ravel())
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


def entropy_range(v: np.ndarray, bits: int = 8) -> tuple[float, float]:
    """``(-t, t)`` cut to the observed range, ``t`` from :func:`entropy_threshold`."""
    lo, hi = minmax_range(v)
    t = entropy_threshold(v, levels=1 << (bits - 1))
    return max(lo, -t), min(hi, t)


def mse_range(v: np.ndarray, act_params, bits: int, steps: int = 60) -> tuple[float, float]:
    """The clipping range that minimises the quantization MSE of ``v``.

    ``act_params(lo, hi, bits) -> (scale, zero_point)`` is the scheme's, so the error
    measured is the one the chosen scheme will really make. Both ends shrink by one
    factor first; then, for a two-sided tensor, each end is refined on its own
    (coordinate descent), which only an asymmetric scheme can turn into a gain.
    """
    lo, hi = minmax_range(v)
    if lo == hi:
        return lo, hi
    # measured on a subsample of the values themselves (a histogram's bins would be
    # coarser than the quantization step at 12+ bits)
    sample = subsample(v, 1 << 16, seed=1)

    def err(a: float, b: float) -> float:
        s, z = act_params(a, b, bits)
        return float(np.mean((fake_quant(sample, s, z, bits) - sample) ** 2))

    fs = np.linspace(1.0, 0.2, steps)
    errs = [err(lo * f, hi * f) for f in fs]
    f = fs[int(np.argmin(errs))]
    best, best_err = (lo * f, hi * f), min(errs)
    if lo < 0 < hi:
        for _ in range(2):
            for end in (0, 1):
                for g in np.linspace(1.3, 0.5, 33):
                    cand = list(best)
                    cand[end] = min(max(best[end] * g, lo), hi) if end == 1 else max(min(best[end] * g, hi), lo)
                    e = err(*cand)
                    if e < best_err:
                        best, best_err = (cand[0], cand[1]), e
    return best


def calibrate_range(method: str, values: np.ndarray, bits: int, act_params, percentile: float = 99.99) -> tuple[float, float]:
    """The range of one tensor by ``method`` (minmax | percentile | entropy | mse)."""
    v = subsample(values)
    if method == "minmax":
        return minmax_range(v)
    if method == "percentile":
        return percentile_range(v, percentile)
    if method == "entropy":
        return entropy_range(v, bits)
    if method == "mse":
        return mse_range(v, act_params, bits)
    raise ValueError(f"unknown calibration method {method!r}")
