import numpy as np
import pytest
from onnx import helper

from hwflow.passes import FusePad


def _pad(kit, pads, value=0.0, mode="constant"):
    """A Pad node (opset 13: pads and value as constant inputs) and its initializers."""
    inits = {"pads": np.asarray(pads, np.int64), "v": np.float32(value)}
    return helper.make_node("Pad", ["x", "pads", "v"], ["p"], mode=mode), inits


@pytest.mark.parametrize(
    "pads, conv_attrs, want",
    [
        ([0, 0, 0, 0, 0, 0, 1, 1], {"strides": [2, 2]}, [0, 0, 1, 1]),  # TF 'same' stride 2
        ([0, 0, 1, 2, 0, 0, 3, 0], {"pads": [1, 1, 1, 1]}, [2, 3, 4, 1]),
        ([0, 0, 1, 1, 0, 0, 1, 1], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, [2, 1, 2, 2]),  # on 9x10: (1,0) + (1,1)
    ],
)
def test_fuses_into_conv(kit, pads, conv_attrs, want):
    pad, inits = _pad(kit, pads)
    nodes = [pad, helper.make_node("Conv", ["p", "w", "b"], ["y"], **conv_attrs)]
    model = kit.model(nodes, [1, 2, 7, 8], inits={**inits, "w": kit.weights(3, 2, 3, 3), "b": kit.weights(3)})
    g = kit.graph(model, fold=False)
    assert FusePad()(g).modified
    assert g.ops() == ["Conv"] and list(g.nodes[0].attrs["pads"]) == want
    kit.same_outputs(model, g)


def test_fuses_into_average_pool_counting_the_padding(kit):
    pad, inits = _pad(kit, [0, 0, 1, 0, 0, 0, 0, 1])
    nodes = [pad, helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = kit.model(nodes, [1, 2, 5, 5], inits=inits)
    g = kit.graph(model, fold=False)
    assert FusePad()(g).modified
    assert g.ops() == ["AveragePool"] and g.nodes[0].attrs["count_include_pad"] == 1
    kit.same_outputs(model, g)


@pytest.mark.parametrize(
    "pads, value, mode, consumer",
    [
        ([0, 0, 1, 1, 0, 0, 1, 1], 0.0, "constant", "MaxPool"),  # MaxPool pads with -inf
        ([0, 0, 1, 1, 0, 0, 1, 1], 1.0, "constant", "Conv"),  # not zero
        ([0, 0, 1, 1, 0, 0, 1, 1], 0.0, "reflect", "Conv"),
        ([0, 1, 0, 0, 0, 0, 0, 0], 0.0, "constant", "Conv"),  # a channel, not a window pad
        ([0, 0, -1, 0, 0, 0, 0, 0], 0.0, "constant", "Conv"),  # a crop
    ],
)
def test_leaves_other_pads(kit, pads, value, mode, consumer):
    pad, inits = _pad(kit, pads, value, mode)
    cin = 2 + pads[1] + pads[5]
    if consumer == "Conv":
        nodes = [pad, helper.make_node("Conv", ["p", "w"], ["y"])]
        inits["w"] = kit.weights(3, cin, 3, 3)
    else:
        nodes = [pad, helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2])]
    model = kit.model(nodes, [1, 2, 6, 6], inits=inits)
    g = kit.graph(model, fold=False)
    assert not FusePad()(g).modified
    assert g.count("Pad") == 1
    kit.same_outputs(model, g)


def test_unfused_pad_is_refused_by_the_quantizer_naming_it(kit, tmp_path):
    from hwflow.errors import HwflowError
    from hwflow.passes import optimize
    from hwflow.quant import quantize

    pad, inits = _pad(kit, [0, 0, 1, 1, 0, 0, 1, 1])
    nodes = [pad, helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2])]
    g = kit.graph(kit.model(nodes, [1, 2, 6, 6], inits=inits))
    with pytest.raises(HwflowError, match="Pad"):
        quantize(optimize(g))


@pytest.mark.parametrize("value, relu", [(0.0, True), (float(np.finfo(np.float32).min), False)])
def test_fuses_into_max_pool_where_the_pad_never_wins(kit, value, relu):
    """A Pad before a MaxPool is its padding (which never wins) when the Pad never wins either:
    0 after a Relu, or float32's lowest value."""
    pad, inits = _pad(kit, [0, 0, 1, 0, 0, 0, 0, 1], value)
    nodes = [pad, helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    if relu:
        nodes.insert(0, helper.make_node("Relu", ["x"], ["r"]))
        pad.input[0] = "r"
    model = kit.model(nodes, [1, 2, 5, 5], inits=inits)
    g = kit.graph(model, fold=False)
    assert FusePad()(g).modified
    assert g.ops()[-1] == "MaxPool" and g.count("Pad") == 0
    assert list(g.nodes[-1].attrs["pads"]) == [1, 0, 0, 1]
    kit.same_outputs(model, g)


def test_leaves_a_pad_before_max_pool_that_could_win(kit):
    """0 on a tensor that may be negative, or a pad as wide as the window (a window of padding only)."""
    pad, inits = _pad(kit, [0, 0, 2, 0, 0, 0, 0, 0])
    relu = helper.make_node("Relu", ["x"], ["r"])
    pad.input[0] = "r"
    nodes = [relu, pad, helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = kit.model(nodes, [1, 2, 6, 6], inits=inits)
    g = kit.graph(model, fold=False)
    assert not FusePad()(g).modified
    kit.same_outputs(model, g)
