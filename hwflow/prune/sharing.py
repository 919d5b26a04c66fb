"""Weight sharing: per-layer k-means on the integer weights, with a codebook of 2^b values.

Sharing is done on the *integer* weights of a QGraph (after quantization): each layer's
codes are clustered into at most ``2**bits`` integer centers and every weight is replaced
by its center. The QGraph then holds exactly the weights the hardware gets from its
codebook lookup, so the integer reference (and the RTL) compute the shared network bit for
bit. ``attrs["codebook"]`` holds the centers (sorted, int) and ``attrs["codebook_index"]``
the index of each weight (``weight == codebook[codebook_index]``).

As in Deep Compression, the centers start spread linearly over the weight range and are
refined by Lloyd's algorithm. Zero is always one of the ``2**bits`` centers and the
nonzero weights share the other ``2**bits - 1``: pruned weights stay exactly zero (pruning
survives sharing), and the hardware can look up the zero weights of its padding lanes.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError
from ..quant.qgraph import QGraph
from ._qweights import replace_qweights

__all__ = ["share_weights", "kmeans_1d", "check_share_bits", "codebook_bits", "codebook_indices", "SHARE_BITS"]

#: Allowed codebook index widths.
SHARE_BITS = (2, 3, 4, 5)


def check_share_bits(bits) -> int:
    """Return ``bits`` or raise OptionError unless it is an integer in 2..5."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in SHARE_BITS:
        raise OptionError(f"sharing bits must be an integer in 2..5 (a codebook of 4..32 weights), not {bits!r}")
    return int(bits)


def kmeans_1d(values: np.ndarray, k: int, iters: int = 100, seed: int = 0) -> np.ndarray:
    """Integer 1-D k-means: at most ``k`` sorted distinct integer centers for integer ``values``.

    Deterministic: linear initialisation between min and max (``seed`` only breaks the
    tie of an empty cluster, which is re-seeded at the value farthest from its center),
    Lloyd iterations on the value histogram, centers rounded to integers at the end.
    """
    values = np.asarray(values, dtype=np.int64).ravel()
    uniq, counts = np.unique(values, return_counts=True)
    if uniq.size <= k:
        return uniq
    rng = np.random.default_rng(seed)
    c = np.linspace(uniq[0], uniq[-1], k)
    for _ in range(iters):
        assign = np.abs(uniq[:, None] - c[None, :]).argmin(axis=1)
        wsum = np.bincount(assign, weights=uniq * counts, minlength=k)
        n = np.bincount(assign, weights=counts, minlength=k)
        new = np.where(n > 0, wsum / np.maximum(n, 1), c)
        for j in np.flatnonzero(n == 0):  # an empty cluster takes the worst-served value
            err = np.abs(uniq - new[assign]) * counts
            new[j] = uniq[int(np.argmax(err + rng.random(err.shape) * 1e-9))]
        if np.allclose(new, c):
            break
        c = new
    return np.unique(np.round(c).astype(np.int64))


def _assign(w: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center (ties to the lower one)."""
    return np.abs(w.ravel()[:, None] - centers[None, :]).argmin(axis=1).reshape(w.shape)


def share_weights(qg: QGraph, bits: int | dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Replace each Conv/Gemm layer's weights by their k-means centers (in place).

    Parameters
    ----------
    qg : QGraph
        Modified in place: weights, biases (zero-point fold) and ``attrs``.
    bits : int or dict of str to int
        Codebook index width, 2..5: for every layer, or ``{layer name: bits}``.
    seed : int
        Seed of the k-means (see :func:`kmeans_1d`); the result is deterministic.

    Returns
    -------
    dict of str to numpy.ndarray
        Each shared layer's codebook.

    Raises
    ------
    OptionError
        Bits outside 2..5, an unknown layer name, or a layer whose weights are not
        ``int`` (pot/binary/ternary values are few already, and a codebook center would
        leave the format).
    """
    layers = [l for l in qg.layers if l.op in ("conv", "gemm")]
    names = [l.name for l in layers]
    if isinstance(bits, dict):
        unknown = sorted(set(bits) - set(names))
        if unknown:
            raise OptionError(f"unknown layer(s) {', '.join(map(repr, unknown))} to share; layers are: {', '.join(names)}")
        per = {k: check_share_bits(v) for k, v in bits.items()}
    else:
        b = check_share_bits(bits)
        per = {k: b for k in names}
    books: dict[str, np.ndarray] = {}
    for layer in layers:
        if layer.name not in per:
            continue
        if layer.wformat != "int":
            raise OptionError(f"layer {layer.name!r} has {layer.wformat} weights; weight sharing (--share) takes "
                              f"int weights only")
        k = 1 << per[layer.name]
        w = layer.weight
        # Zero is always an exact center: pruned weights stay zero, and the hardware's
        # padding lanes (channels rounded up to PE/SIMD) can be looked up as 0.
        nz = w[w != 0]
        centers = np.union1d([0], kmeans_1d(nz, k - 1, seed=seed) if nz.size else []).astype(np.int64)
        idx = _assign(w, centers)
        idx = np.where(w == 0, int(np.flatnonzero(centers == 0)[0]), idx)
        replace_qweights(qg, layer, centers[idx])
        layer.attrs["codebook"] = centers.astype(np.int64)
        layer.attrs["codebook_index"] = idx.astype(np.int64)
        layer.attrs["share_bits"] = per[layer.name]
        books[layer.name] = centers
    return books


def codebook_bits(qg: QGraph) -> int:
    """Index width of the hardware's codebook path: 0 unless every Conv/Gemm layer is shared.

    The weight ROM is one memory for all layers, so it holds indices only when every layer
    has a codebook (each containing 0, which the padding lanes look up); the width is the
    widest layer's ``share_bits``.
    """
    layers = [l for l in qg.layers if l.op in ("conv", "gemm")]
    if not layers:
        return 0
    bits = []
    for l in layers:
        book = l.attrs.get("codebook")
        if book is None or l.attrs.get("share_bits") is None or 0 not in np.asarray(book):
            return 0
        bits.append(int(l.attrs["share_bits"]))
    return max(bits)


def codebook_indices(words: np.ndarray, codebook, ibits: int) -> np.ndarray:
    """Weights ``words`` (any shape) as indices into ``codebook``, in the signed form a
    ROM packer stores as the raw ``ibits``-bit pattern (index ``i >= 2**(ibits-1)`` is
    ``i - 2**ibits``).

    Raises
    ------
    ValueError
        If a weight is not in ``codebook`` or the codebook has more than ``2**ibits`` entries.
    """
    book = np.asarray(codebook, dtype=np.int64)
    if book.ndim != 1 or not 1 <= book.size <= (1 << ibits):
        raise ValueError(f"codebook must have 1..{1 << ibits} entries, not {book.size!r}")
    words = np.asarray(words, dtype=np.int64)
    idx = np.abs(words[..., None] - book).argmin(axis=-1)
    if not np.array_equal(book[idx], words):
        bad = np.setdiff1d(words, book)
        raise ValueError(f"weights {bad[:8].tolist()!r} are not in the codebook {book.tolist()!r}")
    half = 1 << (ibits - 1)
    return np.where(idx >= half, idx - (1 << ibits), idx)
