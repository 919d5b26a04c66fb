"""Structured channel pruning: structure, float outputs (numpy reference vs onnxruntime), refusals."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwflow.flow import load_graph
from hwflow.errors import OptionError
from hwflow.ir.export import to_onnx
from hwflow.prune import correct_bias, prune_channels
from hwflow.prune._layers import get_bias, get_weight, set_bias, set_weight
from hwflow.ref.float import run_float

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "examples" / "models"


@pytest.fixture(scope="module")
def cnn():
    return load_graph(MODELS / "digits_cnn.onnx")


def _ort(graph, x):
    sess = ort.InferenceSession(to_onnx(graph).SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])


def _x(n=6):
    return np.random.default_rng(0).uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)


def test_structure_and_mac_work_shrink(cnn):
    g, rep = prune_channels(cnn, 0.25)
    assert rep["pruned"] == {"conv1": (8, 6), "conv2": (16, 12)}
    assert "fc" in rep["skipped"] and "outputs" in rep["skipped"]["fc"]
    w = {n.name: get_weight(g, n) for n in g.nodes if n.op in ("Conv", "Gemm")}
    assert w["conv1"].shape == (6, 1, 3, 3)
    assert w["conv2"].shape == (12, 6, 3, 3)          # input channels follow conv1
    assert w["fc"].shape == (10, 12 * 2 * 2)           # Flatten: channel x H x W blocks
    assert g.shape("pool2") == (1, 12, 2, 2)
    assert g.meta["kept_channels"]["conv1"] == sorted(g.meta["kept_channels"]["conv1"])
    # the rewritten graph is a valid ONNX model: numpy reference equals onnxruntime
    x = _x()
    np.testing.assert_allclose(run_float(g, x), _ort(g, x), rtol=1e-5, atol=1e-5)


def test_dead_channels_removed_exactly(cnn):
    """Channels that are exactly zero after ReLU carry nothing: removing them keeps the outputs."""
    g = cnn.copy()
    for name, dead in (("conv1", [1, 6]), ("conv2", [0, 3, 9, 15])):
        node = g.node(name)
        w, b = get_weight(g, node), get_bias(g, node)
        w[dead], b[dead] = 0.0, -1.0                   # ReLU(-1) = 0 everywhere
        set_weight(g, node, w)
        set_bias(g, node, b)
    p, rep = prune_channels(g, {"conv1": 0.25, "conv2": 0.25})
    assert p.meta["kept_channels"]["conv1"] == [0, 2, 3, 4, 5, 7]
    assert p.meta["kept_channels"]["conv2"] == [i for i in range(16) if i not in (0, 3, 9, 15)]
    x = _x()
    np.testing.assert_allclose(run_float(p, x), run_float(g, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_float(p, x), _ort(g, x), rtol=1e-4, atol=1e-5)


def test_bias_correction_restores_constant_channel():
    """A removed channel that is constant (bias only) is folded into the next bias exactly."""
    g = load_graph(MODELS / "digits_cnn.onnx")
    node = g.node("conv1")
    w, b = get_weight(g, node), get_bias(g, node)
    w[2], b[2] = 0.0, 0.7                              # constant 0.7 after ReLU and pooling
    set_weight(g, node, w)
    set_bias(g, node, b)
    p, _ = prune_channels(g, {"conv1": 0.125})
    assert 2 not in p.meta["kept_channels"]["conv1"]
    x = _x(16)
    assert not np.allclose(run_float(p, x), run_float(g, x), atol=1e-3)
    c, shifts = correct_bias(g, p, x)
    # conv2 sees the constant only through zero padding at the borders, so only the mean is exact
    assert "conv2" in shifts
    out_g, out_c = run_float(g, x), run_float(c, x)
    assert np.abs(out_c - out_g).mean() < np.abs(run_float(p, x) - out_g).mean()


def test_refuses_all_channels_and_tied_layers(cnn):
    with pytest.raises(OptionError, match=r"removing them all|pruning all channels"):
        prune_channels(cnn, {"conv1": 1.0})
    with pytest.raises(OptionError, match=r"cannot prune channels of layer 'fc': its channels are outputs"):
        prune_channels(cnn, {"fc": 0.5})
    res = load_graph(ROOT / "tests" / "fixtures" / "torch_resdw_fold.onnx")
    _, rep = prune_channels(res, 0.5)
    assert "Add" in rep["skipped"]["/pw/Conv"]
    assert rep["skipped"]["/dw/Conv"] == "grouped convolution"
