import numpy as np
from onnx import TensorProto, helper

from hwflow.passes import FoldConstants


def test_folds_constant_subgraphs_with_the_reference_kernels(kit):
    w = kit.weights(4, 6)
    nodes = [
        # weights built at run time, as ConstantOfShape/Transpose exporters do
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [2], [6, 4])),
        helper.make_node("ConstantOfShape", ["shape"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Transpose", ["w"], ["wt"]),
        helper.make_node("Mul", ["wt", "ones"], ["w2"]),
        # and the flatten shape from Shape/Gather/Unsqueeze/Concat of the activation
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w2"], ["y"]),
    ]
    inits = {"w": w, "zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    model = kit.model(nodes, [1, 2, 3], inits=inits)
    g = kit.graph(model, fold=False)
    assert g.count("ConstantOfShape") == 1 and g.count("Shape") == 1
    res = FoldConstants()(g)
    assert res.modified
    assert g.ops() == ["Reshape", "MatMul"]
    np.testing.assert_array_equal(g.const(g.nodes[0].inputs[1]), [1, -1])
    np.testing.assert_allclose(g.const(g.nodes[1].inputs[1]), w.T * 0.5)
    g.verify()
    kit.same_outputs(model, g)
    assert not FoldConstants()(g).modified


def test_importer_folds_by_default(kit):
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["b"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [2.0])),
        helper.make_node("Add", ["x", "b"], ["y"]),
    ]
    model = kit.model(nodes, [1, 3], inits={"shape": np.array([1, 3], np.int64)})
    g = kit.graph(model)
    assert g.ops() == ["Add"]
    kit.same_outputs(model, g)
