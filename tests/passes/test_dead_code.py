from onnx import helper

from hwflow.passes import EliminateDeadCode


def test_removes_unused_nodes_and_tensors(kit):
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["y"]),
        helper.make_node("Gemm", ["x", "w2"], ["unused"]),
        helper.make_node("Relu", ["unused"], ["unused2"]),
    ]
    model = kit.model(nodes, [1, 3], inits={"w": kit.weights(3, 2), "w2": kit.weights(3, 5)})
    g = kit.graph(model, fold=False)
    assert len(g) == 3
    assert EliminateDeadCode()(g).modified
    assert g.ops() == ["Gemm"]
    assert "w2" not in g.tensors and "unused" not in g.tensors
    kit.same_outputs(model, g)
    assert not EliminateDeadCode()(g).modified
