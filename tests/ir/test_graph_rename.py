import pytest

from hwflow.ir import Graph, Node, Tensor


def test_rename_tensor_updates_producer_consumers_and_outputs():
    g = Graph("g", inputs=["x"], outputs=["b"])
    g.add_tensor(Tensor("x", (1, 2)))
    g.add_tensor(Tensor("a", (1, 2)))
    g.add_tensor(Tensor("b", (1, 2)))
    g.add_node(Node("r", "Relu", ["x"], ["a"]))
    g.add_node(Node("s", "Sigmoid", ["a"], ["b"]))
    g.rename_tensor("a", "mid")
    g.rename_tensor("b", "out")
    assert g.node("r").outputs == ["mid"] and g.node("s").inputs == ["mid"]
    assert g.producer("mid").name == "r" and [n.name for n in g.consumers("mid")] == ["s"]
    assert g.outputs == ["out"] and set(g.tensors) == {"x", "mid", "out"}
    assert g.nx.edges["r", "s"]["tensor"] == "mid"
    g.verify()
    with pytest.raises(ValueError, match="'x' already exists"):
        g.rename_tensor("mid", "x")
