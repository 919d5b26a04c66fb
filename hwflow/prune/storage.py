"""Storage report: the weight bits the hardware stores, per layer and in total, and what a
compressed encoding would take (Deep Compression's stages, as host-side what-if figures).

For each Conv/Gemm layer of a QGraph (weights only; biases and requantizer parameters are
listed by ``hwflow compile`` under memory):

- ``fp32``: 32 bits a weight of the original model (before channel pruning), the baseline;
- ``int``: ``wbits`` a weight (the quantized, dense model);
- ``rom``: what the accelerator's weight ROM really holds for the layer. The ROM is dense:
  every weight, a pruned one as a stored zero, at the ROM's width (the widest layer's
  ``wbits``); with weight sharing on every layer (the codebook path, see
  :func:`~hwflow.prune.sharing.codebook_bits`) a ``codebook_bits``-bit index a weight plus
  the layer's codebook (entries of that width). Magnitude pruning does not shrink it;
  channel pruning and sharing do. This is before padding to the PE x SIMD array (the
  Program's ``weight_rom_bits``, in a BUILD's memory section, adds the padding).

What-if figures, computed on the host: the hardware never builds these encodings.

- ``sparse``: Deep Compression's relative-index encoding of the layer's symbols (its codes,
  or its ``share_bits``-bit codebook indices when shared): each nonzero entry plus an
  ``r``-bit gap to the previous entry in flat (C-order) position, with a filler entry (a
  stored zero) when a gap exceeds ``2**r - 1``, plus the codebook; ``r`` (``index_bits``)
  is chosen per layer to minimise the bits; the dense symbols (``index_bits`` 0) where
  those are smaller;
- ``huffman``: a bound, not an encoder: the symbols (and, for the sparse encoding, the
  gaps) each cost their empirical entropy (bits/symbol x count), plus the codebook; the
  smaller of dense and sparse.

Ratios are against fp32.
"""

from __future__ import annotations

import math

import numpy as np

from ..quant.qgraph import QGraph

__all__ = ["storage_report", "format_storage", "sparse_entries", "entropy_bits"]

_STAGES = ("fp32", "int", "rom", "sparse", "huffman")
#: Stages no hardware stores (labelled in :func:`format_storage`).
_WHAT_IF = ("sparse", "huffman")


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


def _rom_widths(qg: QGraph) -> tuple[int, int]:
    """``(index bits, code bits)`` of the weight ROM as the schedule lays it out: ``index
    bits`` is 0 unless every layer is shared (then the ROM holds indices and codebooks);
    ``code bits`` is the widest layer's ``wbits`` (weights, or codebook entries)."""
    from .sharing import codebook_bits

    return codebook_bits(qg), max([l.wbits for l in qg.layers if l.op in ("conv", "gemm")], default=2)


def _layer(layer, original: int | None, ibits: int, cbits: int) -> dict:
    w = layer.weight
    n, nnz = int(w.size), int(np.count_nonzero(w))
    n0 = n if original is None else max(int(original), n)
    book = layer.attrs.get("codebook")
    row = {"weights": n, "nonzeros": nnz, "sparsity": 1 - nnz / n if n else 0.0, "wbits": layer.wbits,
           "share_bits": None, "original_weights": n0, "fp32": 32 * n0, "int": layer.wbits * n,
           "rom_width": ibits or cbits, "rom": n * (ibits or cbits) + (len(book) * cbits if ibits else 0)}
    # What-if encodings of the layer's own symbols: its codebook indices when shared, else its codes.
    width, book_bits, sym = layer.wbits, 0, w
    if book is not None:
        row["share_bits"] = width = int(layer.attrs["share_bits"])
        book_bits = len(book) * layer.wbits
        sym = np.asarray(layer.attrs["codebook_index"], dtype=np.int64).reshape(w.shape)
    row.update(index_bits=0, entries=n, sparse=n * width + book_bits, huffman=math.ceil(entropy_bits(sym)) + book_bits)
    if nnz < n:
        bits, r = min((len(sparse_entries(w, r)[0]) * (width + r) + book_bits, r) for r in range(1, 9))
        if bits < row["sparse"]:
            vals, gaps = sparse_entries(w, r)
            row.update(index_bits=r, entries=int(len(vals)), sparse=bits)
            sym_v = np.searchsorted(np.asarray(book), vals) if book is not None else vals
            row["huffman"] = min(row["huffman"], math.ceil(entropy_bits(sym_v) + entropy_bits(gaps)) + book_bits)
    for s in _STAGES[1:]:
        row[f"ratio_{s}"] = row["fp32"] / row[s] if row[s] else float("inf")
    return row


def storage_report(qg: QGraph, original_weights: dict[str, int] | None = None) -> dict:
    """Weight storage of ``qg`` per layer and in total, in bits: the ROM and what-if stages.

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
        ``sparsity``, the bits of each stage (``fp32``, ``int``, ``rom``: what the hardware
        stores; ``sparse``, ``huffman``: host-side what-if figures) and ``ratio_<stage>``
        (fp32 bits / stage bits). A layer row also has ``rom_width`` (bits a weight in the
        ROM), ``index_bits`` and ``entries`` (of the sparse encoding; 0 and ``weights``
        where the dense symbols are smaller).
    """
    orig = original_weights or {}
    ibits, cbits = _rom_widths(qg)
    layers = {l.name: _layer(l, next((orig[n] for n in l.attrs.get("nodes", [l.name]) if n in orig), None), ibits, cbits)
              for l in qg.layers if l.op in ("conv", "gemm")}
    total = {k: sum(r[k] for r in layers.values()) for k in ("weights", "original_weights", "nonzeros", *_STAGES)}
    total["sparsity"] = 1 - total["nonzeros"] / total["weights"] if total["weights"] else 0.0
    for s in _STAGES[1:]:
        total[f"ratio_{s}"] = total["fp32"] / total[s] if total[s] else float("inf")
    return {"layers": layers, "total": total}


def format_storage(report: dict) -> str:
    """The report as a text table (kbit), what-if columns marked ``*``; the ratio is fp32 / ROM."""
    head = (f"{'layer':<16}{'weights':>9}{'sparsity':>9}"
            + "".join(f"{(s.upper() if s == 'rom' else s) + ('*' if s in _WHAT_IF else ''):>{10 if s == 'fp32' else 9}}"
                      for s in _STAGES) + f"{'x ROM':>8}")
    lines = [head + "   (kbit)"]
    rows = list(report["layers"].items()) + [("total", report["total"])]
    for name, r in rows:
        lines.append(f"{name:<16}{r['weights']:>9}{100 * r['sparsity']:>8.1f}%"
                     + "".join(f"{r[s] / 1024:>{10 if s == 'fp32' else 9}.1f}" for s in _STAGES)
                     + f"{r['ratio_rom']:>7.1f}x")
    lines.append("ROM: what the accelerator's weight ROM stores (before padding to PE x SIMD)")
    lines.append("*: what-if sizes of a compressed encoding, computed on the host; the hardware does not build it")
    return "\n".join(lines)
