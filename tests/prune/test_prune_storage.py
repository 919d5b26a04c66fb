"""Storage report on a hand-computed layer."""

import numpy as np
import pytest

from hwflow.prune import entropy_bits, share_weights, sparse_entries, storage_report
from hwflow.quant.qgraph import QGraph, QLayer, QTensor


def _qg(weight):
    w = np.asarray(weight)
    t = {"x": QTensor("x", (1, w.shape[1]), 8, 0.1), "y": QTensor("y", (1, w.shape[0]), 8, 0.1)}
    layer = QLayer("fc", "gemm", ["x"], "y", weight=w, bias=np.zeros(w.shape[0], np.int64), wbits=8)
    return QGraph("t", t, [layer], "x", "y")


def test_sparse_entries_fillers():
    flat = np.zeros(16, np.int64)
    flat[3], flat[15] = 5, -3
    vals, gaps = sparse_entries(flat, 2)    # cap 3: gap 11 = filler(3) + filler(3) + 3
    assert vals.tolist() == [5, 0, 0, -3] and gaps.tolist() == [3, 3, 3, 3]
    vals, gaps = sparse_entries(flat, 4)
    assert vals.tolist() == [5, -3] and gaps.tolist() == [3, 11]


def test_hand_computed_report():
    w = np.zeros((2, 8), np.int64)
    w[0, 3], w[1, 7] = 5, -3                 # flat positions 3 and 15
    r = storage_report(_qg(w))["layers"]["fc"]
    assert (r["fp32"], r["int"]) == (16 * 32, 16 * 8)
    # r=2: 4 entries x 10 = 40; r=3: 3 x 11 = 33; r=4: 2 x 12 = 24 (best); r=5: 2 x 13 = 26
    assert (r["pruned"], r["index_bits"], r["entries"], r["format"]) == (24, 4, 2, "sparse")
    assert r["shared"] == 24                 # no codebook: the pruned figure
    # Huffman bound: values {5, -3} 1 bit each, gaps {3, 11} 1 bit each -> 4 bits
    assert r["huffman"] == 4
    assert r["ratio_huffman"] == pytest.approx(512 / 4)
    assert r["sparsity"] == pytest.approx(14 / 16)


def test_hand_computed_shared_dense():
    w = np.array([[1, 1, -2, 4], [4, 4, -2, 1]], np.int64)
    qg = _qg(w)
    share_weights(qg, 2)                     # 3 distinct nonzeros + 0 fit a 2-bit codebook: unchanged
    assert np.array_equal(qg.layers[0].weight, w)
    assert qg.layers[0].attrs["codebook"].tolist() == [-2, 0, 1, 4]
    r = storage_report(qg, {"fc": 16})["total"]
    assert r["fp32"] == 16 * 32              # counted on the original (pre channel pruning) size
    assert r["shared"] == 8 * 2 + 4 * 8      # dense 2-bit indices + 4 codebook entries of 8 bits
    # index symbols: three of -2/1 twice... entropy of [1,1,-2,4,4,4,-2,1] -> counts 3,2,3
    h = -(3 * np.log2(3 / 8) * 2 + 2 * np.log2(2 / 8))
    assert r["huffman"] == int(np.ceil(h)) + 32
    assert entropy_bits(np.array([7, 7, 7])) == 0.0
