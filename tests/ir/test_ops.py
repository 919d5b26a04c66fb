"""The op registry: its entries agree with the QGraph and the stages, and one entry adds an op."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from hwflow.errors import UnsupportedOpError
from hwflow.ir import Node, from_onnx, shapes
from hwflow.ir.kernels import apply_activation
from hwflow.ir.ops import ACTIVATIONS, CONST_ONLY_OPS, HOST_OPS, OPS, SUPPORTED_OPS, OpDef
from hwflow.quant import LAYER_OPS
from hwflow.quant._lower import act_fn
from hwflow.ref.float import run_float


def _model(op, domain="", **attrs):
    node = helper.make_node(op, ["x"], ["y"], domain=domain, **attrs)
    g = helper.make_graph([node], "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = 8
    return m


def test_quantized_ops_lower_to_qgraph_layers():
    for op, d in OPS.items():
        assert d.quant in LAYER_OPS + ("layout", "const", None), op
        assert d.in_hardware == (d.quant in LAYER_OPS), op


def test_host_ops_run_on_the_host_only():
    assert HOST_OPS and all(OPS[op].accept == "host" for op in HOST_OPS)
    for op in HOST_OPS:
        assert OPS[op].quant is None and not OPS[op].in_hardware


def test_activations_fuse_everywhere_they_are_evaluated():
    """A fused activation is evaluated by the float kernels and the quantizer alike."""
    assert "Relu" in ACTIVATIONS and "Tanh" in ACTIVATIONS
    y = np.linspace(-3, 3, 13, dtype=np.float32)
    for op in ACTIVATIONS:
        assert OPS[op].quant == "lut" and OPS[op].per_channel, op
        node = Node("a", op, ["x"], ["y"])
        want = OPS[op].kernel(node, [y])[0]
        np.testing.assert_array_equal(apply_activation(y, {"op": op}), want)
        np.testing.assert_allclose(act_fn({"op": op})(y.astype(np.float64)), want, rtol=1e-6, atol=1e-7)


def test_lists_are_views_of_the_registry():
    assert set(SUPPORTED_OPS) | set(CONST_ONLY_OPS) | {"Sum", "ReduceMean", "ReduceMax", "GlobalMaxPool"} == set(OPS)
    assert not set(SUPPORTED_OPS) & set(CONST_ONLY_OPS)
    assert list(SUPPORTED_OPS[:2]) == ["Conv", "Gemm"]  # the order of the supported list in messages


@pytest.mark.parametrize("field, value", [("accept", "sometimes"), ("activation", "lut"), ("operands", "two")])
def test_opdef_checks_its_fields(field, value):
    with pytest.raises(ValueError, match=field):
        OpDef(shapes.same, lambda node, ins: ins, **{field: value})


def test_an_op_outside_the_registry_or_its_domain_is_refused():
    with pytest.raises(UnsupportedOpError, match="uses op Neg, which hwflow does not support"):
        from_onnx(_model("Neg"))
    with pytest.raises(UnsupportedOpError, match="uses op ai.onnx.ml.Relu"):
        from_onnx(_model("Relu", domain="ai.onnx.ml"))


def test_one_entry_adds_an_op(monkeypatch):
    """Import, shapes, the float reference and the host tail all follow a new entry."""
    monkeypatch.setitem(OPS, "Neg", OpDef(shapes.same, lambda node, ins: [np.negative(ins[0])], host_tail=True))
    g = from_onnx(_model("Neg"), strict=False)
    assert g.ops() == ["Neg"] and g.shape("y") == (1, 4)
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(run_float(g, x), -x)
