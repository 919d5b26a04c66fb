"""Magnitude pruning: sparsity reached, per layer and global, deterministic, zeros kept through quantization."""

from pathlib import Path

import numpy as np
import pytest

from hwflow.flow import load_graph
from hwflow.errors import OptionError
from hwflow.prune import mask_qgraph, prune_magnitude
from hwflow.prune._layers import get_weight, weight_nodes
from hwflow.quant import QuantConfig, quantize
from hwflow.ref.float import run_float

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def cnn():
    return load_graph(MODELS / "digits_cnn.onnx")


@pytest.mark.parametrize("s", [0.0, 0.3, 0.9])
def test_per_layer_sparsity_reached(cnn, s):
    g, masks = prune_magnitude(cnn, s, scope="layer")
    for node in weight_nodes(g):
        w = get_weight(g, node)
        assert abs((w == 0).mean() - s) <= 1 / w.size + 1e-12, node.name
        assert np.array_equal(w != 0, masks[node.name] & (get_weight(cnn, [n for n in weight_nodes(cnn) if n.name == node.name][0]) != 0))
    # the original is untouched
    assert all((get_weight(cnn, n) != 0).all() for n in weight_nodes(cnn))


def test_global_threshold_removes_smallest_overall(cnn):
    g, masks = prune_magnitude(cnn, 0.7, scope="global")
    kept = np.concatenate([np.abs(get_weight(cnn, n))[masks[n.name]] for n in weight_nodes(cnn)])
    cut = np.concatenate([np.abs(get_weight(cnn, n))[~masks[n.name]] for n in weight_nodes(cnn)])
    total = kept.size + cut.size
    assert cut.size == round(0.7 * total)
    assert cut.max() <= kept.min()
    g2, _ = prune_magnitude(cnn, 0.7, scope="global")
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    assert np.array_equal(run_float(g, x), run_float(g2, x))  # deterministic


def test_zeros_survive_gptq_quantization(cnn):
    g, masks = prune_magnitude(cnn, 0.6)
    calib = np.random.default_rng(1).uniform(0, 1, (32, 1, 8, 8)).astype(np.float32)
    qg = quantize(g, QuantConfig(rounding="gptq"), calib)
    mask_qgraph(qg, masks)
    for layer in qg.layers:
        if layer.weight is not None:
            assert np.array_equal(layer.weight != 0, masks[layer.name] & (layer.weight != 0))
            assert not layer.weight[~masks[layer.name]].any()
            assert layer.attrs["pruned"]


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "x"])
def test_bad_sparsity(cnn, bad):
    with pytest.raises(OptionError, match=r"must be (in \[0, 1\)|a number)"):
        prune_magnitude(cnn, bad)


def test_unknown_layer_and_scope(cnn):
    with pytest.raises(OptionError, match=r"unknown layer\(s\) 'nope'"):
        prune_magnitude(cnn, {"nope": 0.5})
    with pytest.raises(OptionError, match=r"scope must be"):
        prune_magnitude(cnn, 0.5, scope="row")
