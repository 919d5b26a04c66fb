"""``hwflow finetune``: the reported accuracy is the compiled hardware's, and the CLI's bad input.

The model is the digits CNN (8x8 inputs, small), trained on its 300 calibration samples
for a couple of epochs: fast, and enough for the epochs to differ.
"""

import json

import numpy as np
import onnx
import pytest

import hwflow
from hwflow.cli import main

pytestmark = pytest.mark.tool("torch")

QUANT = ["--wbits", "3", "--abits", "4", "--scheme", "asymmetric"]
#: warmup, distillation, the scales' own rate and part-epochs: the exactness holds with them too
TRAIN = ["--warmup", "0.2", "--distill", "0.5", "--scale-lr", "0.3", "--epoch-samples", "256"]


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture(scope="module")
def data(examples_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("finetune")
    test = np.load(examples_dir / "digits_cnn_test.npz")
    np.savez(d / "val.npz", x=test["x"][:150], y=test["y"][:150])
    return {"model": examples_dir / "digits_cnn.onnx", "train": examples_dir / "digits_cnn_calib.npz",
            "val": d / "val.npz", "dir": d}


@pytest.fixture(scope="module")
def tuned(data):
    """One CLI run (2 epochs), its --json summary and output model."""
    out = data["dir"] / "tuned.onnx"
    rc = main(["finetune", str(data["model"]), "--data", str(data["train"]), "--val", str(data["val"]),
               "--calib", str(data["train"]), *QUANT, "--epochs", "2", "--batch-size", "64",
               *TRAIN, "--json", "-o", str(out)])
    assert rc == 0
    return out


def _accuracy(logits, y):
    return float((np.asarray(logits).reshape(len(y), -1).argmax(1) == y).mean())


def test_reported_accuracy_is_eval_and_build_predict(data, tuned, capsys, tmp_path):
    """finetune's accuracy == `hwflow eval OUT.onnx` == Build.predict on the compiled BUILD, exactly."""
    summary = json.loads(onnx.load(str(tuned)).metadata_props[0].value)
    assert summary["epoch"] in (0, 1, 2)
    # the kept epoch's figure, recomputed from scratch by eval and by the compiled BUILD
    res = hwflow.finetune(data["model"], data["train"], val=data["val"], calib=data["train"],
                          quant=hwflow.QuantConfig(wbits=3, abits=4),
                          train=hwflow.TrainConfig(epochs=2, batch_size=64, warmup=0.2, distill=0.5, scale_lr=0.3,
                                                   epoch_samples=256))
    assert onnx.load(str(tuned)).SerializeToString() == res.model.SerializeToString()  # deterministic
    assert len(res.history) == 3 and res.history[res.best_epoch]["accuracy"] == res.accuracy
    assert res.accuracy == max(h["accuracy"] for h in res.history)
    rc, out, err = _run(capsys, "eval", tuned, "--data", data["val"], "--calib", data["train"], *QUANT, "--json")
    assert rc == 0, err
    assert json.loads(out)["quant_accuracy"] == res.accuracy
    build = hwflow.compile(tuned, calib=data["train"], out=tmp_path / "b", quant=hwflow.QuantConfig(wbits=3, abits=4))
    val = np.load(data["val"])
    assert _accuracy(build.predict(val["x"]), val["y"]) == res.accuracy


def test_output_is_qonnx(data, tuned):
    """Quant nodes on the input, every weight and every layer output (a MaxPool's is its input's);
    the layers keep their names."""
    from hwflow.flow import load_graph, quantize_graph
    from hwflow.quant._lower import lower

    names = [layer.name for layer in lower(load_graph(data["model"])).layers]
    qg = quantize_graph(load_graph(tuned), None, hwflow.QuantConfig()).qgraph
    assert sorted(layer.name for layer in qg.layers) == sorted(names)
    model = onnx.load(str(tuned))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Quant") == 1 + 2 * (ops.count("Conv") + ops.count("Gemm"))  # input; each weight, output
    assert all(n.domain == "qonnx.custom_op.general" for n in model.graph.node if n.op_type == "Quant")


def test_ctrl_c_keeps_best_so_far(data, tmp_path):
    out = tmp_path / "stopped.onnx"

    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt

    res = hwflow.finetune(data["model"], data["train"], val=data["val"], out=out,
                          quant=hwflow.QuantConfig(wbits=3, abits=4),
                          train=hwflow.TrainConfig(epochs=5, batch_size=64), on_epoch=stop)
    assert res.interrupted and len(res.history) == 2
    assert out.read_bytes() == res.model.SerializeToString()
    assert [p.name for p in tmp_path.iterdir()] == ["stopped.onnx"]  # no temporary left


def _bad(capsys, data, out, *args):
    rc, _, err = _run(capsys, "finetune", data["model"], "-o", out, "--epochs", "1", *args)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("hwflow: error:"), err
    assert not out.exists()
    return err


def test_bad_input_one_line(data, capsys, tmp_path):
    out = tmp_path / "out.onnx"
    x = np.load(data["train"])["x"]
    np.savez(tmp_path / "nolabels.npz", x=x)
    assert "no labels" in _bad(capsys, data, out, "--data", tmp_path / "nolabels.npz")
    np.savez(tmp_path / "range.npz", x=x, y=np.arange(len(x)) % 12)
    assert "labels span 0..11" in _bad(capsys, data, out, "--data", tmp_path / "range.npz")
    assert "--auto-bits" in _bad(capsys, data, out, "--data", data["train"], "--auto-bits", "--budget-kbit", "4")
    assert "ranges" in _bad(capsys, data, out, "--data", data["train"], "--ranges", "pact")
    assert "epochs" in _bad(capsys, data, out, "--data", data["train"], "--epochs", "0")
    assert "not supported yet" in _bad(capsys, data, out, "--data", data["train"], "--weights", "pot")
    assert "not supported yet" in _bad(capsys, data, out, "--data", data["train"], "--abits", "1")
    brevitas = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "digits" / "brevitas_cnn_w2a2.onnx"
    assert "is a QONNX model" in _bad(capsys, dict(data, model=brevitas), out, "--data", data["train"])


def test_residual_net_accuracy_is_eval_and_build_predict(capsys, tmp_path):
    """A residual Add and a LeakyRelu table (torch_resdw_fold: the QONNX importer meets both
    exactly): finetune's accuracy == `hwflow eval OUT.onnx` == Build.predict."""
    from hwflow.flow import load_graph
    from hwflow.ref.float import run_float

    model = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "torch_resdw_fold.onnx"
    x = np.random.default_rng(0).standard_normal((160, 3, 8, 8)).astype(np.float32)
    y = np.asarray(run_float(load_graph(model), x)).reshape(len(x), -1).argmax(1)  # the float model's labels
    np.savez(tmp_path / "train.npz", x=x[:112], y=y[:112])
    np.savez(tmp_path / "val.npz", x=x[112:], y=y[112:])
    out = tmp_path / "tuned.onnx"
    rc, text, err = _run(capsys, "finetune", model, "--data", tmp_path / "train.npz", "--val", tmp_path / "val.npz",
                         "--wbits", "3", "--abits", "4", "--epochs", "1", "--batch-size", "32", "--json", "-o", out)
    assert rc == 0, err
    res = json.loads(text)
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert "Add" in ops and "LeakyRelu" in ops
    rc, text, err = _run(capsys, "eval", out, "--data", tmp_path / "val.npz", "--json")
    assert rc == 0, err
    assert json.loads(text)["quant_accuracy"] == res["accuracy"]
    build = hwflow.compile(out, out=tmp_path / "b", target="generic")
    assert [l.op for l in build.qgraph().layers].count("add") == 1
    val = np.load(tmp_path / "val.npz")
    assert _accuracy(build.predict(val["x"]), val["y"]) == res["accuracy"]


def test_keras_nhwc_input_keeps_the_users_layout(capsys, tmp_path):
    """tf2onnx's Keras ResNet-8 reads NHWC through a Transpose (the plan's input layout): the
    net trains on the user's arrays, the output model takes them too, and finetune's accuracy
    == `hwflow eval OUT.onnx` == Build.predict."""
    fx = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "digits"
    test = np.load(fx / "keras_resnet8.npz")
    np.savez(tmp_path / "val.npz", x=test["x"][:60], y=test["y"][:60])
    out = tmp_path / "tuned.onnx"
    rc, text, err = _run(capsys, "finetune", fx / "keras_resnet8.onnx", "--data", fx / "keras_resnet8_calib.npz",
                         "--val", tmp_path / "val.npz", "--wbits", "4", "--abits", "4", "--epochs", "1",
                         "--epoch-samples", "32", "--json", "-o", out)
    assert rc == 0, err
    res = json.loads(text)
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [32, 32, 3]
    rc, text, err = _run(capsys, "eval", out, "--data", tmp_path / "val.npz", "--json")
    assert rc == 0, err
    assert json.loads(text)["quant_accuracy"] == res["accuracy"]
    build = hwflow.compile(out, out=tmp_path / "b", target="generic")
    assert _accuracy(build.predict(test["x"][:60]), test["y"][:60]) == res["accuracy"]


def test_sklearn_classifier_keeps_its_label_output(capsys, tmp_path):
    """skl2onnx's MLPClassifier ends in a host tail with constants of its own (the class
    labels of ArrayFeatureExtractor, a Reshape's shape): the output model keeps them and
    its int64 label output, and `hwflow eval OUT.onnx` scores it as finetune did."""
    fx = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "digits"
    out = tmp_path / "tuned.onnx"
    rc, text, err = _run(capsys, "finetune", fx / "skl_digits_mlp.onnx", "--data", fx / "skl_digits_mlp_calib.npz",
                         "--val", fx / "skl_digits_mlp.npz", "--wbits", "4", "--abits", "4", "--epochs", "1",
                         "--json", "-o", out)
    assert rc == 0, err
    model = onnx.load(str(out))
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert outputs["label"] == onnx.TensorProto.INT64
    rc, text2, err = _run(capsys, "eval", out, "--data", fx / "skl_digits_mlp.npz", "--json")
    assert rc == 0, err
    assert json.loads(text2)["quant_accuracy"] == json.loads(text)["accuracy"]


def test_unsupported_op_one_line(capsys, tmp_path):
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Sin", ["x"], ["y"], name="sin")], "sin",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    model = tmp_path / "sin.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    np.savez(tmp_path / "d.npz", x=np.zeros((8, 4), np.float32), y=np.zeros(8, np.int64))
    out = tmp_path / "out.onnx"
    rc, _, err = _run(capsys, "finetune", model, "--data", tmp_path / "d.npz", "-o", out)
    assert rc == 2 and err.count("\n") == 1 and "Sin" in err, err
    assert not out.exists()


@pytest.mark.parametrize("kw", [{"warmup": 0.6}, {"distill": 1.5}, {"scale_lr": 0.0}, {"epoch_samples": 0}])
def test_train_config_checked(kw):
    with pytest.raises(hwflow.errors.OptionError, match=next(iter(kw)).replace("_", " ")):
        hwflow.TrainConfig(**kw)


def test_lr_warmup_then_cosine():
    from hwflow.train.loop import _lr_factor

    f = [_lr_factor(k, 4, 20) for k in range(20)]
    assert f[:4] == [0.2, 0.4, 0.6, 0.8] and f[4] == 1.0
    assert all(a > b for a, b in zip(f[4:], f[5:])) and f[-1] > 0
