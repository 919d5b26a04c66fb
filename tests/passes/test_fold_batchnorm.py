import numpy as np
import pytest
from onnx import helper

from hwflow.passes import FoldBatchNorm


def _bn(kit, c):
    return {
        "g": kit.weights(c) + 1.5, "b": kit.weights(c), "m": kit.weights(c),
        "v": np.abs(kit.weights(c)) + 0.3,
    }  # fmt: skip


@pytest.mark.parametrize("group", [1, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_folds_into_conv(kit, group, bias):
    inits = {"w": kit.weights(8, 4 // group, 3, 3), **_bn(kit, 8)}
    ins = ["x", "w"]
    if bias:
        inits["cb"] = kit.weights(8)
        ins.append("cb")
    nodes = [
        helper.make_node("Conv", ins, ["c"], pads=[1, 1, 1, 1], group=group),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], epsilon=1e-3),
    ]
    model = kit.model(nodes, [1, 4, 6, 6], inits=inits)
    g = kit.graph(model)
    assert FoldBatchNorm()(g).modified
    assert g.ops() == ["Conv"] and len(g.nodes[0].inputs) == 3
    kit.same_outputs(model, g)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_folds_into_gemm(kit, trans_b):
    w = kit.weights(5, 3) if trans_b else kit.weights(3, 5)
    inits = {"w": w, "c": kit.weights(5), **_bn(kit, 5)}
    nodes = [
        helper.make_node("Gemm", ["x", "w", "c"], ["h"], transB=trans_b, alpha=0.7, beta=1.3),
        helper.make_node("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"]),
    ]
    model = kit.model(nodes, [1, 3], inits=inits)
    g = kit.graph(model)
    assert FoldBatchNorm()(g).modified
    assert g.ops() == ["Gemm"]
    kit.same_outputs(model, g)


def test_leaves_a_shared_conv_output_alone(kit):
    inits = {"w": kit.weights(4, 4, 1, 1), **_bn(kit, 4)}
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"]),
        helper.make_node("Add", ["c", "n"], ["y"]),
    ]
    model = kit.model(nodes, [1, 4, 3, 3], inits=inits)
    g = kit.graph(model)
    assert not FoldBatchNorm()(g).modified
    assert g.count("BatchNormalization") == 1
    kit.same_outputs(model, g)
