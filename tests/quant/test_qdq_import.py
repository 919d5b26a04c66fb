"""Importing pre-quantized models: onnxruntime QDQ and QONNX Quant nodes keep their
scales, zero points and widths instead of being calibrated."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime import quantization as oq

from hwflow.flow import load_graph
from hwflow.errors import UnsupportedOpError
from hwflow.quant import QuantConfig, quantize
from hwflow.quant.evaluate import quant_logits
from hwflow.ir.ops import QONNX_DOMAIN
from hwflow.quant.qdq_import import strip_quantization


class _Reader(oq.CalibrationDataReader):
    def __init__(self, x):
        self.items = iter([{"x": x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


@pytest.mark.parametrize("per_channel", [False, True])
def test_ort_qdq_model_reproduced(small_models, tmp_path, per_channel):
    _, calib, test, path = small_models["residual"]
    dst = tmp_path / "q.onnx"
    oq.quantize_static(str(path), str(dst), _Reader(calib), per_channel=per_channel,
                       quant_format=oq.QuantFormat.QDQ)
    graph = load_graph(dst)
    fixed = graph.meta["fixed_qparams"]
    qg = quantize(graph, QuantConfig(), None)
    # every activation ORT quantized keeps ORT's scale and (signed) zero point
    model = onnx.load(str(dst))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    q_nodes = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in qg.tensors]
    assert len(q_nodes) >= 6
    # ORT's Concat inputs have their own scales; the contract shares the output's, so
    # hwflow adds a requantizing 1x1 average pool where they differ
    assert any(l.name.endswith("_rescale0") and l.op == "avgpool" for l in qg.layers)
    for n in q_nodes:
        t = qg.tensors[n.input[0]]
        assert t.scale == pytest.approx(float(inits[n.input[1]])), n.input[0]
        assert t.zero_point == int(inits[n.input[2]].astype(np.int64)) - (128 if inits[n.input[2]].dtype == np.uint8 else 0)
    assert len(fixed["weights"]) == 4
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ort_out = ort.InferenceSession(str(dst), so).run(None, {"x": test})[0].reshape(len(test), -1)
    ours = quant_logits(qg, test)
    step = qg.tensors[qg.output].scale
    assert np.abs(ort_out - ours).max() <= 3 * step + 1e-6  # ±1 per layer (rounding), no more
    assert (ort_out.argmax(1) == ours.argmax(1)).mean() >= 0.95


def _qonnx_model():
    rng = np.random.default_rng(5)
    w1 = rng.normal(0, 0.5, (3, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (4, 48)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 4).astype(np.float32)
    c = {"s_in": np.float32(1 / 64), "z0": np.float32(0), "b8": np.float32(8), "s_w1": np.float32(0.125),
         "b4": np.float32(4), "s_a": np.float32(1 / 32), "s_w2": np.full((4, 1), 0.05, np.float32),
         "b6": np.float32(6), "s_o": np.float32(0.1), "w1": w1, "w2": w2, "b2": b2}
    Q = lambda i, o, signed=1: helper.make_node("Quant", i, [o], domain=QONNX_DOMAIN, signed=signed, narrow=0,
                                                rounding_mode="ROUND")
    nodes = [
        Q(["x", "s_in", "z0", "b8"], "xq"),
        Q(["w1", "s_w1", "z0", "b4"], "w1q"),
        helper.make_node("Conv", ["xq", "w1q"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        Q(["r", "s_a", "z0", "b8"], "rq", signed=0),
        helper.make_node("Flatten", ["rq"], ["f"]),
        Q(["w2", "s_w2", "z0", "b6"], "w2q"),
        helper.make_node("Gemm", ["f", "w2q", "b2"], ["y"], transB=1),
        Q(["y", "s_o", "z0", "b8"], "yq"),
    ]
    g = helper.make_graph(nodes, "qonnx", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("yq", TensorProto.FLOAT, [1, 4])],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in c.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1)])
    return m, c


def _fake(x, s, bits, signed):
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    return np.clip(np.round(x / s), lo, hi) * s


def test_qonnx_quant_nodes_give_scales_and_bits(tmp_path):
    model, c = _qonnx_model()
    onnx.save(model, str(tmp_path / "b.onnx"))
    graph = load_graph(tmp_path / "b.onnx")
    qg = quantize(graph, QuantConfig(), None)
    conv, fc = qg.layers
    assert conv.wbits == 4 and fc.wbits == 6
    np.testing.assert_array_equal(conv.weight, np.clip(np.round(c["w1"] / 0.125), -8, 7))
    np.testing.assert_array_equal(fc.weight, np.clip(np.round(c["w2"] / 0.05), -32, 31))
    tin = qg.tensors[qg.input]
    assert (tin.scale, tin.zero_point, tin.bits) == (1 / 64, 0, 8)
    hidden = qg.tensors[conv.output]  # unsigned 8-bit z=0 becomes signed codes with z=-128
    assert (hidden.scale, hidden.zero_point, hidden.bits) == (1 / 32, -128, 8)
    assert qg.tensors[qg.output].scale == pytest.approx(0.1)
    # against QONNX's own arithmetic (Quant: round half to even, clamp, times the scale):
    # hwflow's integers are its integers
    x = np.random.default_rng(0).uniform(-2, 2, (20, 1, 4, 4)).astype(np.float32)
    from hwflow.ref.float import run_float

    want = run_float(graph, x)  # Quant nodes run as qonnx runs them (float32)
    got = quant_logits(qg, x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    codes = want / 0.1
    assert np.abs(codes - np.round(codes)).max() < 1e-3


def test_qonnx_transpose_of_an_activation_is_refused_naming_it(tmp_path):
    """A Transpose of quantized weights is taken (tests/fixtures/finn: FINN's KWS MLP); of an
    activation, one line naming the node."""
    model, _ = _qonnx_model()
    nodes = list(model.graph.node)
    nodes.insert(5, helper.make_node("Transpose", ["rq"], ["rt"], name="tr0", perm=[0, 1, 3, 2]))
    nodes[6].input[0] = "rt"  # the Flatten reads the transposed activation
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, tmp_path / "t.onnx")
    with pytest.raises(UnsupportedOpError, match="node 'tr0' \\(Transpose\\) transposes an activation"):
        quantize(load_graph(tmp_path / "t.onnx"), QuantConfig(), None)


@pytest.mark.parametrize("v2", [False, True])
def test_qonnx_trunc_hwflow_cannot_meet_is_refused_naming_it(tmp_path, v2):
    """Trunc v1 (5 inputs), or a Trunc that reads no layer's accumulator: one line naming the node.
    (Brevitas' TruncAvgPool2d, which hwflow meets, is tests/fixtures' brevitas_cnn_truncavg.)"""
    ins = ["x", "s", "z", "b_in", "s_out", "b_out"] if v2 else ["x", "s", "z", "b_in", "b_out"]
    node = helper.make_node("Trunc", ins, ["y"], domain=QONNX_DOMAIN, name="trunc0", rounding_mode="ROUND")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                          [numpy_helper.from_array(np.float32(v), k) for k, v in
                           (("s", 1), ("z", 0), ("b_in", 8), ("s_out", 4), ("b_out", 4))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx.save(m, tmp_path / "t.onnx")
    with pytest.raises(UnsupportedOpError, match="Trunc 'trunc0' " + ("reads no layer" if v2 else "has 5 inputs")):
        quantize(load_graph(tmp_path / "t.onnx"), QuantConfig(), None)


def _two_branches(tmp_path, join: str, second_scale: float, table: bool = False):
    """Quant(x) -> two 1x1 Conv branches, each Relu + Quant (scales 1/16 and ``second_scale``),
    joined by ``join`` (Add or Concat) and quantized; ``table``: a Tanh on the first branch's
    Conv output without a Quant before it."""
    rng = np.random.default_rng(1)
    c = {"s_in": np.float32(1 / 64), "z0": np.float32(0), "b8": np.float32(8), "b4": np.float32(4),
         "s_w": np.float32(0.125), "s_a": np.float32(1 / 16), "s_b": np.float32(second_scale),
         "s_o": np.float32(1 / 8), "wa": rng.normal(0, 0.5, (2, 1, 1, 1)).astype(np.float32),
         "wb": rng.normal(0, 0.5, (2, 1, 1, 1)).astype(np.float32)}
    Q = lambda i, o, signed=1: helper.make_node("Quant", i, [o], domain=QONNX_DOMAIN, signed=signed, narrow=0,
                                                rounding_mode="ROUND", name=f"q_{o}")
    nodes = [Q(["x", "s_in", "z0", "b8"], "xq"), Q(["wa", "s_w", "z0", "b4"], "waq"), Q(["wb", "s_w", "z0", "b4"], "wbq"),
             helper.make_node("Conv", ["xq", "waq"], ["ca"]), helper.make_node("Conv", ["xq", "wbq"], ["cb"]),
             helper.make_node("Tanh" if table else "Relu", ["ca"], ["ra"], name="act_a"),
             helper.make_node("Relu", ["cb"], ["rb"]),
             Q(["ra", "s_a", "z0", "b4"], "aq", signed=0), Q(["rb", "s_b", "z0", "b4"], "bq", signed=0),
             helper.make_node(join, ["aq", "bq"], ["j"], name="join", **({"axis": 1} if join == "Concat" else {})),
             Q(["j", "s_o", "z0", "b8"], "y", signed=0)]
    shape = [1, 4 if join == "Concat" else 2, 3, 3]
    g = helper.make_graph(nodes, "branches", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in c.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx.save(m, tmp_path / "b.onnx")
    return load_graph(tmp_path / "b.onnx")


@pytest.mark.parametrize("join, second_scale", [("Add", 1 / 16), ("Add", 0.09), ("Concat", 1 / 16)])
def test_qonnx_add_and_concat_of_quantized_branches_are_qonnxs_integers(tmp_path, join, second_scale):
    """A residual Add (one scale: ma = mb = 1; two scales: the ratios in add_m) and a Concat of one
    type: hwflow's output codes are qonnx's on random inputs (float32 run as qonnx runs it)."""
    from hwflow.ref.float import run_float

    graph = _two_branches(tmp_path, join, second_scale)
    qg = quantize(graph, QuantConfig(), None)
    layer = next(l for l in qg.layers if l.op == join.lower())
    if join == "Add":
        assert layer.add_m == (1, 1) if second_scale == 1 / 16 else max(layer.add_m) > 1 << 20
    x = np.random.default_rng(0).uniform(-2, 2, (200, 1, 3, 3)).astype(np.float32)
    want = run_float(graph, x)
    got = quant_logits(qg, x).reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("join, second_scale, table, match", [
    ("Concat", 0.09, False, "Concat\\) joins tensors of different scales"),
    ("Add", 1 / 16, True, "activation Tanh on a layer's output before a quantizer.*QuantIdentity before it"),
])
def test_qonnx_joins_and_tables_hwflow_cannot_meet_are_refused(tmp_path, join, second_scale, table, match):
    graph = _two_branches(tmp_path, join, second_scale, table)
    with pytest.raises(UnsupportedOpError, match=match):
        quantize(graph, QuantConfig(), None)
