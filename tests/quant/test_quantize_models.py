"""quantize() on small models covering every layer kind, in every scheme."""

import numpy as np
import pytest

from hwflow.errors import OptionError, UnsupportedOpError
from hwflow.quant import QuantConfig, quantize
from hwflow.quant.evaluate import evaluate
from hwflow.quant.reference import acc_bounds, run_int, run_int_batch

SCHEMES = ["pow2", "symmetric", "asymmetric"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ["cnn", "residual", "mlp_act"])
def test_quantized_close_to_float(small_models, name, scheme):
    graph, calib, test, _ = small_models[name]
    qg = quantize(graph, QuantConfig(scheme=scheme, calibration="minmax"), calib)
    res = evaluate(graph, qg, test)
    assert res["sqnr_db"] > 24, res
    assert res["agreement"] >= 0.9, res
    ops = {l.op for l in qg.layers}
    want = {"cnn": {"conv", "maxpool", "avgpool", "gemm"}, "residual": {"conv", "add", "maxpool", "concat", "avgpool", "gemm"},
            "mlp_act": {"gemm"}}[name]
    assert ops == want
    if name == "mlp_act":  # Tanh, Sigmoid, LeakyRelu became LUTs on their Gemms
        assert [l.attrs.get("activation") for l in qg.layers] == ["Tanh", "Sigmoid", "LeakyRelu", None]
        assert all(l.lut.size == l.hi - l.lo + 1 for l in qg.layers[:3])
    for layer in qg.layers:
        lo, hi = acc_bounds(layer, [qg.tensors[t] for t in layer.inputs])
        assert max(abs(lo), abs(hi)) * int(layer.m.max()) < 2 ** 63
        if layer.bias is not None:
            assert np.abs(layer.bias).max() < 2 ** 31


@pytest.mark.parametrize("name", ["cnn", "residual", "mlp_act"])
def test_batched_reference_equals_per_sample(small_models, name):
    graph, calib, test, _ = small_models[name]
    qg = quantize(graph, QuantConfig(scheme="asymmetric", per_channel=False, wbits=5, abits=7), calib)
    tin = qg.tensors[qg.input]
    codes = tin.quantize(test[:16])
    batched = run_int_batch(qg, codes)
    single = np.stack([run_int(qg, c[None]) [0] for c in codes])
    assert batched.shape == single.shape
    assert np.array_equal(batched, single)


def test_pow2_is_shift_only(small_models):
    graph, calib, _, _ = small_models["cnn"]
    qg = quantize(graph, QuantConfig(scheme="pow2"), calib)
    for t in qg.tensors.values():
        assert np.log2(t.scale) == np.round(np.log2(t.scale)) and t.zero_point == 0
    for layer in qg.layers:
        if layer.op in ("conv", "gemm", "avgpool"):  # the 2x2 average is a pure shift too
            assert (layer.m == 1).all() and layer.mbits == 1
            assert all(np.log2(s) == np.round(np.log2(s)) for s in layer.attrs.get("w_scale", [1.0]))


def test_symmetric_multiplier_uses_mbits(small_models):
    graph, calib, _, _ = small_models["cnn"]
    qg = quantize(graph, QuantConfig(scheme="symmetric", mbits=12), calib)
    for layer in qg.layers:
        if layer.op in ("conv", "gemm"):
            assert layer.mbits == 12
            assert (layer.m < 2 ** 12).all() and (layer.m >= 2 ** 11).all()
    assert all(t.zero_point == 0 for t in qg.tensors.values())


def test_asymmetric_relu_uses_every_code(small_models):
    graph, calib, _, _ = small_models["cnn"]
    qg = quantize(graph, QuantConfig(scheme="asymmetric"), calib)
    conv = qg.layers[0]
    t = qg.tensors[conv.output]
    assert t.zero_point == -128 and conv.lo == t.zero_point  # Relu: lo = z_out
    relu6 = qg.layers[2]
    t6 = qg.tensors[relu6.output]
    assert relu6.hi <= t6.zero_point + round(6.0 / t6.scale)


def test_per_layer_bits_and_unknown_layer(small_models):
    graph, calib, _, _ = small_models["mlp_act"]
    names = [l.name for l in quantize(graph, QuantConfig(), calib).layers]
    qg = quantize(graph, QuantConfig(layer_bits={names[1]: (3, 6)}), calib)
    assert qg.layers[1].wbits == 3 and qg.tensors[qg.layers[1].output].bits == 6
    assert qg.layers[0].wbits == 8
    assert np.abs(qg.layers[1].weight).max() <= 4
    with pytest.raises(OptionError, match=r"unknown layer name\(s\) 'nope'.*layers are: " + names[0]):
        quantize(graph, QuantConfig(layer_bits={"nope": (4, 8)}), calib)


@pytest.mark.parametrize("bits", [2, 3, 4, 12, 16])
def test_bit_widths_respected(small_models, bits):
    graph, calib, test, _ = small_models["cnn"]
    qg = quantize(graph, QuantConfig(wbits=bits, abits=bits, scheme="symmetric"), calib)
    for layer in qg.layers:
        if layer.weight is not None:
            assert -(2 ** (bits - 1)) <= layer.weight.min() and layer.weight.max() < 2 ** (bits - 1)
    assert all(t.bits == bits for t in qg.tensors.values())
    if bits >= 12:  # on the calibration data itself (no range surprises): nearly lossless
        assert evaluate(graph, qg, calib)["sqnr_db"] > 60
        qa = quantize(graph, QuantConfig(wbits=bits, abits=bits, scheme="asymmetric"), calib)
        assert evaluate(graph, qa, calib)["sqnr_db"] > 60


def test_avgpool_count_include_pad_zero_rejected(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from hwflow.ir.onnx_import import load_model

    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "a.onnx"))
    with pytest.raises(UnsupportedOpError, match="count_include_pad=0"):
        quantize(load_model(tmp_path / "a.onnx"), QuantConfig(), None)


def test_none_calibration_uses_bn_statistics(small_models):
    graph, calib, test, _ = small_models["cnn"]
    conv = [n for n in graph.nodes if n.op == "Conv"][0]
    assert "bn_stats" in conv.attrs
    qg = quantize(graph, QuantConfig(calibration="none", input_range=(-3.0, 3.0)), None)
    assert qg.attrs["calibration"] == "none"
    assert evaluate(graph, qg, test)["sqnr_db"] > 25
