import numpy as np
from onnx import helper

from hwflow.passes import MatMulAddToGemm


def test_matmul_plus_bias_becomes_gemm(kit):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["b", "h"], ["y"])]
    model = kit.model(nodes, [1, 6], inits={"w": kit.weights(6, 4), "b": kit.weights(1, 4)})
    g = kit.graph(model)
    assert MatMulAddToGemm()(g).modified
    assert g.ops() == ["Gemm"] and len(g.nodes[0].inputs) == 3
    assert g.shape(g.nodes[0].inputs[2]) == (4,)
    kit.same_outputs(model, g)


def test_lone_matmul_becomes_gemm_and_activation_add_stays(kit):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "x2"], ["y"]),
        helper.make_node("Relu", ["x"], ["x2"]),
    ]
    nodes = [nodes[2], nodes[0], nodes[1]]
    model = kit.model(nodes, [1, 4], inits={"w": kit.weights(4, 4)})
    g = kit.graph(model)
    assert MatMulAddToGemm()(g).modified
    assert g.ops() == ["Relu", "Gemm", "Add"]
    kit.same_outputs(model, g)


def test_batched_matmul_is_left_alone(kit):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = kit.model(nodes, [1, 2, 3], inits={"w": kit.weights(3, 5)})
    g = kit.graph(model)
    assert not MatMulAddToGemm()(g).modified
    kit.same_outputs(model, g)
    assert np.all(g.const("w") == g.const("w"))
