"""Ranges without data: interval and moment propagation from the weights and biases.

Every element of every tensor carries a hard interval (exact worst case), a mean, and
two spreads: the standard deviation if a layer's inputs were independent (too small:
real features are correlated) and if they were fully correlated (too large). Inputs
are uniform over the input range. The range of a tensor is
``mean ± K_SIGMA·sqrt(std_independent·std_correlated)`` cut to the interval — the
interval alone is safe but wastes bits on a worst case no input reaches. Where the
model had BatchNorm, its statistics give the layer's output mean and std directly;
those are measured, not guessed, and get ``K_MEASURED`` (the tails of a real
activation reach well past 3 sigma).
"""

from __future__ import annotations

import numpy as np

from ..ir import kernels
from ._feval import linear
from ._lower import Plan, act_fn

__all__ = ["propagate_ranges", "propagate_moments", "K_SIGMA", "K_MEASURED"]

#: spreads kept on each side of the mean (geometric mean of the two spreads)
K_SIGMA = 2.0
#: standard deviations kept where BatchNorm statistics measured the spread
K_MEASURED = 4.5

# Gauss-Hermite nodes for E[f(X)], X ~ N(mu, var), of any elementwise f
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(48)
_GH_W = _GH_W / _GH_W.sum()


#: Elements whose quadrature runs at once (bounds the ``elements x nodes`` temporaries).
_GH_CHUNK = 1 << 15


def _gauss_moments(fn, mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``fn(X)``, ``X ~ N(mu, var)`` elementwise, by Gauss-Hermite.

    Computed once per distinct ``(mu, var)`` (the pixels of a channel mostly share them)
    and in chunks, so the cost follows the distinct values, not the tensor's size.
    """
    # A pair as one complex number: numpy sorts those fast (rows of a 2-D array, slowly).
    uniq, inv = np.unique(np.ravel(mu) + 1j * np.ravel(var), return_inverse=True)
    m1 = np.empty(len(uniq))
    m2 = np.empty(len(uniq))
    for i in range(0, len(uniq), _GH_CHUNK):
        u = uniq[i:i + _GH_CHUNK]
        sd = np.sqrt(np.maximum(u.imag, 0.0))
        f = fn(u.real[:, None] + sd[:, None] * _GH_X)
        m1[i:i + _GH_CHUNK] = (f * _GH_W).sum(-1)
        m2[i:i + _GH_CHUNK] = (f * f * _GH_W).sum(-1)
    inv = inv.reshape(-1)
    m1, m2 = m1[inv].reshape(np.shape(mu)), m2[inv].reshape(np.shape(mu))
    return m1, np.maximum(m2 - m1 * m1, 0.0)


def _expected_max(k: int) -> float:
    """E[max of k independent standard normals] (0 for k = 1)."""
    x = np.linspace(-10, 10, 20001)
    pdf = np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    cdf = np.cumsum(pdf) * (x[1] - x[0])
    return float(np.sum(x * k * pdf * cdf ** (k - 1)) * (x[1] - x[0]))


def _elementwise(fn, st):
    mu, var, lo, hi, sdw = st
    mu2, var2 = _gauss_moments(fn, mu, var)
    a, b = fn(lo), fn(hi)  # every activation here is monotone non-decreasing
    ratio = np.sqrt(np.where(var > 0, var2 / np.where(var > 0, var, 1), 0.0))
    return mu2, var2, np.minimum(a, b), np.maximum(a, b), sdw * ratio


def propagate_moments(plan: Plan, input_range: tuple[float, float]) -> dict[str, tuple]:
    """Per tensor ``(mean, var, lo, hi, std_correlated)`` arrays of shape ``(1, *shape[1:])``.

    ``measured_tensors(plan)`` tells which of them carry BatchNorm-measured spreads.
    """
    a, b = input_range
    shape = (1, *plan.shapes[plan.input][1:])
    env = {plan.input: (np.full(shape, (a + b) / 2), np.full(shape, (b - a) ** 2 / 12),
                        np.full(shape, float(a)), np.full(shape, float(b)), np.full(shape, (b - a) / np.sqrt(12)))}
    for fl in plan.layers:
        ins = [env[t] for t in fl.inputs]
        mu, var, lo, hi, sdw = ins[0]
        if fl.op in ("conv", "gemm"):
            w = fl.weight
            pos, neg = np.maximum(w, 0), np.minimum(w, 0)
            mu_y = linear(fl, mu)
            var_y = linear(fl, var, weight=w * w, bias=False)
            lo_y = linear(fl, lo, weight=pos) + linear(fl, hi, weight=neg, bias=False)
            hi_y = linear(fl, hi, weight=pos) + linear(fl, lo, weight=neg, bias=False)
            sdw_y = linear(fl, sdw, weight=np.abs(w), bias=False)  # fully correlated inputs
            if fl.bn is not None:
                mean_c, std_c = fl.bn
                bshape = (1, -1) + (1,) * (mu_y.ndim - 2)
                mu_y = np.broadcast_to(mean_c.reshape(bshape), mu_y.shape).copy()
                var_y = np.broadcast_to((std_c ** 2).reshape(bshape), mu_y.shape).copy()
                sdw_y = np.sqrt(var_y)  # measured on the training data: no correlation guess
            st = (mu_y, var_y, lo_y, hi_y, sdw_y)
        elif fl.op == "maxpool":
            win = fl.window(mu.shape[2:])
            st = [kernels.max_pool(v, win) for v in (mu, var, lo, hi, sdw)]
            # the max of k values sits above their mean: E[max of k std normals]·σ
            st[0] = np.minimum(st[0] + _expected_max(fl.kernel[0] * fl.kernel[1]) * np.sqrt(st[1]), st[3])
            st = tuple(st)
        elif fl.op == "avgpool":
            win = fl.window(mu.shape[2:])
            st = tuple(kernels.avg_pool(v, win, count_include_pad=True) for v in (mu, var, lo, hi, sdw))
        elif fl.op == "add":
            st = tuple(x + y for x, y in zip(ins[0], ins[1]))
        elif fl.op == "concat":
            st = tuple(np.concatenate([s[i] for s in ins], axis=1) for i in range(5))
        else:  # lut
            st = ins[0]
        if fl.op in ("conv", "gemm", "avgpool", "add"):
            if fl.clamp is not None:
                st = _elementwise(act_fn(fl.clamp), st)
            if fl.lut is not None:
                env[fl.pre] = st
        if fl.lut is not None:
            st = _elementwise(act_fn(fl.lut), st)
        env[fl.output] = tuple(np.asarray(v, dtype=np.float64).reshape(1, *plan.shapes[fl.output][1:]) for v in st)
    return env


def measured_tensors(plan: Plan) -> set[str]:
    """Tensors whose spread comes from BatchNorm statistics (not through a mixing layer)."""
    out: set[str] = set()
    for fl in plan.layers:
        if fl.has_weight:
            ok = fl.bn is not None
        else:
            ok = all(t in out for t in fl.inputs)
        if ok:
            out.add(fl.output)
            if fl.pre is not None:
                out.add(fl.pre)
    return out


def propagate_ranges(plan: Plan, input_range: tuple[float, float], k: float = K_SIGMA,
                     k_measured: float = K_MEASURED) -> dict[str, tuple[float, float]]:
    """Per tensor ``(lo, hi)``: ``mean ± k·spread`` cut to the worst-case interval."""
    out = {}
    measured = measured_tensors(plan)
    for t, (mu, var, lo, hi, sdw) in propagate_moments(plan, input_range).items():
        if t in measured:
            sd, kk = np.sqrt(var), k_measured
        else:
            sd, kk = np.sqrt(np.sqrt(var) * sdw), k
        tlo = np.maximum(lo, mu - kk * sd).min()
        thi = np.minimum(hi, mu + kk * sd).max()
        out[t] = (float(min(tlo, thi)), float(max(tlo, thi)))
    return out
