import numpy as np
import pytest
from onnx import helper

from hwflow.passes import FoldAffine, FoldInputAffine


@pytest.mark.parametrize("op", ["Mul", "Div", "Add", "Sub"])
def test_per_channel_constant_folds_into_preceding_conv(kit, op):
    c = (np.abs(kit.weights(1, 4, 1, 1)) + 0.5).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]), helper.make_node(op, ["h", "c"], ["y"])]
    model = kit.model(nodes, [1, 3, 5, 5], inits={"w": kit.weights(4, 3, 3, 3), "c": c})
    g = kit.graph(model)
    assert FoldAffine()(g).modified
    assert g.ops() == ["Conv"]
    kit.same_outputs(model, g)


def test_scalar_mul_folds_into_gemm(kit):
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1), helper.make_node("Mul", ["k", "h"], ["y"])]
    model = kit.model(nodes, [1, 3], inits={"w": kit.weights(2, 3), "b": kit.weights(2), "k": np.float32(-2.5)})
    g = kit.graph(model)
    assert FoldAffine()(g).modified and g.ops() == ["Gemm"]
    kit.same_outputs(model, g)


def test_spatially_varying_constant_is_not_folded(kit):
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "c"], ["y"])]
    model = kit.model(nodes, [1, 2, 4, 4], inits={"w": kit.weights(3, 2, 1, 1), "c": kit.weights(1, 3, 4, 4)})
    g = kit.graph(model)
    assert not FoldAffine()(g).modified
    kit.same_outputs(model, g)


def test_input_normalisation_folds_into_following_gemm(kit):
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["a"]),
        helper.make_node("Div", ["a", "std"], ["b"]),
        helper.make_node("Flatten", ["b"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "c"], ["y"], transB=1),
    ]
    inits = {"mean": kit.weights(1, 2, 3), "std": np.float32(0.3), "w": kit.weights(4, 6), "c": kit.weights(4)}
    model = kit.model(nodes, [1, 2, 3], inits=inits)
    g = kit.graph(model)
    p = FoldInputAffine()
    while p(g).modified:
        g.verify()
    assert g.ops() == ["Flatten", "Gemm"]
    kit.same_outputs(model, g)


def test_input_scale_folds_into_following_conv_even_with_padding(kit):
    nodes = [helper.make_node("Mul", ["x", "s"], ["a"]), helper.make_node("Conv", ["a", "w"], ["y"], pads=[1, 1, 1, 1])]
    inits = {"s": kit.weights(1, 3, 1, 1), "w": kit.weights(2, 3, 3, 3)}
    model = kit.model(nodes, [1, 3, 4, 4], inits=inits)
    g = kit.graph(model)
    assert FoldInputAffine()(g).modified and g.ops() == ["Conv"]
    kit.same_outputs(model, g)


def test_input_shift_before_a_padded_conv_stays(kit):
    nodes = [helper.make_node("Sub", ["x", "m"], ["a"]), helper.make_node("Conv", ["a", "w"], ["y"], pads=[1, 1, 1, 1])]
    model = kit.model(nodes, [1, 3, 4, 4], inits={"m": kit.weights(1, 3, 1, 1), "w": kit.weights(2, 3, 3, 3)})
    g = kit.graph(model)
    assert not FoldInputAffine()(g).modified
    kit.same_outputs(model, g)


def test_input_shift_before_an_unpadded_grouped_conv_folds(kit):
    nodes = [helper.make_node("Sub", ["x", "m"], ["a"]), helper.make_node("Conv", ["a", "w", "b"], ["y"], group=2)]
    inits = {"m": kit.weights(1, 4, 1, 1), "w": kit.weights(6, 2, 3, 3), "b": kit.weights(6)}
    model = kit.model(nodes, [1, 4, 5, 5], inits=inits)
    g = kit.graph(model)
    assert FoldInputAffine()(g).modified and g.ops() == ["Conv"]
    kit.same_outputs(model, g)
