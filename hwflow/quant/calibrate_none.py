"""Ranges without data: interval and moment propagation from the weights and biases.

Every element of every tensor carries a hard interval (exact worst case) and a mean
and variance (inputs independent and uniform over the input range; BatchNorm
statistics, where the model had them, replace the propagated moments of that
layer's output). A tensor's range is ``mean ± K_SIGMA·std`` cut to the interval: the
interval alone is safe but wastes bits on a worst case no input reaches.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._feval import linear
from ._lower import FLayer, Plan, act_fn

__all__ = ["propagate_ranges", "propagate_moments", "K_SIGMA"]

#: standard deviations kept on each side of the mean
K_SIGMA = 4.0

# Gauss-Hermite nodes for E[f(X)], X ~ N(mu, var), of any elementwise f
_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(48)
_GH_W = _GH_W / _GH_W.sum()


def _gauss_moments(fn, mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(np.maximum(var, 0.0))
    pts = mu[..., None] + sd[..., None] * _GH_X
    f = fn(pts)
    m1 = (f * _GH_W).sum(-1)
    m2 = (f * f * _GH_W).sum(-1)
    return m1, np.maximum(m2 - m1 * m1, 0.0)


def _windows(x: np.ndarray, fl: FLayer, value: float) -> np.ndarray:
    t, l, b, r = fl.pads
    x = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)
    return sliding_window_view(x, fl.kernel, axis=(2, 3))[:, :, :: fl.strides[0], :: fl.strides[1]]


def _elementwise(fn, st):
    mu, var, lo, hi = st
    mu, var = _gauss_moments(fn, mu, var)
    a, b = fn(lo), fn(hi)  # every activation here is monotone non-decreasing
    return mu, var, np.minimum(a, b), np.maximum(a, b)


def propagate_moments(plan: Plan, input_range: tuple[float, float]) -> dict[str, tuple]:
    """Per tensor ``(mean, var, lo, hi)`` arrays of shape ``(1, *shape[1:])``."""
    a, b = input_range
    shape = (1, *plan.shapes[plan.input][1:])
    env = {plan.input: (np.full(shape, (a + b) / 2), np.full(shape, (b - a) ** 2 / 12),
                        np.full(shape, float(a)), np.full(shape, float(b)))}
    for fl in plan.layers:
        ins = [env[t] for t in fl.inputs]
        mu, var, lo, hi = ins[0]
        if fl.op in ("conv", "gemm"):
            w = fl.weight
            pos, neg = np.maximum(w, 0), np.minimum(w, 0)
            mu_y = linear(fl, mu)
            var_y = linear(fl, var, weight=w * w, bias=False)
            lo_y = linear(fl, lo, weight=pos) + linear(fl, hi, weight=neg, bias=False)
            hi_y = linear(fl, hi, weight=pos) + linear(fl, lo, weight=neg, bias=False)
            if fl.bn is not None:
                mean_c, std_c = fl.bn
                bshape = (1, -1) + (1,) * (mu_y.ndim - 2)
                mu_y = np.broadcast_to(mean_c.reshape(bshape), mu_y.shape).copy()
                var_y = np.broadcast_to((std_c ** 2).reshape(bshape), mu_y.shape).copy()
            st = (mu_y, var_y, lo_y, hi_y)
        elif fl.op == "maxpool":
            st = tuple(_windows(v, fl, -np.inf).max(axis=(-1, -2)) for v in (mu, var, lo, hi))
        elif fl.op == "avgpool":
            st = tuple(_windows(v, fl, 0.0).mean(axis=(-1, -2)) for v in (mu, var, lo, hi))
        elif fl.op == "add":
            st = tuple(x + y for x, y in zip(ins[0], ins[1]))
        elif fl.op == "concat":
            st = tuple(np.concatenate([s[i] for s in ins], axis=1) for i in range(4))
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


def propagate_ranges(plan: Plan, input_range: tuple[float, float], k: float = K_SIGMA) -> dict[str, tuple[float, float]]:
    """Per tensor ``(lo, hi)``: ``mean ± k·std`` cut to the worst-case interval."""
    out = {}
    for t, (mu, var, lo, hi) in propagate_moments(plan, input_range).items():
        sd = np.sqrt(var)
        tlo = np.maximum(lo, mu - k * sd).min()
        thi = np.minimum(hi, mu + k * sd).max()
        out[t] = (float(min(tlo, thi)), float(max(tlo, thi)))
    return out
