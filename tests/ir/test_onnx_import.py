"""ONNX import: static shapes, normalisation, opset handling and every error path."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.errors import ModelError, UnsupportedOpError
from hwflow.ir import SUPPORTED_OPS, from_onnx, load_model, to_onnx
from hwflow.ref.float import run_float

rng = np.random.default_rng(1)


def _model(nodes, inputs, inits=(), opset=13, outputs=("y",)):
    g = helper.make_graph(
        nodes,
        "m",
        inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def _x(*dims):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))


def test_symbolic_batch_becomes_one_and_shapes_are_static():
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["y"]),
    ]
    g = from_onnx(_model(nodes, [_x("N", 3, 7, 7)], {"w": w}))
    assert g.shape("x") == (1, 3, 7, 7)
    assert g.shape("c") == (1, 4, 4, 4)
    assert g.shape("y") == (1, 4)
    assert g.meta["opset"] == 13


def test_constant_nodes_become_initializers_and_clip_inputs_attributes():
    nodes = [
        helper.make_node("Constant", [], ["lo"], value=helper.make_tensor("v", TensorProto.FLOAT, [], [-0.5])),
        helper.make_node("Constant", [], ["hi"], value_float=0.25),
        helper.make_node("Clip", ["x", "lo", "hi"], ["y"]),
    ]
    g = from_onnx(_model(nodes, [_x(1, 5)]))
    assert g.ops() == ["Clip"]
    clip = g.nodes[0]
    assert clip.inputs == ["x"] and clip.attrs == {"min": -0.5, "max": 0.25}


def test_old_opset_is_upgraded_with_the_version_converter():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Softmax", ["r"], ["y"])]
    g = from_onnx(_model(nodes, [_x(1, 4)], opset=7))
    assert g.meta["opset"] == 9
    assert g.ops() == ["Relu", "Softmax"] and g.nodes[1].attrs["host"] is True


def test_sum_becomes_adds():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sum", ["x", "a", "x"], ["y"])]
    g = from_onnx(_model(nodes, [_x(1, 4)]))
    assert g.ops() == ["Relu", "Add", "Add"]
    x = rng.standard_normal((1, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(g, x), 2 * x + np.maximum(x, 0), rtol=1e-6)


def test_unsupported_op_names_node_op_and_the_supported_list():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("LRN", ["a"], ["y"], size=3, name="norm1")]
    with pytest.raises(UnsupportedOpError, match=r"node 'norm1' uses op LRN, which hwflow does not support; supported: Conv, Gemm") as e:
        from_onnx(_model(nodes, [_x(1, 4, 2, 2)]))
    assert all(op in str(e.value) for op in SUPPORTED_OPS)


def test_foreign_domain_is_unsupported():
    nodes = [helper.make_node("Scaler", ["x"], ["y"], domain="ai.onnx.ml", name="sc")]
    with pytest.raises(UnsupportedOpError, match=r"node 'sc' uses op ai.onnx.ml.Scaler"):
        from_onnx(_model(nodes, [_x(1, 4)]))


def test_softmax_in_the_middle_is_unsupported():
    nodes = [helper.make_node("Softmax", ["x"], ["s"], name="sm"), helper.make_node("Relu", ["s"], ["y"])]
    with pytest.raises(UnsupportedOpError, match=r"node 'sm' \(Softmax\) feeds other layers"):
        from_onnx(_model(nodes, [_x(1, 4)]))


def test_two_activations_multiplied_are_unsupported():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Mul", ["x", "a"], ["y"], name="gate")]
    with pytest.raises(UnsupportedOpError, match=r"node 'gate' \(Mul\) combines two computed tensors"):
        from_onnx(_model(nodes, [_x(1, 4)]))


def test_add_of_two_activations_is_a_residual():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Add", ["x", "a"], ["y"])]
    assert from_onnx(_model(nodes, [_x(1, 4)])).ops() == ["Relu", "Add"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_initializer(bad):
    w = np.ones((4, 2), np.float32)
    w[1, 1] = bad
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    with pytest.raises(ModelError, match=r"initializer 'w' contains (NaN|Inf)"):
        from_onnx(_model(nodes, [_x(1, 4)], {"w": w}))


def test_nan_in_a_constant_node():
    nodes = [
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [float("nan")])),
        helper.make_node("Mul", ["x", "k"], ["y"]),
    ]
    with pytest.raises(ModelError, match=r"Constant 'k' contains NaN"):
        from_onnx(_model(nodes, [_x(1, 4)]))


def test_dynamic_non_batch_dim():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ModelError, match=r"graph input 'x' has dynamic dimension 'H' at axis 2; hwflow needs static shapes"):
        from_onnx(_model(nodes, [_x("N", 3, "H", 8)]))


@pytest.mark.parametrize("dims", [(4, 3), (12,)])
def test_input_without_a_batch_of_one(dims):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ModelError, match=r"graph input 'x' has shape .*; hwflow needs a batch axis of 1"):
        from_onnx(_model(nodes, [_x(*dims)]))


def test_several_graph_inputs():
    nodes = [helper.make_node("Add", ["x", "z"], ["y"])]
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])
    with pytest.raises(ModelError, match=r"the model has 2 graph inputs \['x', 'z'\]; hwflow needs exactly one"):
        from_onnx(_model(nodes, [_x(1, 4), z]))


def test_initializers_listed_as_inputs_do_not_count():
    w = np.ones((4, 2), np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    winfo = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 2])
    g = from_onnx(_model(nodes, [_x(1, 4), winfo], {"w": w}))
    assert g.inputs == ["x"]


def test_opset_too_new():
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    with pytest.raises(ModelError, match=r"opset 23 is newer than hwflow supports \(21\)"):
        from_onnx(_model(nodes, [_x(1, 4)], opset=23))


def test_load_model_names_the_file(tmp_path):
    missing = tmp_path / "nope.onnx"
    with pytest.raises(ModelError, match=r"cannot read model file '.*nope.onnx'"):
        load_model(missing)
    with pytest.raises(ModelError, match=r"is a directory"):
        load_model(tmp_path)
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(ModelError, match=r"notes.onnx"):
        load_model(text)
    good = _model([helper.make_node("Relu", ["x"], ["y"])], [_x(1, 4)])
    (tmp_path / "ok.onnx").write_bytes(good.SerializeToString())
    g = load_model(tmp_path / "ok.onnx")
    assert g.name == "ok" and g.ops() == ["Relu"]


def test_truncated_file(tmp_path):
    w = rng.standard_normal((64, 32)).astype(np.float32)
    raw = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 64)], {"w": w}).SerializeToString()
    for cut in (len(raw) // 3, len(raw) - 7):
        p = tmp_path / f"cut{cut}.onnx"
        p.write_bytes(raw[:cut])
        with pytest.raises(ModelError, match=rf"cut{cut}.onnx"):
            load_model(p)


def test_external_data(tmp_path):
    w = rng.standard_normal((64, 8)).astype(np.float32)
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_x(1, 64)], {"w": w})
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, path, save_as_external_data=True, location="ext.data", size_threshold=0)
    np.testing.assert_array_equal(load_model(path).const("w"), w)
    (tmp_path / "ext.data").unlink()
    with pytest.raises(ModelError, match=r"'.*ext.onnx': cannot read its external weight data"):
        load_model(path)


@pytest.mark.parametrize("opset", [9, 11, 13, 17, 21])
def test_every_supported_opset(opset):
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["y"]),
    ]
    g = from_onnx(_model(nodes, [_x("batch", 3, 4, 4)], {"w": w}, opset=opset))
    assert g.meta["opset"] == opset and g.shape("y") == (1, 32)


def test_errors_from_the_graph_name_the_file(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_x(1, 4)], opset=23)
    (tmp_path / "new.onnx").write_bytes(m.SerializeToString())
    with pytest.raises(ModelError, match=r"^new.onnx: opset 23"):
        load_model(tmp_path / "new.onnx")


def test_export_round_trip_matches_onnxruntime():
    import onnxruntime as ort

    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c"], ["r"], min=0.0, max=6.0),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Softmax", ["p"], ["y"], axis=1),
    ]
    model = _model(nodes, [_x(1, 3, 5, 5)], {"w": w}, opset=10)
    g = from_onnx(model)
    exported = to_onnx(g)
    onnx.checker.check_model(exported)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = run(model)
    np.testing.assert_allclose(run(exported), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_float(g, x), want, rtol=1e-5, atol=1e-6)


def test_export_spells_opset_9_attributes_as_opset_17():
    import onnxruntime as ort

    c = 3
    inits = {"s": np.ones(c, np.float32) * 2, "b": np.zeros(c, np.float32), "m": np.ones(c, np.float32),
             "v": np.ones(c, np.float32)}  # fmt: skip
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("Dropout", ["n"], ["d"], ratio=0.3),
        helper.make_node("Clip", ["d"], ["k"], min=0.0, max=1.5),
        helper.make_node("Squeeze", ["k"], ["y"], axes=[0]),
    ]
    model = _model(nodes, [_x(1, c, 2, 2)], inits, opset=9)
    g = from_onnx(model, strict=False)  # Squeeze of an activation is float-reference only
    exported = to_onnx(g)
    x = rng.standard_normal((1, c, 2, 2)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(run(exported), run(model), rtol=1e-6)
    np.testing.assert_allclose(run_float(g, x), run(model), rtol=1e-5, atol=1e-6)


def test_data_movement_after_a_host_op_joins_the_tail():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("ArgMax", ["r"], ["a"], axis=1, keepdims=1),
        helper.make_node("Squeeze", ["a"], ["y"], axes=[1]),
    ]
    g = from_onnx(_model(nodes, [_x(1, 4)], opset=11))
    assert [n.attrs.get("host", False) for n in g.nodes] == [False, True, True]
