"""The pruner's layer evaluator (bias correction) follows every Conv attribute, as onnxruntime does."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.ir import from_onnx
from hwflow.prune._layers import linear, weight_nodes

rng = np.random.default_rng(3)


@pytest.mark.parametrize("attrs", [
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"auto_pad": "SAME_LOWER", "strides": [2, 1]},
    {"dilations": [2, 2], "pads": [2, 1, 2, 1], "group": 2},
])  # fmt: skip
def test_conv_matches_onnxruntime(attrs):
    import onnxruntime as ort

    w = rng.standard_normal((4, 4 // attrs.get("group", 1), 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    x = rng.standard_normal((5, 4, 9, 8)).astype(np.float32)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    graph = from_onnx(m)
    got = linear(graph, weight_nodes(graph)[0], x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
