"""Weight sharing on the integer weights: codebook size, exact lookup, determinism, exact zero-point fold."""

from pathlib import Path

import numpy as np
import pytest

from hwflow.flow import load_graph
from hwflow.errors import OptionError
from hwflow.prune import kmeans_1d, share_weights
from hwflow.prune._qweights import replace_qweights
from hwflow.quant import QuantConfig, quantize
from hwflow.quant.reference import run_int_batch

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def mlp():
    return load_graph(MODELS / "digits_mlp.onnx")


def _qg(graph):
    calib = np.load(MODELS / "digits_mlp_calib.npz")["x"][:64].astype(np.float32)
    return quantize(graph, QuantConfig(), calib)


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_codebook_size_and_lookup(mlp, bits):
    qg = _qg(mlp)
    books = share_weights(qg, bits)
    for layer in qg.layers:
        if layer.weight is None:
            continue
        book, idx = layer.attrs["codebook"], layer.attrs["codebook_index"]
        assert len(np.unique(layer.weight)) <= 2 ** bits == 1 << layer.attrs["share_bits"]
        assert len(book) <= 2 ** bits and 0 in book and np.all(np.diff(book) > 0)
        assert np.array_equal(book[idx], layer.weight)
        assert np.array_equal(books[layer.name], book)


def test_deterministic(mlp):
    a, b = _qg(mlp), _qg(mlp)
    share_weights(a, 3, seed=5)
    share_weights(b, 3, seed=5)
    for la, lb in zip(a.layers, b.layers):
        if la.weight is not None:
            assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)
    v = np.random.default_rng(0).integers(-128, 128, 500)
    assert np.array_equal(kmeans_1d(v, 8), kmeans_1d(v, 8))
    assert len(kmeans_1d(v, 8)) <= 8
    assert np.array_equal(kmeans_1d(np.array([3, 3, -1]), 4), [-1, 3])


def test_zero_point_fold_stays_exact():
    """New weights move the bias by z_in * (sum old - sum new): the layer computes
    bias_true + sum((q - z_in) * w_new), checked against a direct int computation."""
    g = load_graph(MODELS / "digits_mlp.onnx")
    qg = _qg(g)
    layer = qg.layers[0]
    tin = qg.tensors[layer.inputs[0]]
    assert tin.zero_point != 0  # asymmetric input: the fold matters
    z = tin.zero_point
    bias_true = layer.bias + z * layer.weight.sum(axis=1)
    w_new = np.clip(layer.weight // 3 * 3, -128, 127)
    replace_qweights(qg, layer, w_new)
    x = np.random.default_rng(2).integers(-128, 128, (5, 64))
    acc = bias_true[None, :] + (x - z) @ w_new.T
    assert np.array_equal(layer.bias[None, :] + x @ w_new.T, acc)


def test_integer_reference_uses_the_codebook_values(mlp):
    qg = _qg(mlp)
    share_weights(qg, 3)
    x = np.random.default_rng(3).integers(-128, 128, (8, 64))
    out = run_int_batch(qg, x)
    for layer in qg.layers:  # rebuilding the weights from codebook + indices changes nothing
        if layer.weight is not None:
            layer.weight = layer.attrs["codebook"][layer.attrs["codebook_index"]]
    assert np.array_equal(run_int_batch(qg, x), out)


@pytest.mark.parametrize("bad", [1, 6, 0, 2.5, True])
def test_bad_bits(mlp, bad):
    with pytest.raises(OptionError, match=r"sharing bits must be an integer in 2..5"):
        share_weights(_qg(mlp), bad)
