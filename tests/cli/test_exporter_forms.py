"""What exporters write, built small with onnx.helper: tf2onnx's NHWC input (a Transpose,
or a Reshape when C = 1), its 'same' stride-2 padding as asymmetric pads or a standalone
Pad, its Transpose back to NHWC before Flatten, initializers listed as graph inputs; and
the bad inputs each refused with one line (issue 12). The real exporters' files are in
tests/fixtures/digits (test_digits_hwflow.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.api import load
from hwflow.cli import main


def _w(rng, name, *shape, s=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * s).astype(np.float32), name)


def _save(path: Path, nodes, inits, in_shape, outs, *, inits_as_inputs: bool = False) -> Path:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)]
    if inits_as_inputs:  # as Brevitas (and old exporters) write them: IR >= 4 allows it
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    g = helper.make_graph(nodes, path.stem, inputs,
                          [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o, shape in outs.items()], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return path


def tf2onnx_like(path: Path, c: int = 3, pad_node: bool = False, inits_as_inputs: bool = False) -> Path:
    """NHWC 8x8xC input; Transpose to NCHW (Reshape when C = 1); Conv 3x3 'same' stride 2
    (pads (0,0,1,1), or a Pad node before it); Relu; Transpose to NHWC; Reshape (Flatten);
    MatMul + Add (Dense)."""
    rng = np.random.default_rng(c + 10 * pad_node)
    inits = [_w(rng, "w1", 4, c, 3, 3), _w(rng, "b1", 4, s=0.1), _w(rng, "wf", 64, 5), _w(rng, "bf", 5, s=0.1),
             numpy_helper.from_array(np.array([1, -1], np.int64), "flat")]
    if c == 1:
        inits.append(numpy_helper.from_array(np.array([1, 1, 8, 8], np.int64), "nchw"))
        nodes = [helper.make_node("Reshape", ["x", "nchw"], ["t"])]
    else:
        nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])]
    if pad_node:
        inits.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads"))
        nodes += [helper.make_node("Pad", ["t", "pads"], ["tp"]),
                  helper.make_node("Conv", ["tp", "w1", "b1"], ["c"], strides=[2, 2])]
    else:
        nodes.append(helper.make_node("Conv", ["t", "w1", "b1"], ["c"], strides=[2, 2], pads=[0, 0, 1, 1]))
    nodes += [helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("Transpose", ["r"], ["rt"], perm=[0, 2, 3, 1]),
              helper.make_node("Reshape", ["rt", "flat"], ["f"]),
              helper.make_node("MatMul", ["f", "wf"], ["m"]),
              helper.make_node("Add", ["m", "bf"], ["y"])]
    return _save(path, nodes, inits, [1, 8, 8, c], {"y": [1, 5]}, inits_as_inputs=inits_as_inputs)


def _simulate(capsys, build: Path, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["simulate", str(build), "--simulator", "amaranth", "--json", *extra])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.sim
@pytest.mark.parametrize("form", ["transpose", "reshape_c1", "pad_node", "inits_as_inputs"])
def test_tf2onnx_forms_compile_and_take_nhwc_data(form, tmp_path, capsys):
    c = 1 if form == "reshape_c1" else 3
    model = tf2onnx_like(tmp_path / f"{form}.onnx", c=c, pad_node=form == "pad_node",
                         inits_as_inputs=form == "inits_as_inputs")
    x = np.random.default_rng(1).uniform(0, 1, (24, 8, 8, c)).astype(np.float32)  # NHWC, the user's layout
    np.savez(tmp_path / "x.npz", x=x)
    np.save(tmp_path / "x.npy", x[:3])
    out = tmp_path / "build"
    assert main(["compile", str(model), "--target", "generic", "-o", str(out), "--calib", str(tmp_path / "x.npz"),
                 "--vectors", "2"]) == 0
    b = load(out)
    ops = [l.op for l in b.qgraph().layers]
    assert ops[0] == "conv" and "transpose" not in ops and "pad" not in ops
    assert b.inputs().shape[1:] == (8, 8, c)  # stored vectors in NHWC too
    # simulate --inputs takes NHWC floats unchanged
    rc, res = _simulate(capsys, out, "--inputs", str(tmp_path / "x.npy"))
    assert (rc, res["passed"], res["mismatches"], res["vectors"]) == (0, True, 0, 3), res
    # Build.predict takes NHWC and agrees with the float model in onnxruntime
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    got = b.predict(x, dequantize=True)
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9
    assert np.abs(got - want).max() < 0.1 * np.abs(want).max()


def test_a_transpose_between_layers_is_refused_naming_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = _save(tmp_path / "midt.onnx", [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 1, 3, 2], name="swap_hw"),
        helper.make_node("Conv", ["t", "w2"], ["y"])], [_w(rng, "w1", 4, 2, 3, 3), _w(rng, "w2", 3, 4, 3, 3)],
        [1, 2, 6, 8], {"y": [1, 3, 4, 6]})
    assert main(["compile", str(model), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'swap_hw' (Transpose)" in err and "export the model without it" in err


def test_outputs_from_two_tensors_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = _save(tmp_path / "two.onnx", [
        helper.make_node("Gemm", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2"], ["y"])], [_w(rng, "w1", 6, 5), _w(rng, "w2", 5, 3)], [1, 6], {"h": [1, 5], "y": [1, 3]})
    assert main(["eval", str(model), "--data", str(_data(tmp_path, (8, 6)))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "['h', 'y']" in err and "one tensor" in err


def _data(tmp_path: Path, shape) -> Path:
    path = tmp_path / "d.npy"
    np.save(path, np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32))
    return path


def test_a_qonnx_quantizer_hwflow_cannot_meet_is_refused_naming_it(tmp_path, capsys):
    src = Path(__file__).resolve().parents[1] / "fixtures" / "digits" / "brevitas_mlp_w4a4.onnx"
    m = onnx.load(src)
    q = [n for n in m.graph.node if n.op_type == "Quant"][3]
    for a in q.attribute:
        if a.name == "rounding_mode":
            a.s = b"CEIL"
    onnx.save(m, tmp_path / "ceil.onnx")
    assert main(["compile", str(tmp_path / "ceil.onnx"), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and repr(q.name) in err and "CEIL" in err


@pytest.mark.sim
def test_a_batchnorm_exported_as_mul_add_after_an_activation_compiles(tmp_path, capsys):
    """A pre-activation BatchNorm written as Mul and Add of per-channel constants (as the ONNX
    zoo's caffe2 DenseNet has it), which no Conv absorbs, and a ``c - x`` after a Conv: each
    becomes a depthwise 1x1 Conv, simulates exactly and agrees with onnxruntime."""
    rng = np.random.default_rng(3)
    inits = [_w(rng, "w1", 4, 2, 3, 3), _w(rng, "w2", 3, 4, 3, 3),
             numpy_helper.from_array(rng.uniform(0.5, 2.0, (1, 4, 1, 1)).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.uniform(-0.5, 0.5, (4, 1, 1)).astype(np.float32), "beta"),
             numpy_helper.from_array(np.float32(0.25), "k")]
    model = _save(tmp_path / "preact.onnx", [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Mul", ["r", "gamma"], ["m"], name="bn_mul"),
        helper.make_node("Add", ["beta", "m"], ["a"], name="bn_add"),
        helper.make_node("Relu", ["a"], ["r2"]),
        helper.make_node("Conv", ["r2", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Sub", ["k", "c2"], ["y"], name="k_minus")], inits, [1, 2, 6, 6], {"y": [1, 3, 6, 6]})
    x = rng.uniform(0, 1, (32, 2, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "build"
    assert main(["compile", str(model), "--target", "generic", "-o", str(out), "--calib", str(tmp_path / "x.npz"),
                 "--vectors", "2"]) == 0, capsys.readouterr().err
    b = load(out)
    assert [(l.op, l.groups) for l in b.qgraph().layers] == [
        ("conv", 1), ("conv", 4), ("conv", 1), ("conv", 3)]
    rc, res = _simulate(capsys, out)
    assert (rc, res["passed"], res["mismatches"]) == (0, True, 0), res
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    got = b.predict(x, dequantize=True).reshape(want.shape)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()


def test_a_1d_op_hwflow_cannot_lift_is_refused_naming_it(tmp_path, capsys):
    """A mean over the channels of a 1-D signal is no global average pool: one line, naming it."""
    rng = np.random.default_rng(0)
    model = _save(tmp_path / "mean_c.onnx", [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1]),
        helper.make_node("ReduceMean", ["c"], ["y"], axes=[1], keepdims=1, name="mean_over_c")],
        [_w(rng, "w1", 4, 2, 3)], [1, 2, 16], {"y": [1, 1, 16]})
    assert main(["compile", str(model), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'mean_over_c' (ReduceMean) reduces axes [1]" in err
    assert not (tmp_path / "b").exists()


@pytest.mark.sim
@pytest.mark.parametrize("form", ["GlobalMaxPool", "ReduceMax", "ReduceMean", "GlobalMaxPool-1d"])
def test_global_pools_as_exporters_write_them(form, tmp_path, capsys):
    """Keras' GlobalMaxPooling (GlobalMaxPool or ReduceMax), torch's AdaptiveAvgPool (ReduceMean),
    on 2-D and 1-D maps: a window over the whole map, exact in simulation, as onnxruntime computes."""
    rng = np.random.default_rng(5)
    one_d = form.endswith("-1d")
    op = form.removesuffix("-1d")
    spatial = [12] if one_d else [6, 6]
    axes = list(range(2, 2 + len(spatial)))
    pool = (helper.make_node(op, ["r"], ["p"]) if op == "GlobalMaxPool" else
            helper.make_node(op, ["r", "axes"], ["p"], keepdims=0) if op == "ReduceMax" else
            helper.make_node(op, ["r"], ["p"], axes=axes, keepdims=0))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1] * 2 * len(spatial)),
             helper.make_node("Relu", ["c"], ["r"]), pool]
    inits = [_w(rng, "w1", 4, 2, *([3] * len(spatial))), _w(rng, "wf", 4, 3),
             numpy_helper.from_array(np.array(axes, np.int64), "axes")]
    if op == "GlobalMaxPool":
        nodes.append(helper.make_node("Flatten", ["p"], ["f"]))
    nodes.append(helper.make_node("MatMul", ["f" if op == "GlobalMaxPool" else "p", "wf"], ["y"]))
    path = tmp_path / f"{form}.onnx"
    g = helper.make_graph(nodes, form, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, *spatial])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18 if op == "ReduceMax" else 13)])
    m.ir_version = 8
    onnx.save(m, path)
    x = rng.uniform(0, 1, (24, 2, *spatial)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)
    out = tmp_path / "build"
    assert main(["compile", str(path), "--target", "generic", "-o", str(out), "--calib", str(tmp_path / "x.npz"),
                 "--vectors", "2"]) == 0, capsys.readouterr().err
    rc, res = _simulate(capsys, out)
    assert (rc, res["passed"], res["mismatches"]) == (0, True, 0), res
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    got = load(out).predict(x, dequantize=True)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
