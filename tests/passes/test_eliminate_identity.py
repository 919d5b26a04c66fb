from onnx import TensorProto, helper

from hwflow.passes import EliminateIdentity


def test_removes_identity_dropout_and_noop_cast(kit):
    nodes = [
        helper.make_node("Identity", ["x"], ["a"]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Dropout", ["b"], ["c"]),
        helper.make_node("Cast", ["c"], ["d"], to=TensorProto.FLOAT),
        helper.make_node("Sigmoid", ["d"], ["y"]),
    ]
    model = kit.model(nodes, [1, 6])
    g = kit.graph(model)
    res = EliminateIdentity()(g)
    assert res.modified
    assert g.ops() == ["Relu", "Sigmoid"]
    g.verify()
    kit.same_outputs(model, g)
    assert not EliminateIdentity()(g).modified


def test_keeps_a_real_cast(kit):
    nodes = [
        helper.make_node("Cast", ["x"], ["a"], to=TensorProto.INT32),
        helper.make_node("Cast", ["a"], ["y"], to=TensorProto.FLOAT),
    ]
    model = kit.model(nodes, [1, 4])
    g = kit.graph(model)
    assert not EliminateIdentity()(g).modified
    assert g.count("Cast") == 2
    kit.same_outputs(model, g)


def test_identity_feeding_the_graph_output(kit):
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["y"])]
    model = kit.model(nodes, [1, 3])
    g = kit.graph(model)
    EliminateIdentity()(g)
    assert g.ops() == ["Relu"] and g.outputs == ["y"]  # the graph output keeps its name
    assert g.nodes[0].outputs == ["y"] and "a" not in g.tensors
    kit.same_outputs(model, g)
