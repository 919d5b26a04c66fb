"""Low-bit quantization: pot/binary/ternary weights and bipolar activations in the contract,
the quantizer that makes them, quant.json and QDQ, and the bad-input lines (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from _support.lowbit_models import sign_after_pool, sign_cnn, sign_mlp
from hwflow.cli import main
from hwflow.ir.onnx_import import load_model
from hwflow.passes import optimize
from hwflow.quant import QuantConfig, QGraph, QLayer, QTensor, quantize
from hwflow.quant._lower import lower
from hwflow.quant.config import EDGE_BITS
from hwflow.quant.evaluate import compare, float_logits, quant_logits
from hwflow.quant.qdq import export_qdq
from hwflow.quant.quantize import _threshold
from hwflow.quant.reference import _run, run_layer
from hwflow.quant.serialize import qgraph_from_dict, qgraph_to_dict
from hwflow.quant.wformat import WeightFormat

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"


def _load(path: Path):
    return optimize(load_model(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """name -> (optimized graph, calibration x)."""
    d = tmp_path_factory.mktemp("lowbit")
    out = {}
    for build in (sign_mlp, sign_cnn, sign_after_pool):
        p = build(d / f"{build.__name__}.onnx")
        out[build.__name__] = (_load(p), np.load(p.with_name(p.stem + "_calib.npz"))["x"])
    out["digits_cnn"] = (_load(EXAMPLES / "digits_cnn.onnx"), np.load(EXAMPLES / "digits_cnn_calib.npz")["x"])
    return out


def _weighted(qg: QGraph) -> list[QLayer]:
    return [l for l in qg.layers if l.weight is not None]


# ---- the contract ------------------------------------------------------------------------


def test_bipolar_tensor():
    t = QTensor("t", (1, 4), 1, 0.5)
    assert t.range == (-1, 1) and t.value_bits == 2
    assert t.quantize(np.array([-0.1, 0.0, 3.0, -7.0])).tolist() == [-1, 1, 1, -1]
    np.testing.assert_array_equal(t.dequantize(np.array([-1, 1])), [-0.5, 0.5])
    with pytest.raises(ValueError, match="bipolar .* zero point 0, not 1"):
        QTensor("t", (1, 4), 1, 0.5, 1)
    with pytest.raises(ValueError, match="bits must be in 1..32, not 0"):
        QTensor("t", (1, 4), 0, 0.5)


def _gemm(w, wbits, wformat):
    return QLayer("fc", "gemm", ["x"], "y", weight=np.array(w), bias=np.zeros(len(w), np.int64), wbits=wbits,
                  wformat=wformat)


def test_layer_checks_its_weight_format():
    assert _gemm([[1, -64, 0, 8]], 4, "pot").mul_wbits == 8
    assert _gemm([[1, -1]], 1, "binary").mul_wbits == 2
    assert _gemm([[1, 0, -1]], 2, "ternary").mul_wbits == 2
    assert _gemm([[127, -128]], 8, "int").mul_wbits == 8
    with pytest.raises(ValueError, match=r"layer 'fc': weights are not all pot4 values"):
        _gemm([[3]], 4, "pot")
    with pytest.raises(ValueError, match=r"layer 'fc': weights are not all binary1 values"):
        _gemm([[0, 1]], 1, "binary")
    with pytest.raises(ValueError, match="layer 'fc': binary weights take wbits 1, not 2"):
        _gemm([[1]], 2, "binary")
    with pytest.raises(ValueError, match="layer 'fc': unknown weight format 'pot2'"):
        _gemm([[1]], 2, "pot2")


def test_threshold_layer_shape():
    layer = QLayer("s", "gemm", ["x"], "y", weight=np.array([[1, -1], [1, 1]]), bias=np.array([3, -2]), wbits=1,
                   wformat="binary", m=[1], n=[0], lo=-1, hi=0, lut=np.array([-1, 1]))
    assert layer.is_threshold
    assert layer.thresholds().tolist() == [-3, 2]
    plain = QLayer("p", "gemm", ["x"], "y", weight=np.array([[1]]), bias=np.array([0]), wbits=8, m=[3], n=[2], mbits=2)
    assert not plain.is_threshold
    with pytest.raises(ValueError, match="not a threshold Conv/Gemm"):
        plain.thresholds()


@pytest.mark.parametrize("z,lowest", [(0, -128), (-128, -128), (5, -8)])
def test_standalone_threshold_compares_with_the_zero_point(z, lowest):
    """A Sign on its own: +1 iff the input code is at or above the input's zero point, even
    when that is the lowest code (then lo/hi move up one, with lut_zero_point = 1)."""
    bits = {-128: 8, -8: 4}[lowest]
    tin, tout = QTensor("x", (1, 300), bits, 0.1, z), QTensor("y", (1, 300), 1, 1.0)

    class _FL:
        op = "lut"

    layer = QLayer("s", "lut", ["x"], "y", **_threshold(_FL, [tin]))
    assert layer.is_threshold and tin.range[0] <= layer.lo
    q = np.arange(tin.range[0], tin.range[1] + 1)[None, :]
    np.testing.assert_array_equal(run_layer(layer, [q], [tin], tout), np.where(q >= z, 1, -1))


# ---- the quantizer -----------------------------------------------------------------------


def test_pot_everywhere_binary_spares_the_edges(models):
    graph, calib = models["digits_cnn"]
    qg = quantize(graph, QuantConfig(weights="pot"), calib)
    assert [(l.wformat, l.wbits, l.mul_wbits) for l in _weighted(qg)] == [("pot", 4, 8)] * 3
    for l in _weighted(qg):
        assert np.isin(l.weight, WeightFormat("pot", 4).levels).all()
        assert len(np.unique(np.abs(l.weight))) > 3  # the window is used, not one level
    qg = quantize(graph, QuantConfig(weights="binary"), calib)
    assert [(l.name, l.wformat, l.wbits) for l in _weighted(qg)] == [
        ("conv1", "int", EDGE_BITS), ("conv2", "binary", 1), ("fc", "int", EDGE_BITS)]
    qg = quantize(graph, QuantConfig(weights="ternary", layer_weights={"conv1": "ternary", "fc": "pot"},
                                     layer_bits={"fc": (3, 8)}), calib)
    assert [(l.wformat, l.wbits) for l in _weighted(qg)] == [("ternary", 2), ("ternary", 2), ("pot", 3)]
    assert set(np.unique(qg.layer("conv2").weight)) == {-1, 0, 1}


def test_pot_with_pow2_scales_is_shift_only(models):
    graph, calib = models["digits_cnn"]
    qg = quantize(graph, QuantConfig(weights="pot", scheme="pow2"), calib)
    for l in _weighted(qg):
        s = np.asarray(l.attrs["w_scale"])
        assert np.all(np.exp2(np.round(np.log2(s))) == s)  # real weight = ±2**(k + e)
        assert l.mbits == 1 and (l.m == 1).all()


def test_wbits_follow_the_format():
    assert QuantConfig(weights="binary").wbits == 1
    assert QuantConfig(weights="pot").wbits == 4
    assert QuantConfig().with_(weights="ternary").wbits == 2
    assert QuantConfig().with_(weights="pot", wbits=5).wbits == 5
    assert QuantConfig(weights="pot").with_(scheme="pow2").wbits == 4


def test_low_bit_formats_are_accurate_enough_on_the_digits_cnn(models):
    """Without retraining: pot4 stays close to float; binary hidden weights lose a little."""
    graph, calib = models["digits_cnn"]
    test = np.load(EXAMPLES / "digits_cnn_test.npz")
    acc = {}
    for w in ("pot", "ternary", "binary"):
        qg = quantize(graph, QuantConfig(weights=w), calib)
        acc[w] = compare(float_logits(graph, qg, test["x"]), quant_logits(qg, test["x"]), test["y"])["quant_accuracy"]
    assert acc["pot"] >= 0.97 and acc["ternary"] >= 0.95 and acc["binary"] >= 0.9, acc


def test_bipolar_activations_and_thresholds(models):
    graph, calib = models["sign_mlp"]
    qg = quantize(graph, QuantConfig(weights="binary", abits=1), calib)
    assert [qg.tensors[l.output].bits for l in qg.layers] == [1, 1, EDGE_BITS]
    assert qg.tensors[qg.input].bits == EDGE_BITS
    env = _run(qg, qg.tensors[qg.input].quantize(calib))
    for layer in qg.layers[:2]:
        assert layer.is_threshold
        x = env[layer.inputs[0]]
        total = x @ layer.weight.T  # the MACs, bias apart
        np.testing.assert_array_equal(env[layer.output], np.where(total >= layer.thresholds(), 1, -1))
        assert set(np.unique(env[layer.output])) == {-1, 1}


def test_a_threshold_is_the_float_decision_exactly(models):
    """The floored bias makes ``acc >= 0`` the float test ``Σ·s_acc + b >= 0`` for the same Σ."""
    graph, calib = models["sign_mlp"]
    cfg = QuantConfig(weights="binary", abits=1, cle=False, bias_correction=False, rounding="nearest")
    qg = quantize(graph, cfg, calib)
    plan = lower(graph)
    env = _run(qg, qg.tensors[qg.input].quantize(calib))
    for layer, fl in zip(qg.layers[:2], plan.layers[:2]):
        tin = qg.tensors[layer.inputs[0]]
        x = env[layer.inputs[0]] - tin.zero_point
        s_acc = tin.scale * np.asarray(layer.attrs["w_scale"])
        float_y = (x @ layer.weight.T) * s_acc + fl.bias  # integer Σ, float bias: exact to float rounding
        np.testing.assert_array_equal(env[layer.output], np.where(float_y >= 0, 1, -1))


def test_bipolar_conv_pool_and_standalone_sign(models):
    graph, calib = models["sign_cnn"]
    qg = quantize(graph, QuantConfig(weights="binary", abits=1), calib)
    assert [(l.name, qg.tensors[l.output].bits) for l in qg.layers] == [
        ("conv0", 1), ("pool0", 1), ("conv1", 1), ("pool1", 1), ("fc", EDGE_BITS)]
    assert qg.layer("conv1").wformat == "binary" and qg.layer("conv1").pads == (1, 1, 1, 1)
    graph, calib = models["sign_after_pool"]
    qg = quantize(graph, QuantConfig(abits=1, layer_bits={"conv0": (8, 8), "pool0": (8, 8)}), calib)
    sign = qg.layer("sign0")
    assert sign.op == "lut" and sign.is_threshold
    env = _run(qg, qg.tensors[qg.input].quantize(calib))
    z = qg.tensors["p0"].zero_point
    np.testing.assert_array_equal(env["s0"], np.where(env["p0"] >= z, 1, -1))


def test_sign_with_wide_activations_is_a_lookup(models):
    graph, calib = models["sign_mlp"]
    qg = quantize(graph, QuantConfig(), calib)
    layer = qg.layers[0]
    assert not layer.is_threshold and layer.attrs["activation"] == "Sign" and len(layer.lut) == 256
    out = qg.tensors[layer.output]
    assert set(out.dequantize(np.unique(layer.lut)).round(2)) <= {-1.0, 0.0, 1.0}


def test_shipped_sfc_w1a1_post_training(tmp_path):
    """The SFC-shaped example under --weights binary --abits 1 (no retraining)."""
    graph = _load(EXAMPLES / "digits784_sfc.onnx")
    calib = np.load(EXAMPLES / "digits784_tanh_mlp_calib.npz")["x"]
    test = np.load(EXAMPLES / "digits784_tanh_mlp_test.npz")
    qg = quantize(graph, QuantConfig(weights="binary", abits=1, rounding="nearest"), calib)
    assert [(l.wformat, l.wbits, qg.tensors[l.output].bits) for l in qg.layers] == [
        ("int", 8, 1), ("binary", 1, 1), ("binary", 1, 1), ("int", 8, 8)]
    res = compare(float_logits(graph, qg, test["x"]), quant_logits(qg, test["x"]), test["y"])
    assert res["float_accuracy"] > 0.95 and res["quant_accuracy"] > 0.9, res


# ---- quant.json and QDQ ------------------------------------------------------------------


@pytest.mark.parametrize("name,cfg", [
    ("digits_cnn", QuantConfig(weights="pot", wbits=5, scheme="symmetric")),
    ("sign_cnn", QuantConfig(weights="binary", abits=1)),
    ("sign_mlp", QuantConfig(weights="ternary", abits=1, layer_weights={"fc0": "pot"})),
])
def test_quant_json_round_trip(models, name, cfg):
    graph, calib = models[name]
    qg = quantize(graph, cfg, calib)
    back = qgraph_from_dict(json.loads(json.dumps(qgraph_to_dict(qg))))
    for a, b in zip(qg.layers, back.layers):
        assert (a.wformat, a.wbits, a.is_threshold) == (b.wformat, b.wbits, b.is_threshold)
    assert {t: q.bits for t, q in qg.tensors.items()} == {t: q.bits for t, q in back.tensors.items()}
    x = qg.tensors[qg.input].quantize(calib)
    np.testing.assert_array_equal(_run(back, x)[qg.output], _run(qg, x)[qg.output])


def _ort(model):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name,cfg", [
    ("sign_mlp", QuantConfig(weights="binary", abits=1)),
    ("sign_cnn", QuantConfig(weights="pot", abits=1, scheme="symmetric")),
    ("sign_after_pool", QuantConfig(weights="ternary", abits=1, layer_weights={"conv0": "ternary"},
                                    layer_bits={"pool0": (8, 8)})),
    ("digits_cnn", QuantConfig(weights="pot", scheme="pow2")),
])
def test_qdq_export(models, name, cfg):
    """Exported integer weight values run in onnxruntime; each layer on onnxruntime's own
    inputs: thresholds exactly, the rest within one code (round half even vs half up)."""
    graph, calib = models[name]
    qg = quantize(graph, cfg, calib)
    sess = _ort(export_qdq(qg, expose=True))
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": calib})))

    def codes(t):
        q = qg.tensors[t]
        return np.round(outs[f"act::{t}"] / q.scale + q.zero_point).astype(np.int64).reshape(len(calib), *q.shape[1:])

    thresholds = 0
    for layer in qg.layers:
        ins = [codes(t) for t in layer.inputs]
        want = run_layer(layer, ins, [qg.tensors[t] for t in layer.inputs], qg.tensors[layer.output])
        got = codes(layer.output)
        if layer.is_threshold:
            thresholds += 1
            np.testing.assert_array_equal(got, want.reshape(got.shape))
        elif layer.lut is None:
            assert np.abs(got - want.reshape(got.shape)).max() <= 1, layer.name
    assert thresholds == sum(qg.tensors[l.output].bits == 1 and l.op != "maxpool" for l in qg.layers)


# ---- bad input: one line, exit 2 ---------------------------------------------------------


def _one_line(capsys, argv: list[str]) -> str:
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwflow: error: ") and "Traceback" not in err, err
    return lines[0]


CNN = [str(EXAMPLES / f"digits_cnn{f}") for f in (".onnx", "_calib.npz", "_test.npz")]
CNN = [CNN[0], "--calib", CNN[1], "--data", CNN[2]]
MLP784 = [str(EXAMPLES / f"digits784_tanh_mlp{f}") for f in (".onnx", "_calib.npz", "_test.npz")]
MLP784 = [MLP784[0], "--calib", MLP784[1], "--data", MLP784[2]]


@pytest.mark.parametrize("args,msg", [
    (CNN + ["--weights", "binary", "--wbits", "4"], "binary weights take wbits 1, not 4"),
    (CNN + ["--weights", "ternary", "--wbits", "3"], "ternary weights take wbits 2, not 3"),
    (CNN + ["--weights", "conv2=binary", "--bits", "conv2=4/8"], "layer 'conv2': binary weights take wbits 1, not 4"),
    (CNN + ["--abits", "1"], "layer 'conv1': 1-bit activations (--abits 1) need a sign or threshold after the layer, "
                             "and its activation is Relu; give it wider activations, e.g. --bits conv1=8/8"),
    (CNN + ["--bits", "fc=8/1"], "layer 'fc': 1-bit activations (--abits 1) need a sign or threshold"),
    (CNN + ["--weights", "pot", "--wbits", "2"], "pot weights take wbits 3..5 (a sign, an exponent field and a zero code"),
    (MLP784 + ["--weights", "pot", "--wbits", "5", "--scheme", "asymmetric"],
     "layer 'fc0': pot5 weights (up to ±16384) over 784 inputs cannot fold the asymmetric input's zero point into "
     "the int32 bias"),
    (CNN + ["--weights", "int", "--wbits", "1"], "int weights take wbits 2..16, not 1"),
    (CNN + ["--weights", "potato"], "unknown weight format 'potato'; use one of int, pot, binary, ternary"),
    (CNN + ["--weights", "=pot"], "bad weight format '=pot'; write FORMAT or LAYER=FORMAT"),
    (CNN + ["--weights", "fc9=pot"], "unknown layer name(s) 'fc9' in per-layer weight formats; layers are: conv1, "),
    (CNN + ["--weights", "pot", "--share", "3"], "layer 'conv1' has pot weights; weight sharing (--share) takes int"),
    (CNN + ["--weights", "binary", "--prune", "0.5"], "layer 'conv2' has binary weights (±1, no zero); magnitude pruning"),
    (CNN + ["--weights", "pot", "--auto-bits", "--budget-kbit", "5"], "auto-bits searches int weight widths"),
])
def test_bad_input(capsys, args, msg):
    line = _one_line(capsys, ["eval", *args])
    assert msg in line, line


def test_pot_asymmetric_folds_when_it_fits(models):
    """pot4 values reach only ±64: the zero point folds, so asymmetric is fine."""
    graph, calib = models["digits_cnn"]
    qg = quantize(graph, QuantConfig(weights="pot", scheme="asymmetric"), calib)
    assert any(qg.tensors[l.inputs[0]].zero_point != 0 for l in _weighted(qg))
