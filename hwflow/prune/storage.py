"""Storage report: weight bits per layer and in total, stage by stage, as in Deep Compression.

For each Conv/Gemm layer of a QGraph (weights only; biases and requantizer parameters are
listed by ``hwflow compile`` under memory):

- ``fp32``: 32 bits a weight of the original model (before channel pruning);
- ``int``: ``wbits`` a weight (the quantized, dense model);
- ``pruned``: compressed sparse storage of the nonzeros: each entry is the weight plus an
  ``r``-bit gap to the previous entry in flat (C-order) position, with a filler entry
  (a stored zero) when a gap exceeds ``2**r - 1`` (Deep Compression's relative index);
  ``r`` is chosen per layer to minimise the bits; dense if that is smaller;
- ``shared``: each weight a ``b``-bit codebook index, plus the codebook (``2**b``
  entries of ``wbits``): dense indices, or sparse entries (index + gap) when smaller
  (``format`` says which);
- ``huffman``: a bound, not an encoder: the symbols (codebook indices, or codes without
  sharing; for sparse storage also the gaps) each cost their empirical entropy
  (bits/symbol x count), plus the codebook; the smaller of dense and sparse.

Ratios are against fp32.
"""

from __future__ import annotations

import math

import numpy as np

from ..quant.qgraph import QGraph

__all__ = ["storage_report", "format_storage", "sparse_entries", "entropy_bits"]

_STAGES = ("fp32", "int", "pruned", "shared", "huffman")


def sparse_entries(flat: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative-index encoding of a flat weight vector.

    Returns ``(values, gaps)``: one entry per nonzero (and per filler zero), where ``gap``
    is the number of zeros skipped before the entry, at most ``2**r - 1``.
    """
    flat = np.asarray(flat).ravel()
    cap = (1 << r) - 1
    values, gaps = [], []
    prev = -1
    for pos in np.flatnonzero(flat):
        gap = int(pos - prev - 1)
        while gap > cap:  # filler: a stored zero after cap skipped zeros
            values.append(0)
            gaps.append(cap)
            gap -= cap + 1
        values.append(flat[pos])
        gaps.append(gap)
        prev = pos
    return np.asarray(values, dtype=np.int64), np.asarray(gaps, dtype=np.int64)


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical entropy of ``symbols`` times their count: the Huffman lower bound, in bits."""
    symbols = np.asarray(symbols).ravel()
    if symbols.size == 0:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def _layer(layer, original: int | None) -> dict:
    w = layer.weight
    n, nnz = int(w.size), int(np.count_nonzero(w))
    n0 = n if original is None else max(int(original), n)
    book = layer.attrs.get("codebook")
    b = int(layer.attrs.get("share_bits", 0)) if book is not None else 0
    book_bits = len(book) * layer.wbits if book is not None else 0
    # symbols of the value stream: codebook indices when shared, else the codes
    if book is not None:
        sym = np.asarray(layer.attrs["codebook_index"], dtype=np.int64).reshape(w.shape)
        zero_idx = np.flatnonzero(np.asarray(book) == 0)
    row = {"weights": n, "nonzeros": nnz, "sparsity": 1 - nnz / n if n else 0.0, "wbits": layer.wbits,
           "share_bits": b or None, "original_weights": n0, "fp32": 32 * n0, "int": layer.wbits * n}
    dense_shared = n * b + book_bits if book is not None else row["int"]
    row.update(format="dense", index_bits=0, entries=n, pruned=row["int"], shared=dense_shared)
    if book is not None:
        row["huffman"] = math.ceil(entropy_bits(sym)) + book_bits
    else:
        row["huffman"] = math.ceil(entropy_bits(w))
    if nnz < n:  # sparse storage, where it is smaller than dense
        best = None
        for r in range(1, 9):
            vals, gaps = sparse_entries(w, r)
            bits = len(vals) * ((b or layer.wbits) + r) + book_bits
            if best is None or bits < best[0]:
                best = (bits, r, vals, gaps)
        bits, r, vals, gaps = best
        row["pruned"] = min(row["pruned"], len(vals) * (layer.wbits + r))
        if bits < dense_shared:
            row.update(format="sparse", index_bits=r, entries=int(len(vals)), shared=bits)
            sym_v = np.searchsorted(np.asarray(book), vals) if book is not None else vals
            row["huffman"] = min(row["huffman"], math.ceil(entropy_bits(sym_v) + entropy_bits(gaps)) + book_bits)
    for s in _STAGES[1:]:
        row[f"ratio_{s}"] = row["fp32"] / row[s] if row[s] else float("inf")
    return row


def storage_report(qg: QGraph, original_weights: dict[str, int] | None = None) -> dict:
    """Weight storage of ``qg`` per layer and in total, in bits, for each stage.

    Parameters
    ----------
    qg : QGraph
    original_weights : dict of str to int, optional
        Weights of each layer before channel pruning (by float node name); the ``fp32``
        figure (and so every ratio) counts those, since that is the model compressed.

    Returns
    -------
    dict
        ``{"layers": {name: row}, "total": row}``; a row has ``weights``, ``nonzeros``,
        ``sparsity``, the bits of each stage (``fp32``, ``int``, ``pruned``, ``shared``,
        ``huffman``) and ``ratio_<stage>`` (fp32 bits / stage bits).
    """
    orig = original_weights or {}
    layers = {l.name: _layer(l, next((orig[n] for n in l.attrs.get("nodes", [l.name]) if n in orig), None))
              for l in qg.layers if l.op in ("conv", "gemm")}
    total = {k: sum(r[k] for r in layers.values()) for k in ("weights", "original_weights", "nonzeros", *_STAGES)}
    total["sparsity"] = 1 - total["nonzeros"] / total["weights"] if total["weights"] else 0.0
    for s in _STAGES[1:]:
        total[f"ratio_{s}"] = total["fp32"] / total[s] if total[s] else float("inf")
    return {"layers": layers, "total": total}


def format_storage(report: dict) -> str:
    """The report as a text table (kbit; the ratio column is fp32 / huffman)."""
    head = f"{'layer':<16}{'weights':>9}{'sparsity':>9}{'fp32':>10}{'int':>9}{'pruned':>9}{'shared':>9}{'huffman':>9}{'ratio':>8}"
    lines = [head + "   (kbit)"]
    rows = list(report["layers"].items()) + [("total", report["total"])]
    for name, r in rows:
        lines.append(f"{name:<16}{r['weights']:>9}{100 * r['sparsity']:>8.1f}%"
                     + "".join(f"{r[s] / 1024:>{10 if s == 'fp32' else 9}.1f}" for s in _STAGES)
                     + f"{r['ratio_huffman']:>7.1f}x")
    return "\n".join(lines)
