"""Storage report on hand-computed layers; its ROM figure is the schedule's weight ROM."""

import numpy as np
import pytest

from _support.graphs import GraphBuilder, digits_cnn
from hwflow.prune import entropy_bits, mask_qgraph, share_weights, sparse_entries, storage_report
from hwflow.quant.qgraph import QGraph, QLayer, QTensor
from hwflow.schedule import schedule


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
    assert (r["rom"], r["rom_width"]) == (16 * 8, 8)  # the ROM is dense: pruned weights are stored zeros
    # what-if sparse encoding: r=2: 4 entries x 10 = 40; r=3: 3 x 11 = 33; r=4: 2 x 12 = 24 (best); r=5: 2 x 13 = 26
    assert (r["sparse"], r["index_bits"], r["entries"]) == (24, 4, 2)
    # Huffman bound: values {5, -3} 1 bit each, gaps {3, 11} 1 bit each -> 4 bits
    assert r["huffman"] == 4
    assert r["ratio_huffman"] == pytest.approx(512 / 4) and r["ratio_rom"] == pytest.approx(4)
    assert r["sparsity"] == pytest.approx(14 / 16)


def test_hand_computed_shared_dense():
    w = np.array([[1, 1, -2, 4], [4, 4, -2, 1]], np.int64)
    qg = _qg(w)
    share_weights(qg, 2)                     # 3 distinct nonzeros + 0 fit a 2-bit codebook: unchanged
    assert np.array_equal(qg.layers[0].weight, w)
    assert qg.layers[0].attrs["codebook"].tolist() == [-2, 0, 1, 4]
    r = storage_report(qg, {"fc": 16})["total"]
    assert r["fp32"] == 16 * 32              # counted on the original (pre channel pruning) size
    assert r["rom"] == 8 * 2 + 4 * 8         # 2-bit indices + 4 codebook entries of 8 bits
    assert r["sparse"] == r["rom"]           # no zeros: the dense symbols are the smallest encoding
    # index symbols: three of -2/1 twice... entropy of [1,1,-2,4,4,4,-2,1] -> counts 3,2,3
    h = -(3 * np.log2(3 / 8) * 2 + 2 * np.log2(2 / 8))
    assert r["huffman"] == int(np.ceil(h)) + 32
    assert entropy_bits(np.array([7, 7, 7])) == 0.0


@pytest.mark.parametrize("share", [None, 3])
def test_rom_is_what_the_schedule_stores(share):
    """Magnitude pruning leaves the ROM dense; sharing makes it indices plus codebooks. At
    PE = SIMD = 1 (no padding) the report's ROM equals the scheduled weight ROM."""
    b = GraphBuilder(seed=3, wbits=6)
    digits_cnn(b)
    qg = b.build()
    masks = {l.name: np.random.default_rng(0).random(l.weight.shape) < 0.3 for l in qg.layers if l.weight is not None}
    mask_qgraph(qg, masks)
    if share:
        share_weights(qg, share)
    rep = storage_report(qg)["total"]
    assert rep["sparsity"] > 0.6
    assert rep["rom"] == schedule(qg, "generic", pe=1, simd=1).weight_rom_bits
    books = sum(len(l.attrs["codebook"]) for l in qg.layers if "codebook" in l.attrs)
    assert rep["rom"] == (rep["weights"] * 6 if share is None else rep["weights"] * 3 + books * 6)
    assert rep["sparse"] < rep["rom"]        # the what-if sparse encoding is smaller, but not built
