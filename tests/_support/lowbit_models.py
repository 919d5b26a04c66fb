"""Small binarizing networks built with onnx.helper (no files, no network) for the low-bit tests.

Both have BatchNormalization + Sign hidden activations, so ``--abits 1`` applies to
their hidden layers, and 8-bit-style first and last layers (an input of pixels, logits
out). The weights are random but fixed by the seed; the calibration data are uniform
pixels in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["sign_mlp", "sign_cnn", "sign_after_pool"]


def _save(path: Path, nodes, inits, in_shape, out_shape, rng) -> Path:
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    np.savez(path.with_name(path.stem + "_calib.npz"), x=rng.uniform(0, 1, (48, *in_shape)).astype(np.float32))
    return path


def _bn(name: str, c: int, rng) -> dict:
    return {f"{name}_g": rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c), f"{name}_b": rng.normal(0, 0.3, c),
            f"{name}_m": rng.normal(0, 0.2, c), f"{name}_v": rng.uniform(0.5, 2, c)}


def _bn_node(x: str, name: str, out: str):
    return helper.make_node("BatchNormalization", [x] + [f"{name}_{k}" for k in "gbmv"], [out], name=f"bn_{name}")


def sign_mlp(path: Path, seed: int = 0) -> Path:
    """fc0 64->32 (BN, Sign), fc1 32->24 (BN, Sign), fc2 24->10; calibration data beside it.

    One BatchNorm scale is negative: the sign flips that channel's threshold.
    """
    rng = np.random.default_rng(seed)
    inits = {"w0": rng.normal(0, 0.3, (32, 64)), "b0": rng.normal(0, 0.2, 32),
             "w1": rng.normal(0, 0.3, (24, 32)), "b1": rng.normal(0, 0.2, 24),
             "w2": rng.normal(0, 0.3, (10, 24)), "b2": rng.normal(0, 0.2, 10), **_bn("n0", 32, rng), **_bn("n1", 24, rng)}
    n = helper.make_node
    nodes = [n("Gemm", ["x", "w0", "b0"], ["g0"], name="fc0", transB=1), _bn_node("g0", "n0", "n0"),
             n("Sign", ["n0"], ["s0"], name="sign0"),
             n("Gemm", ["s0", "w1", "b1"], ["g1"], name="fc1", transB=1), _bn_node("g1", "n1", "n1"),
             n("Sign", ["n1"], ["s1"], name="sign1"),
             n("Gemm", ["s1", "w2", "b2"], ["y"], name="fc2", transB=1)]
    return _save(path, nodes, inits, (64,), (10,), rng)


def sign_cnn(path: Path, seed: int = 0) -> Path:
    """conv0 1->8 3x3 pad 1 (BN, Sign), pool0 2x2, conv1 8->8 3x3 pad 1 (BN, Sign), pool1
    2x2, Flatten, fc 32->10 on (1, 8, 8): a padded convolution of bipolar codes and a max
    over bipolar codes."""
    rng = np.random.default_rng(seed)
    inits = {"w0": rng.normal(0, 0.5, (8, 1, 3, 3)), "w1": rng.normal(0, 0.3, (8, 8, 3, 3)),
             "wf": rng.normal(0, 0.3, (10, 32)), "bf": rng.normal(0, 0.2, 10), **_bn("n0", 8, rng), **_bn("n1", 8, rng)}
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    n = helper.make_node
    nodes = [n("Conv", ["x", "w0"], ["c0"], name="conv0", **conv), _bn_node("c0", "n0", "n0"),
             n("Sign", ["n0"], ["s0"], name="sign0"), n("MaxPool", ["s0"], ["p0"], name="pool0", **pool),
             n("Conv", ["p0", "w1"], ["c1"], name="conv1", **conv), _bn_node("c1", "n1", "n1"),
             n("Sign", ["n1"], ["s1"], name="sign1"), n("MaxPool", ["s1"], ["p1"], name="pool1", **pool),
             n("Flatten", ["p1"], ["f"], name="flatten"), n("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]
    return _save(path, nodes, inits, (1, 8, 8), (10,), rng)


def sign_after_pool(path: Path, seed: int = 0) -> Path:
    """conv0 1->4 3x3 (BN), pool0 2x2, sign0 (a Sign on its own), Flatten, fc 36->10 on (1, 8, 8)."""
    rng = np.random.default_rng(seed)
    inits = {"w0": rng.normal(0, 0.5, (4, 1, 3, 3)), "wf": rng.normal(0, 0.3, (10, 36)), "bf": rng.normal(0, 0.2, 10),
             **_bn("n0", 4, rng)}
    n = helper.make_node
    nodes = [n("Conv", ["x", "w0"], ["c0"], name="conv0", kernel_shape=[3, 3]), _bn_node("c0", "n0", "n0"),
             n("MaxPool", ["n0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]),
             n("Sign", ["p0"], ["s0"], name="sign0"), n("Flatten", ["s0"], ["f"], name="flatten"),
             n("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1)]
    return _save(path, nodes, inits, (1, 8, 8), (10,), rng)
