"""Shape rules: check_shapes re-derives every node's output shape."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from hwflow.errors import ModelError
from hwflow.ir import Graph, Node, Tensor, check_shapes
from hwflow.ir._geometry import window


def _graph():
    g = Graph("g", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, 3, 8, 8)))
    g.add_const("w", np.zeros((4, 3, 3, 3), np.float32))
    g.add_tensor(Tensor("c", (1, 4, 8, 8)))
    g.add_tensor(Tensor("y", (1, 4, 4, 4)))
    g.add_node(Node("conv", "Conv", ["x", "w"], ["c"], {"pads": [1, 1, 1, 1]}))
    g.add_node(Node("pool", "MaxPool", ["c"], ["y"], {"kernel_shape": [2, 2], "strides": [2, 2]}))
    return g


def test_consistent_graph_verifies():
    _graph().verify()


def test_wrong_declared_shape_names_the_node():
    g = _graph()
    g.tensors["y"].shape = (1, 4, 5, 5)
    with pytest.raises(ModelError, match=r"node 'pool' \(MaxPool\): output 'y' is declared \(1, 4, 5, 5\) but its inputs give \(1, 4, 4, 4\)"):
        check_shapes(g)


def test_inconsistent_inputs_name_the_node():
    g = _graph()
    g.tensors["w"] = Tensor("w", (4, 2, 3, 3), data=np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ModelError, match=r"node 'conv' \(Conv\): inconsistent shapes: input has 3 channels"):
        g.verify()


@pytest.mark.parametrize(
    "attrs",
    [
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        {"auto_pad": "SAME_LOWER", "strides": [3, 2]},
        {"auto_pad": "VALID", "strides": [2, 2]},
        {"pads": [1, 0, 2, 1], "strides": [2, 3], "ceil_mode": 1},
        {"pads": [0, 0, 0, 0], "strides": [2, 2], "dilations": [2, 1], "ceil_mode": 1},
    ],
)
def test_pool_geometry_matches_onnxruntime(attrs):
    import onnxruntime as ort

    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], **attrs)
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 11, 9])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": np.zeros((1, 2, 11, 9), np.float32)})[0].shape
    assert (1, 2) + window((11, 9), (3, 2), attrs).out == want
