import numpy as np
import pytest
from onnx import helper

from hwflow.passes import FuseActivation


@pytest.mark.parametrize(
    "act, attrs, want",
    [
        ("Relu", {}, {"op": "Relu"}),
        ("LeakyRelu", {"alpha": 0.2}, {"op": "LeakyRelu", "alpha": pytest.approx(0.2)}),
        ("Sigmoid", {}, {"op": "Sigmoid"}),
        ("Tanh", {}, {"op": "Tanh"}),
        ("Clip", {}, {"op": "Clip", "min": 0.0, "max": 6.0}),
    ],
)
def test_fuses_into_conv(kit, act, attrs, want):
    ins = ["c", "lo", "hi"] if act == "Clip" else ["c"]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node(act, ins, ["y"], **attrs)]
    inits = {"w": kit.weights(3, 2, 3, 3), "b": kit.weights(3), "lo": np.float32(0), "hi": np.float32(6)}
    model = kit.model(nodes, [1, 2, 5, 5], inits=inits)
    g = kit.graph(model)
    assert FuseActivation()(g).modified
    assert g.ops() == ["Conv"]
    assert g.nodes[0].attrs["activation"] == want
    kit.same_outputs(model, g)


def test_fuses_clip_given_as_attributes_at_opset_9(kit):
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["h"]), helper.make_node("Clip", ["h"], ["y"], min=-1.0, max=0.5)]
    model = kit.model(nodes, [1, 4], inits={"w": kit.weights(4, 3), "c": kit.weights(3)}, opset=9)
    g = kit.graph(model)
    FuseActivation()(g)
    assert g.ops() == ["Gemm"] and g.nodes[0].attrs["activation"] == {"op": "Clip", "min": -1.0, "max": 0.5}
    kit.same_outputs(model, g)


def test_does_not_fuse_when_the_layer_output_is_shared(kit):
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Add", ["h", "r"], ["y"]),
    ]
    model = kit.model(nodes, [1, 4], inits={"w": kit.weights(4, 4)})
    g = kit.graph(model)
    assert not FuseActivation()(g).modified
    assert g.count("Relu") == 1
    kit.same_outputs(model, g)


def test_second_activation_is_not_fused(kit):
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Tanh", ["r"], ["y"]),
    ]
    model = kit.model(nodes, [1, 4], inits={"w": kit.weights(4, 4)})
    g = kit.graph(model)
    FuseActivation()(g)
    assert g.ops() == ["Gemm", "Tanh"]
    kit.same_outputs(model, g)
