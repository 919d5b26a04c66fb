"""Small ONNX models built in the test (no files, no network) covering every layer kind."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inits, in_shape, out_name, out_shape, name):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape[1:]])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *out_shape[1:]])],
        [numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def cnn_model(rng):
    """Conv+BN+ReLU, MaxPool, Conv+ReLU6, AveragePool, Flatten, Gemm, Softmax."""
    inits = {
        "w1": rng.normal(0, 0.5, (4, 1, 3, 3)), "b1": rng.normal(0, 0.1, 4),
        "g": rng.uniform(0.5, 2, 4), "be": rng.normal(0, 0.3, 4), "mu": rng.normal(0, 0.2, 4), "var": rng.uniform(0.5, 2, 4),
        "w2": rng.normal(0, 0.3, (6, 4, 3, 3)), "b2": rng.normal(0, 0.1, 6),
        "lo": np.array(0.0), "hi": np.array(6.0),
        "wf": rng.normal(0, 0.3, (5, 24)), "bf": rng.normal(0, 0.1, 5),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
        helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1),
    ]
    return _model(nodes, inits, (1, 1, 8, 8), "prob", (1, 5), "cnn")


def residual_model(rng):
    """Conv, residual Add + ReLU, depthwise Conv, Concat, GlobalAveragePool, Gemm."""
    inits = {
        "w1": rng.normal(0, 0.4, (4, 2, 3, 3)), "b1": rng.normal(0, 0.1, 4),
        "w2": rng.normal(0, 0.3, (4, 4, 3, 3)), "b2": rng.normal(0, 0.1, 4),
        "wd": rng.normal(0, 0.5, (4, 1, 3, 3)), "bd": rng.normal(0, 0.1, 4),
        "wf": rng.normal(0, 0.3, (3, 8)), "bf": rng.normal(0, 0.1, 3),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["a"]),
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Conv", ["ra", "wd", "bd"], ["d"], pads=[1, 1, 1, 1], group=4, strides=[2, 2]),
        helper.make_node("MaxPool", ["ra"], ["pm"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["d", "pm"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    return _model(nodes, inits, (1, 2, 6, 6), "y", (1, 3), "residual")


def mlp_act_model(rng):
    """MatMul+Add (unfused), Tanh, Sigmoid, LeakyRelu between dense layers."""
    inits = {
        "w0": rng.normal(0, 0.3, (12, 16)), "b0": rng.normal(0, 0.1, 16),
        "w1": rng.normal(0, 0.3, (16, 10)), "b1": rng.normal(0, 0.1, 10),
        "w2": rng.normal(0, 0.5, (8, 10)), "b2": rng.normal(0, 0.1, 8),
        "w3": rng.normal(0, 0.5, (4, 8)), "b3": rng.normal(0, 0.1, 4),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["m0"]),
        helper.make_node("Add", ["m0", "b0"], ["a0"]),
        helper.make_node("Tanh", ["a0"], ["t0"]),
        helper.make_node("MatMul", ["t0", "w1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Sigmoid", ["a1"], ["s1"]),
        helper.make_node("Gemm", ["s1", "w2", "b2"], ["g2"], transB=1),
        helper.make_node("LeakyRelu", ["g2"], ["l2"], alpha=0.1),
        helper.make_node("Gemm", ["l2", "w3", "b3"], ["y"], transB=1),
    ]
    return _model(nodes, inits, (1, 12), "y", (1, 4), "mlp_act")


BUILDERS = {"cnn": (cnn_model, (1, 8, 8)), "residual": (residual_model, (2, 6, 6)), "mlp_act": (mlp_act_model, (12,))}


@pytest.fixture(scope="session")
def small_models(tmp_path_factory):
    """name -> (optimized Graph, calibration x, test x, path of the .onnx)."""
    from hwflow.ir.onnx_import import load_model
    from hwflow.passes import optimize

    d = tmp_path_factory.mktemp("models")
    out = {}
    for i, (name, (build, shape)) in enumerate(BUILDERS.items()):
        rng = np.random.default_rng(100 + i)
        path = d / f"{name}.onnx"
        onnx.save(build(rng), str(path))
        calib = rng.normal(0, 1, (64, *shape)).astype(np.float32)
        test = rng.normal(0, 1, (48, *shape)).astype(np.float32)
        out[name] = (optimize(load_model(path)), calib, test, path)
    return out
