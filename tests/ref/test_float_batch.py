"""run_float: batches, keep=True, fused activations, host tail, input checks."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.errors import DataError
from hwflow.ir import from_onnx
from hwflow.passes import optimize
from hwflow.ref.float import apply_activation, run_float

rng = np.random.default_rng(7)


def _cnn():
    w1 = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    dw = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((4 * 3 * 3, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["a"], ["b"], alpha=0.1),
        helper.make_node("Conv", ["b", "dw"], ["c"], group=4, strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c", "c2"], ["d"]),
        helper.make_node("AveragePool", ["b"], ["c2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["d", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["g"]),
        helper.make_node("Tanh", ["g"], ["h"]),
        helper.make_node("LogSoftmax", ["h"], ["y"], axis=-1),
    ]
    nodes = nodes[:3] + [nodes[4], nodes[3]] + nodes[5:]
    inits = {"w1": w1, "dw": dw, "fc": fc, "shape": np.array([0, -1], np.int64)}
    g = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("optimized", [False, True])
def test_batch_equals_onnxruntime_sample_by_sample(optimized):
    model = _cnn()
    graph = from_onnx(model)
    if optimized:
        graph = optimize(graph)
        assert graph.count("Reshape") == 0 and graph.count("LeakyRelu") == 0
    x = rng.standard_normal((9, 2, 6, 6)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]
    got = run_float(graph, x)
    assert got.shape == (9, 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for i in (0, 8):
        np.testing.assert_allclose(run_float(graph, x[i : i + 1]), want[i : i + 1], rtol=1e-5, atol=1e-5)


def test_keep_returns_every_tensor():
    graph = optimize(from_onnx(_cnn()))
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    env = run_float(graph, x, keep=True)
    assert set(env) == {"x"} | {t for n in graph.nodes for t in n.outputs}
    assert all(v.shape[0] == 3 for v in env.values())
    np.testing.assert_array_equal(env[graph.outputs[0]], run_float(graph, x))


def test_input_shape_is_checked():
    graph = from_onnx(_cnn())
    with pytest.raises(DataError, match=r"input 'x' has shape \(1, 3, 6, 6\); the model expects \(1, 2, 6, 6\)"):
        run_float(graph, np.zeros((1, 3, 6, 6), np.float32))


def test_fused_activations():
    y = np.linspace(-3, 3, 13, dtype=np.float32)
    np.testing.assert_array_equal(apply_activation(y, {"op": "Relu"}), np.maximum(y, 0))
    np.testing.assert_array_equal(apply_activation(y, {"op": "Clip", "min": 0.0, "max": 6.0}), np.clip(y, 0, 6))
    np.testing.assert_allclose(apply_activation(y, {"op": "LeakyRelu", "alpha": 0.1}), np.where(y > 0, y, 0.1 * y))
    np.testing.assert_allclose(apply_activation(y, {"op": "Sigmoid"}), 1 / (1 + np.exp(-y)), rtol=1e-6)
    np.testing.assert_allclose(apply_activation(y, {"op": "Tanh"}), np.tanh(y), rtol=1e-6)
    big = np.array([-1000.0, 1000.0], np.float32)
    np.testing.assert_array_equal(apply_activation(big, {"op": "Sigmoid"}), [0.0, 1.0])


@pytest.mark.parametrize(
    "node",
    [
        helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0]),
        helper.make_node("Softmax", ["x"], ["y"], axis=0),
        helper.make_node("Flatten", ["x"], ["y"], axis=0),
    ],
    ids=lambda n: n.op_type,
)
def test_a_batch_is_refused_where_it_would_mix_samples(node):
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    graph = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), strict=False)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(DataError, match=r"works across axis 0, the batch: run one sample at a time"):
        run_float(graph, x)
    run_float(graph, x[:1])  # one sample is fine
