"""``hwflow eval`` / ``hwflow quantize`` on the command line: output, JSON keys, bad input."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.cli import main


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """A 16-12-4 MLP (MatMul+Add+Relu, Gemm, Softmax) with labelled data made by itself."""
    d = tmp_path_factory.mktemp("evalcli")
    rng = np.random.default_rng(3)
    w0, b0 = rng.normal(0, 0.4, (16, 12)), rng.normal(0, 0.1, 12)
    w1, b1 = rng.normal(0, 0.4, (4, 12)), rng.normal(0, 0.1, 4)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in ((w0, "w0"), (b0, "b0"), (w1, "w1"), (b1, "b1"))]
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["m"], name="fc0"),
        helper.make_node("Add", ["m", "b0"], ["a"], name="fc0_add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu0"),
        helper.make_node("Gemm", ["r", "w1", "b1"], ["logits"], transB=1, name="fc1"),
        helper.make_node("Softmax", ["logits"], ["p"], axis=1, name="softmax"),
    ]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
                          [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 4])], inits)
    path = d / "mlp.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = rng.uniform(0, 1, (200, 16)).astype(np.float32)
    y = ort.InferenceSession(str(path)).run(None, {"x": x})[0].argmax(1)
    y[:10] = (y[:10] + 1) % 4  # some wrong labels, so accuracy is not trivially 1
    np.savez(d / "test.npz", x=x[:120], y=y[:120])
    np.savez(d / "calib.npz", x=x[120:])
    np.save(d / "test.npy", x[:50])
    return d


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_eval_json_keys(mlp, capsys):
    rc, out, err = _run(capsys, "eval", mlp / "mlp.onnx", "--data", mlp / "test.npz", "--calib", mlp / "calib.npz", "--json")
    assert rc == 0, err
    res = json.loads(out)
    for key in ("float_accuracy", "quant_accuracy", "agreement", "sqnr_db", "weight_bits"):
        assert key in res
    assert res["float_accuracy"] == pytest.approx(110 / 120)
    assert 0 <= res["quant_accuracy"] <= 1 and res["agreement"] > 0.95 and res["sqnr_db"] > 30
    assert res["weight_bits"] == (16 * 12 + 12 * 4) * 8


def test_eval_without_labels_has_no_accuracy(mlp, capsys):
    rc, out, err = _run(capsys, "eval", mlp / "mlp.onnx", "--data", mlp / "test.npy", "--json", "--input-range", "0,1")
    assert rc == 0, err
    res = json.loads(out)
    assert "float_accuracy" not in res and "quant_accuracy" not in res
    assert res["calibration"] == "none" and res["sqnr_db"] > 25


def test_eval_table_and_analysis(mlp, capsys):
    rc, out, err = _run(capsys, "eval", mlp / "mlp.onnx", "--data", mlp / "test.npz", "--calib", mlp / "calib.npz",
                        "--scheme", "pow2", "--wbits", "4", "--bits", "fc1=6/8", "--analysis")
    assert rc == 0, err
    for word in ("float acc", "quant acc", "agreement", "logit SQNR", "weights", "below prec %", "clipped %"):
        assert word in out
    assert f"{16 * 12 * 4 + 12 * 4 * 6} bits" in out


def test_quantize_writes_qdq_and_json(mlp, tmp_path, capsys):
    out_dir = tmp_path / "q"
    rc, out, err = _run(capsys, "quantize", mlp / "mlp.onnx", "--calib", mlp / "calib.npz", "-o", out_dir)
    assert rc == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["model_qdq.onnx", "qgraph.json"]
    doc = json.loads((out_dir / "qgraph.json").read_text())
    assert [l["op"] for l in doc["layers"]] == ["gemm", "gemm"] and [n["op"] for n in doc["host_tail"]["nodes"]] == ["Softmax"]
    x = np.load(mlp / "test.npz")["x"]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert ort.InferenceSession(str(out_dir / "model_qdq.onnx"), so).run(None, {"input": x})[0].shape == (120, 4)
    # a second run replaces the directory; no temp dirs are left behind
    assert main(["quantize", str(mlp / "mlp.onnx"), "--calibration", "none", "-o", str(out_dir)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q"]


BAD = [
    (["--data", "bad_shape.npz"], "x has shape (5, 7), the model expects (N, 16)"),
    (["--data", "bad_dtype.npz"], "expected a numeric"),
    (["--data", "empty.npz"], "no samples"),
    (["--data", "nan.npz"], "NaN or Inf"),
    (["--data", "test.npz", "--calib", "nan.npz"], "NaN or Inf"),
    (["--data", "test.npz", "--wbits", "17"], "wbits must be an integer in 1..16, not 17"),
    (["--data", "test.npz", "--abits", "1"], "1-bit activations (--abits 1) need a sign or threshold after the layer"),
    (["--data", "test.npz", "--scheme", "float8"], "unknown scheme 'float8'"),
    (["--data", "test.npz", "--bits", "fc9=4/8"], "unknown layer name(s) 'fc9'"),
    (["--data", "test.npz", "--bits", "fc0=4/99"], "abits of layer 'fc0' must be an integer in 1..16"),
    (["--data", "test.npz", "--bits", "fc0=four"], "write LAYER=W/A"),
    (["--data", "test.npz", "--calibration", "entropy"], "needs calibration data"),
    (["--data", "test.npz", "--calibration", "magic"], "unknown calibration 'magic'"),
    (["--data", "test.npz", "--input-range", "1"], "--input-range must be LO,HI"),
]


@pytest.mark.parametrize("args,msg", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_exits_2_with_one_line(mlp, capsys, args, msg):
    np.savez(mlp / "bad_shape.npz", x=np.zeros((5, 7), np.float32))
    np.savez(mlp / "bad_dtype.npz", x=np.array([["a"] * 16]))
    np.savez(mlp / "empty.npz", x=np.zeros((0, 16), np.float32))
    np.savez(mlp / "nan.npz", x=np.full((3, 16), np.nan, np.float32))
    args = [str(mlp / a) if a.endswith(".npz") else a for a in args]
    rc, out, err = _run(capsys, "eval", mlp / "mlp.onnx", *args)
    assert rc == 2
    assert err.strip().count("\n") == 0, err
    assert msg in err
