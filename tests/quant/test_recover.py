"""Bias correction from mean input patches equals the mean of the two convolutions it replaces."""

import numpy as np
import pytest

from hwflow.quant._feval import linear
from hwflow.quant._lower import FLayer
from hwflow.quant.recover import bias_correction


def _by_convolution(fl, w_deq, x, x_hat):
    """The definition: the mean over samples and positions of ``Wq·x_hat - W·x``."""
    err = linear(fl, x_hat, weight=w_deq, bias=False) - linear(fl, x, bias=False)
    return fl.bias - err.mean(axis=(0,) + tuple(range(2, err.ndim)))


@pytest.mark.parametrize("op,groups,kernel,strides,pads", [
    ("conv", 1, (3, 3), (1, 1), (1, 1, 1, 1)),
    ("conv", 2, (3, 2), (2, 1), (0, 1, 2, 0)),
    ("conv", 4, (3, 3), (2, 2), (1, 1, 1, 1)),  # depthwise, padded, strided
    ("gemm", 1, (1, 1), (1, 1), (0, 0, 0, 0)),
])
def test_mean_patch_bias_correction_equals_convolutions(op, groups, kernel, strides, pads):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 4, 9, 8))
    x_hat = x + rng.normal(scale=0.1, size=x.shape)
    if op == "gemm":
        x, x_hat = x.reshape(7, -1), x_hat.reshape(7, -1)
        w = rng.normal(size=(5, x.shape[1]))
    else:
        w = rng.normal(size=(4 if groups == 4 else 6, 4 // groups, *kernel))
    fl = FLayer("l", op, ["x"], "y", weight=w, bias=rng.normal(size=w.shape[0]), kernel=kernel, strides=strides,
                pads=pads, groups=groups)
    w_deq = np.round(w * 4) / 4
    np.testing.assert_allclose(bias_correction(fl, w_deq, x, x_hat), _by_convolution(fl, w_deq, x, x_hat),
                               rtol=1e-12, atol=1e-12)
    # analytical form (no data): (Wq - W)·E[x]
    mu = x[:1]
    want = fl.bias - linear(fl, mu, weight=w_deq - w, bias=False).mean(axis=(0,) + tuple(range(2, mu.ndim)))
    np.testing.assert_allclose(bias_correction(fl, w_deq, mu), want, rtol=1e-12, atol=1e-12)
