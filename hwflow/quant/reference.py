"""The bit-exact integer reference: runs a :class:`~hwflow.quant.qgraph.QGraph` on codes.

This module *is* the specification the hardware must equal. It uses only int64 numpy
arithmetic (no floats), following the contract in :mod:`hwflow.quant.qgraph`, and lives
beside that contract: the quantizer sizes accumulators with :func:`acc_bounds` and
measures its choices with :func:`run_layer`, the scheduler sizes the datapath with
:func:`acc_bounds`, and a BUILD's expected outputs come from :func:`run_int_batch`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import DataError
from .arith import requantize
from .qgraph import QGraph, QLayer

__all__ = ["run_int", "run_int_batch", "run_layer", "acc_bounds"]


def _pad(x: np.ndarray, pads, value: int) -> np.ndarray:
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _windows(x: np.ndarray, layer: QLayer) -> np.ndarray:
    """``(N, C, OH, OW, kh, kw)`` windows of an already padded NCHW tensor."""
    kh, kw = layer.kernel
    sh, sw = layer.strides
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


#: Integers below this add exactly in float64: a product sum bounded by it can use BLAS.
_EXACT = 1 << 53

#: Elements of one im2col block (the batch is cut so that each stays below it).
_BLOCK = 1 << 22


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` of int64 matrices, exactly: in float64 (BLAS) when every partial sum is an
    integer below 2**53 whatever the order of the additions, else in int64."""
    bound = a.shape[1] * int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0))
    if bound < _EXACT:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


def _conv(x: np.ndarray, layer: QLayer) -> np.ndarray:
    """The convolution's accumulator without bias (``x`` already padded), im2col by batch blocks."""
    cout, cin_g, kh, kw = layer.weight.shape
    g = layer.groups
    win = _windows(x, layer)  # N,Cin,OH,OW,kh,kw (a view)
    nb, _, oh, ow = win.shape[:4]
    if cin_g == 1 and cout == g:  # depthwise: one product per window position and channel
        acc = np.zeros((nb, cout, oh, ow), dtype=np.int64)
        for ky in range(kh):
            for kx in range(kw):
                acc += win[..., ky, kx] * layer.weight[None, :, 0, ky, kx, None, None]
        return acc
    w = layer.weight.reshape(g, cout // g, cin_g * kh * kw)
    k = cin_g * kh * kw
    if k == cin_g and g == 1 and x.shape[2:] == (oh, ow):  # 1x1, stride 1: (Cout, Cin) @ (Cin, pixels), no patches
        xs = x.reshape(nb, cin_g, oh * ow)
        if k * int(np.abs(x).max(initial=0)) * int(np.abs(w).max(initial=0)) < _EXACT:
            acc = np.matmul(w[0].astype(np.float64), xs.astype(np.float64)).astype(np.int64)
        else:
            acc = np.matmul(w[0], xs)
        return acc.reshape(nb, cout, oh, ow)
    if k * int(np.abs(x).max(initial=0)) * int(np.abs(w).max(initial=0)) < _EXACT:
        # Every partial sum is an integer below 2**53 (the bound of _matmul, taken over the
        # whole input): build the patch matrix in float64 directly and let BLAS add.
        dtype, w, mm = np.float64, w.astype(np.float64), np.matmul
    else:
        dtype, mm = np.int64, _matmul
    acc = np.empty((nb, g, cout // g, oh, ow), dtype=np.int64)
    step = max(1, _BLOCK // max(1, oh * ow * k))
    for b0 in range(0, nb, step):
        blk = _windows(x[b0:b0 + step].astype(dtype, copy=False), layer).reshape(-1, g, cin_g, oh, ow, kh, kw)
        for i in range(g):
            cols = blk[:, i].transpose(0, 2, 3, 1, 4, 5).reshape(-1, k)  # (n*oh*ow, K)
            y = mm(cols, w[i].T).reshape(len(blk), oh, ow, cout // g)
            acc[b0:b0 + step, i] = y.transpose(0, 3, 1, 2)  # exact integers either way
    return acc.reshape(nb, cout, oh, ow)


def _accumulate(layer: QLayer, ins: list[np.ndarray], zs: list[int]) -> np.ndarray:
    """The accumulator of a requantizing layer, before ``m``/``n`` (int64)."""
    if layer.op == "conv":
        acc = _conv(_pad(ins[0], layer.pads, zs[0]), layer)
        return np.left_shift(acc, layer.acc_shift) + layer.bias[None, :, None, None]
    if layer.op == "gemm":
        x = ins[0].reshape(ins[0].shape[0], -1)
        return np.left_shift(_matmul(x, layer.weight.T), layer.acc_shift) + layer.bias[None, :]
    if layer.op == "avgpool":
        win = _windows(_pad(ins[0], layer.pads, zs[0]), layer)
        acc = win.sum(axis=(-1, -2))
        return acc + (0 if layer.bias is None else layer.bias.reshape(1, -1, 1, 1))
    if layer.op == "add":
        ma, mb = layer.add_m
        return (ins[0] - zs[0]) * ma + (ins[1] - zs[1]) * mb
    if layer.op == "lut":
        return ins[0]
    raise AssertionError(layer.op)


def _channel_axis_params(layer: QLayer, acc: np.ndarray):
    shape = [1] * acc.ndim
    if layer.m.shape[0] > 1:
        shape[1] = -1
    return layer.m.reshape(shape), layer.n.reshape(shape)


def run_layer(layer: QLayer, ins: list[np.ndarray], in_tensors, out_tensor) -> np.ndarray:
    """Run one layer on int64 codes.

    Parameters
    ----------
    layer : QLayer
    ins : list of numpy.ndarray
        Input codes, NCHW or (N, F), int64 (any batch N; samples are independent).
    in_tensors : list of QTensor
        Their types (for zero points and bit widths).
    out_tensor : QTensor
        The output type (zero point).

    Returns
    -------
    numpy.ndarray of int64
    """
    zs = [t.zero_point for t in in_tensors]
    if layer.op == "maxpool":
        lo = in_tensors[0].range[0]
        return _windows(_pad(ins[0], layer.pads, lo), layer).max(axis=(-1, -2))
    if layer.op == "concat":
        return np.concatenate(ins, axis=1)
    acc = _accumulate(layer, ins, zs)
    m, n = _channel_axis_params(layer, acc)
    z_out = out_tensor.zero_point if layer.lut is None else layer.lut_zero_point
    q = requantize(acc, m, n, z_out, layer.lo, layer.hi, layer.rounding)
    if layer.lut is not None:
        q = layer.lut[q - layer.lo]
    return q


def run_int(qg: QGraph, x_q: np.ndarray, keep: bool = False) -> np.ndarray | dict[str, np.ndarray]:
    """Run the integer network on one input of codes.

    Parameters
    ----------
    qg : QGraph
    x_q : numpy.ndarray
        Input codes in the user's layout (``qg.input_shape``; a leading batch of 1 may be
        omitted).
    keep : bool
        Return every tensor (a dict, NCHW) instead of only the output.

    Returns
    -------
    numpy.ndarray
        The output codes (``qg.output_shape``: with ``qg.argmax`` the class index).

    Raises
    ------
    DataError
        If ``x_q`` has the wrong shape or codes outside the input's range.
    """
    x_q = np.asarray(x_q)
    if x_q.size != int(np.prod(qg.input_shape)):
        raise DataError(f"input has shape {x_q.shape!r}, the model expects {qg.input_shape!r}")
    # The batch dimension of every tensor is 1, so one sample is a batch of one.
    env = _run(qg, qg.to_input(x_q.reshape((1,) + qg.input_shape[1:])))
    return env if keep else _output(qg, env)


def run_int_batch(qg: QGraph, x_q: np.ndarray) -> np.ndarray:
    """:func:`run_int` on a batch: ``x_q`` is ``(N, *qg.input_shape[1:])``; returns ``(N, ...)``.

    Each sample is computed exactly as :func:`run_int` computes it alone (the layers
    never mix samples); this only amortizes numpy's per-call cost.
    """
    x_q = np.asarray(x_q)
    if x_q.ndim < 1 or x_q.shape[0] == 0 or int(np.prod(x_q.shape[1:])) != int(np.prod(qg.input_shape[1:])):
        raise DataError(f"input batch has shape {x_q.shape!r}, the model expects (N, *{qg.input_shape[1:]!r})")
    return _output(qg, _run(qg, qg.to_input(x_q)))


def _output(qg: QGraph, env: dict[str, np.ndarray]) -> np.ndarray:
    """The accelerator's output: the output codes, or the index of the first largest code."""
    out = env[qg.output]
    if qg.argmax:
        return out.reshape(len(out), -1).argmax(axis=1).reshape(len(out), 1).astype(np.int64)
    return out


def _run(qg: QGraph, x_q: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the network on a batch of input-tensor codes ``(N, C, H, W)``."""
    tin = qg.tensors[qg.input]
    if not np.issubdtype(x_q.dtype, np.integer):
        raise DataError(f"integer reference needs integer codes, got dtype {x_q.dtype}")
    lo, hi = tin.range
    if x_q.min() < lo or x_q.max() > hi:
        raise DataError(f"input codes outside the {tin.bits}-bit range [{lo}, {hi}]")
    if tin.bits == 1 and (x_q == 0).any():
        raise DataError("input codes of a bipolar (1-bit) input must be -1 or +1, not 0")
    nb = x_q.shape[0]
    env = {qg.input: x_q.astype(np.int64)}
    for layer in qg.layers:
        ins = [env[t] for t in layer.inputs]
        out = run_layer(layer, ins, [qg.tensors[t] for t in layer.inputs], qg.tensors[layer.output])
        env[layer.output] = out.reshape(nb, *qg.tensors[layer.output].shape[1:])
    return env


def acc_bounds(layer: QLayer, in_tensors) -> tuple[int, int]:
    """Worst-case ``(min, max)`` of the accumulator over all inputs in range.

    The hardware sizes its accumulators (and the product ``acc * m``) from this bound.
    """
    if layer.op in ("maxpool", "concat"):
        return in_tensors[0].range
    if layer.op == "lut":
        return in_tensors[0].range
    if layer.op == "add":
        (alo, ahi), (blo, bhi) = in_tensors[0].range, in_tensors[1].range
        za, zb = in_tensors[0].zero_point, in_tensors[1].zero_point
        ma, mb = layer.add_m
        terms = [sorted(((alo - za) * ma, (ahi - za) * ma)), sorted(((blo - zb) * mb, (bhi - zb) * mb))]
        return terms[0][0] + terms[1][0], terms[0][1] + terms[1][1]
    xlo, xhi = in_tensors[0].range
    if layer.op == "avgpool":
        k = layer.kernel[0] * layer.kernel[1]
        b = 0 if layer.bias is None else int(layer.bias.max())
        b_lo = 0 if layer.bias is None else int(layer.bias.min())
        return k * xlo + b_lo, k * xhi + b
    w = layer.weight.reshape(layer.weight.shape[0], -1)
    pos = np.where(w > 0, w, 0).sum(axis=1)
    neg = np.where(w < 0, w, 0).sum(axis=1)
    f = 1 << layer.acc_shift
    lo = layer.bias + (pos * xlo + neg * xhi) * f
    hi = layer.bias + (pos * xhi + neg * xlo) * f
    return int(lo.min()), int(hi.max())
