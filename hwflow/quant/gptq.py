"""Error-compensating weight rounding (GPTQ: Frantar et al., 2022, after Optimal Brain
Quantization).

Rounding each weight to its nearest code ignores that the errors of one output's
weights add up on correlated inputs. GPTQ quantizes the inputs of a layer one at a
time and spreads each rounding error over the weights not yet quantized, weighted by
the inverse of the inputs' second-moment matrix ``H = XᵀX`` from calibration data, so
the layer's output error ``‖(W - Q)X‖²`` is what gets minimised. The scales are
chosen beforehand (by the scheme); only the integer codes change. Any weight format
works the same way (:mod:`hwflow.quant.wformat`): each column is rounded with the
format's own rounding (pot in the log domain, binary to the sign...) and its error
spread over the columns not yet rounded.
"""

from __future__ import annotations

import numpy as np

from ..ir import kernels
from ._lower import FLayer
from .wformat import WeightFormat

__all__ = ["gptq_codes", "layer_inputs", "depthwise_hessians"]


def layer_inputs(fl: FLayer, x: np.ndarray, max_rows: int = 20000, seed: int = 0) -> list[np.ndarray]:
    """Per group, the rows the layer's weights multiply: ``(rows, K)`` float64.

    Gemm: the flattened input; Conv: im2col patches (zero padding, as the float op).
    """
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    if fl.op == "gemm":
        g = x.reshape(x.shape[0], -1)
        return [g[rng.choice(len(g), max_rows, replace=False)] if len(g) > max_rows else g]
    win = fl.window(x.shape[2:])
    cols = kernels.windows(kernels.pad_windows(x, win, 0.0), win)  # N, C, OH, OW, kh, kw: a view
    n, c, oh, ow, kh, kw = cols.shape
    cg = c // fl.groups
    cols = cols.reshape(n, fl.groups, cg, oh, ow, kh, kw)
    out = []
    for g in range(fl.groups):
        rows = n * oh * ow
        # The rows kept are drawn before any is copied (row r = pixel (r // (oh*ow), ...)).
        pick = rng.choice(rows, max_rows, replace=False) if rows > max_rows else np.arange(rows)
        i, y, xx = pick // (oh * ow), (pick // ow) % oh, pick % ow
        out.append(cols[i, g, :, y, xx].reshape(len(pick), cg * kh * kw))  # (rows, cg, kh, kw)
    return out


def depthwise_hessians(fl: FLayer, x: np.ndarray) -> np.ndarray:
    """A depthwise Conv's ``H = XᵀX / rows`` for every channel at once: ``(C, K, K)``.

    Its rows are every output pixel of ``x`` (not a draw of them, as :func:`layer_inputs`
    makes for a wide layer): with K <= 25 taps, a channel's ``(K, pixels)`` patch matrix
    is cheap, built for a block of samples at a time.
    """
    x = np.asarray(x, dtype=np.float64)
    win = fl.window(x.shape[2:])
    n, c = x.shape[:2]
    k, o = int(np.prod(win.kernel)), int(np.prod(win.out))
    h = np.zeros((c, k, k))
    step = max(1, (1 << 20) // max(c * k * o, 1))  # samples a block: about 2**20 patch values
    for b0 in range(0, n, step):
        v = kernels.windows(kernels.pad_windows(x[b0:b0 + step], win, 0.0), win)  # n, C, OH, OW, kh, kw: a view
        t = v.transpose(1, 4, 5, 0, 2, 3).reshape(c, k, -1)  # (C, K, pixels)
        h += np.matmul(t, t.transpose(0, 2, 1))
    return h / max(n * o, 1)


def _hessian(x: np.ndarray) -> np.ndarray:
    return x.T @ x / max(len(x), 1)


def _factor(h: np.ndarray, damp: float):
    """What GPTQ needs from ``H`` (shared by every candidate scale): the input order
    ("act order": most active inputs first), the dead inputs, and the upper Cholesky
    factor of the damped, reordered ``H⁻¹`` (None if it is singular)."""
    h = h.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    order = np.argsort(-np.diag(h), kind="stable")
    h = h[np.ix_(order, order)]
    h[np.diag_indices_from(h)] += damp * np.mean(np.diag(h))
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T
    except np.linalg.LinAlgError:
        u = None
    return order, np.argsort(order), dead, u


#: Input columns GPTQ compensates across. A wider layer runs GPTQ on equal blocks of at
#: most this many columns, each with its diagonal block of ``H``; errors are not carried
#: from one block to the next. The whole ``H`` costs ``rows x K**2`` to form, ``K**3`` to
#: factor and ``candidates x Cout x K**2`` to apply: ``params x K``, faster than the
#: parameters grow (a 3x3 Conv's K is 9 x its input channels). On blocks it is
#: ``params x MAX_COLUMNS``: linear in the parameters.
MAX_COLUMNS = 512

#: Columns per lazy batch: the rank-1 updates stay inside the block, the rest of the
#: weights get the block's updates in one matrix product (Frantar et al.'s lazy batching).
_BLOCK = 128


#: Candidate x row x column values GPTQ updates at once: rows are independent given ``H``,
#: so a wide layer's rows go in chunks (its working copy stays ~32 MB).
_CHUNK_VALUES = 1 << 22


def _gptq_rows(w: np.ndarray, s: np.ndarray, factor, fmt: WeightFormat) -> np.ndarray:
    """Codes for ``w`` (C, K) with per-row scales ``s`` (S, C), one candidate per row of
    ``s`` (``factor`` from :func:`_factor`): ``(S, C, K)`` int16 (every format's codes fit)."""
    out = np.empty((len(s),) + w.shape, dtype=np.int16)
    step = max(1, _CHUNK_VALUES // max(len(s) * w.shape[1], 1))
    for r0 in range(0, w.shape[0], step):
        out[:, r0:r0 + step] = _gptq_chunk(w[r0:r0 + step], s[:, r0:r0 + step], factor, fmt)
    return out


def _gptq_chunk(w: np.ndarray, s: np.ndarray, factor, fmt: WeightFormat) -> np.ndarray:
    """:func:`_gptq_rows` on a chunk of rows (float64 codes)."""
    order, inv, dead, u = factor
    w = w.copy()
    w[:, dead] = 0.0
    s = s[:, :, None]
    if u is None:
        return fmt.round(w[None] / s)
    # Column-major working copy (K, S, C): a column and the rows a rank-1 update touches are
    # contiguous. The arithmetic is element for element the (S, C, K) form's, the lazy
    # batch's product included, so the codes are the same.
    s = s[:, :, 0]
    k = w.shape[1]
    w = np.broadcast_to(w[:, order].T[:, None, :], (k,) + s.shape).copy()  # C order
    q = np.empty_like(w)
    for b0 in range(0, k, _BLOCK):
        b1 = min(b0 + _BLOCK, k)
        errs = np.empty(s.shape + (b1 - b0,))
        for i in range(b0, b1):
            col = w[i]
            code = fmt.round(col / s)
            q[i] = code
            err = (col - code * s) / u[i, i]
            errs[:, :, i - b0] = err
            w[i + 1:b1] -= err * u[i, i + 1:b1, None, None]
        if b1 < k:
            w[b1:] -= (errs @ u[b0:b1, b1:]).transpose(2, 0, 1)
    return q[inv].transpose(1, 2, 0)


def _row_error(w: np.ndarray, q: np.ndarray, s: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per row, the output error power ``(w - q·s) H (w - q·s)ᵀ``."""
    d = w - q * s[:, None]
    return ((d @ h) * d).sum(axis=1)


def _gptq_depthwise(w: np.ndarray, cand: np.ndarray, h: np.ndarray, fmt: WeightFormat,
                    damp: float) -> tuple[np.ndarray, np.ndarray] | None:
    """GPTQ of a depthwise layer, every channel at once: ``w`` (C, K), candidate scales
    ``cand`` (S, C), rows ``x`` (rows, C, K). Returns the codes (S, C, K) and their output
    errors (S, C), as the per-group path computes them; None if a channel's ``H`` is
    singular (that path then handles the layer)."""
    diag = np.diagonal(h, axis1=1, axis2=2)
    dead = diag == 0
    hd = h.copy()
    c_idx, k_idx = np.nonzero(dead)
    hd[c_idx, k_idx, k_idx] = 1.0
    order = np.argsort(-np.diagonal(hd, axis1=1, axis2=2), axis=1, kind="stable")
    hd = np.take_along_axis(np.take_along_axis(hd, order[:, :, None], axis=1), order[:, None, :], axis=2)
    d = np.diagonal(hd, axis1=1, axis2=2)
    hd = hd + np.eye(hd.shape[1])[None] * (damp * d.mean(axis=1))[:, None, None]
    try:
        u = np.swapaxes(np.linalg.cholesky(np.linalg.inv(hd)), 1, 2)  # (C, K, K) upper
    except np.linalg.LinAlgError:
        return None
    wz = np.where(dead, 0.0, w)
    wp = np.repeat(np.take_along_axis(wz, order, axis=1)[None], len(cand), axis=0)  # (S, C, K)
    q = np.empty_like(wp)
    k = wp.shape[2]
    for i in range(k):
        col = wp[:, :, i]
        code = fmt.round(col / cand)
        q[:, :, i] = code
        err = (col - code * cand) / u[None, :, i, i]
        wp[:, :, i + 1:] -= err[:, :, None] * u[None, :, i, i + 1:]
    q = np.take_along_axis(q, np.argsort(order, axis=1)[None], axis=2)
    dw = w[None] - q * cand[:, :, None]
    return q, np.einsum("sck,ckl,scl->sc", dw, h, dw)


def gptq_codes(fl: FLayer, scales: list[np.ndarray], bits: int | WeightFormat, x: np.ndarray, per_channel: bool = True,
               damp: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Integer weight codes of ``fl`` and the scales they use.

    Parameters
    ----------
    fl : FLayer
        A Conv or Gemm.
    scales : list of numpy.ndarray
        Candidate scales, each ``(Cout,)``; the first is the scheme's choice. GPTQ runs
        with each, and each output channel (or, per tensor, the whole layer) keeps the
        candidate whose output error on ``x`` is smallest: with error compensation the
        best clipping is not the one that minimises the weights' own MSE.
    bits : int or WeightFormat
        Weight width of ``int`` weights, or the weight format.
    x : numpy.ndarray
        The layer's input on calibration data.
    per_channel : bool
        Choose per output channel (else one candidate for the layer).
    damp : float
        Fraction of the mean diagonal added to ``H`` (numerical stability).

    Returns
    -------
    (codes, scale) : (numpy.ndarray of int64 shaped like the weight, numpy.ndarray (Cout,))
    """
    fmt = bits if isinstance(bits, WeightFormat) else WeightFormat("int", bits)
    w = fl.weight.reshape(fl.weight.shape[0], -1)
    cout = w.shape[0]
    per = cout // fl.groups
    best_q = np.empty_like(w)
    best_s = np.empty(cout)
    results = []
    if fl.op == "conv" and fl.groups == cout and w.shape[1] <= _BLOCK:  # depthwise: all channels at once
        cand = np.stack(scales)
        got = _gptq_depthwise(w, cand, depthwise_hessians(fl, x), fmt, damp)
        if got is not None:
            qs, errs = got
            choice = np.argmin(errs, axis=0) if per_channel else np.full(cout, np.argmin(errs.sum(axis=1)))
            rows = np.arange(cout)
            return qs[choice, rows].reshape(fl.weight.shape).astype(np.int64), cand[choice, rows]
    for g, xg in enumerate(layer_inputs(fl, x)):
        rows = slice(g * per, (g + 1) * per)
        cand = np.stack([s[rows] for s in scales])
        qs = np.empty((len(scales), per, xg.shape[1]), dtype=np.int16)
        err = np.zeros((len(scales), per))
        k = xg.shape[1]
        width = -(-k // -(-k // MAX_COLUMNS))  # equal blocks: K = 784 is 392 + 392, not 512 + 272
        for c0 in range(0, k, width):
            c = slice(c0, c0 + width)
            h = _hessian(xg[:, c])
            qs[:, :, c] = _gptq_rows(w[rows, c], cand, _factor(h, damp), fmt)
            err += [_row_error(w[rows, c], q[:, c], sc, h) for sc, q in zip(cand, qs)]
        results += [(g, k, q, e) for k, (q, e) in enumerate(zip(qs, err))]
    errs = np.full((len(scales), cout), np.inf)
    for g, k, _, e in results:
        errs[k, g * per:(g + 1) * per] = e
    choice = np.argmin(errs, axis=0) if per_channel else np.full(cout, np.argmin(errs.sum(axis=1)))
    for g, k, q, _ in results:
        rows = np.arange(g * per, (g + 1) * per)
        pick = choice[rows] == k
        best_q[rows[pick]] = q[pick]
        best_s[rows[pick]] = scales[k][rows[pick]]
    return best_q.reshape(fl.weight.shape).astype(np.int64), best_s
