import numpy as np
from onnx import helper

from hwflow.passes import NormalizeReshape


def test_reshape_to_batch_by_features_becomes_flatten(kit):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["y"])]
    model = kit.model(nodes, [1, 2, 3, 4], inits={"s": np.array([1, -1], np.int64), "w": kit.weights(24, 5)})
    g = kit.graph(model)
    assert NormalizeReshape()(g).modified
    assert g.ops() == ["Flatten", "Gemm"] and g.nodes[0].attrs == {"axis": 1}
    kit.same_outputs(model, g)


def test_noop_reshape_and_flatten_are_dropped(kit):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Reshape", ["r", "s"], ["a"]),
        helper.make_node("Flatten", ["a"], ["b"]),
        helper.make_node("Sigmoid", ["b"], ["y"]),
    ]
    model = kit.model(nodes, [1, 6], inits={"s": np.array([1, 6], np.int64)})
    g = kit.graph(model)
    NormalizeReshape()(g)
    assert g.ops() == ["Relu", "Sigmoid"]
    kit.same_outputs(model, g)


def test_reshape_chain_collapses(kit):
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Reshape", ["a", "s2"], ["y"]),
    ]
    inits = {"s1": np.array([1, 4, 6], np.int64), "s2": np.array([1, 24], np.int64)}
    model = kit.model(nodes, [1, 2, 3, 4], inits=inits)
    g = kit.graph(model)
    NormalizeReshape()(g)
    from hwflow.passes import EliminateDeadCode

    EliminateDeadCode()(g)
    assert g.ops() == ["Flatten"] and g.nodes[0].inputs == ["x"]
    kit.same_outputs(model, g)


def test_a_real_reshape_stays(kit):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"])]
    model = kit.model(nodes, [1, 2, 6], inits={"s": np.array([1, 3, 4], np.int64)})
    g = kit.graph(model)
    assert not NormalizeReshape()(g).modified
    kit.same_outputs(model, g)


def test_chain_with_copied_dims_uses_the_static_target(kit):
    # the second Reshape's 0 copies dim 1 of the *intermediate* tensor (4), not of x (2)
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Reshape", ["a", "s2"], ["y"]),
    ]
    inits = {"s1": np.array([1, 4, 6], np.int64), "s2": np.array([0, 0, 3, 2], np.int64)}
    model = kit.model(nodes, [1, 2, 3, 4], inits=inits)
    g = kit.graph(model)
    NormalizeReshape()(g)
    assert g.shape("y") == (1, 4, 3, 2)
    kit.same_outputs(model, g)
