"""The window kernels (Conv, MaxPool, AveragePool) against onnxruntime, in 1, 2 and 3 dimensions."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.ir import from_onnx, kernels
from hwflow.ir._geometry import window
from hwflow.ref.float import run_float

rng = np.random.default_rng(7)


def _check(op, x_shape, attrs, w_shape=None, opset=19, batch=3):
    inits, ins = [], ["x"]
    if w_shape is not None:
        inits = [numpy_helper.from_array(rng.standard_normal(w_shape).astype(np.float32), "w"),
                 numpy_helper.from_array(rng.standard_normal(w_shape[0]).astype(np.float32), "b")]
        ins += ["w", "b"]
    g = helper.make_graph([helper.make_node(op, ins, ["y"], **attrs)], "m",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape[1:]])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 9
    import onnxruntime as ort

    x = rng.standard_normal((batch, *x_shape[1:])).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = run_float(from_onnx(m), x)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((1, 3, 11), (4, 3, 3), {"strides": [2], "pads": [1, 2]}),
    ((1, 4, 9, 8), (6, 2, 3, 2), {"group": 2, "dilations": [2, 1], "pads": [2, 1, 1, 0]}),
    ((1, 4, 10, 7), (8, 1, 3, 3), {"group": 4, "strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), {"pads": [1, 0, 1, 0, 1, 1], "dilations": [1, 2, 1]}),
])  # fmt: skip
def test_conv(x_shape, w_shape, attrs):
    _check("Conv", x_shape, attrs, w_shape)


@pytest.mark.parametrize("op, x_shape, attrs", [
    ("MaxPool", (1, 2, 11), {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}),
    ("MaxPool", (1, 2, 9, 8), {"kernel_shape": [3, 2], "dilations": [2, 2], "pads": [1, 0, 1, 1]}),
    ("AveragePool", (1, 2, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("AveragePool", (1, 2, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                   "count_include_pad": 1, "ceil_mode": 1}),
    ("AveragePool", (1, 3, 5, 6, 4), {"kernel_shape": [2, 3, 2], "auto_pad": "SAME_UPPER"}),
    ("GlobalAveragePool", (1, 3, 5, 6, 4), {}),
])  # fmt: skip
def test_pool(op, x_shape, attrs):
    _check(op, x_shape, attrs)


def test_conv_in_chunks_of_samples_equals_one_call(monkeypatch):
    x = rng.standard_normal((10, 4, 6, 6))
    w = rng.standard_normal((5, 4, 3, 3))
    win = window((6, 6), (3, 3), {"pads": [1, 1, 1, 1]})
    whole = kernels.conv(x, w, None, win)
    monkeypatch.setattr(kernels, "_PATCH_ELEMENTS", 4 * 36 * 9 * 3)  # three samples a chunk
    np.testing.assert_allclose(kernels.conv(x, w, None, win), whole, rtol=1e-12, atol=1e-12)
