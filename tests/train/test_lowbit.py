"""Fine-tuning pot, binary and ternary weights and 1-bit (sign) activations.

Each format trains a step with gradients reaching every weight and scale; the exported
QONNX model is read back with the same integer weights in the same format (pot as pot,
binary as binary); finetune's figure equals ``hwflow eval`` and the BUILD's on the
SFC-shaped w1a1 MLP and the pot4 digits CNN; bad combinations are one line.
"""

import json

import numpy as np
import onnx
import pytest

import hwflow
from hwflow.cli import main

from hwflow.flow import load_graph
from hwflow.quant import QuantConfig
from hwflow.quant._lower import lower
from hwflow.quant.qonnx import quantize_qonnx
from hwflow.quant.quantize import quantize_plan
from hwflow.quant.wformat import WeightFormat

pytestmark = pytest.mark.tool("torch")

SFC_DATA = "digits784_tanh_mlp"  # the SFC shares the 784-input MLP's data files


@pytest.fixture
def torch():
    """torch, imported once the tool marker has checked that it is installed."""
    import torch

    return torch


def _net(model, quant: QuantConfig, calib, learn=True):
    from hwflow.train.net import QuantNet

    graph = load_graph(model)
    plan = lower(graph)
    net = QuantNet(plan, quantize_plan(plan, quant, calib, graph.meta.get("fixed_qparams")), learn=learn)
    net.start_from_codes()
    return graph, net


@pytest.mark.parametrize("fmt", [WeightFormat("pot", 3), WeightFormat("pot", 4), WeightFormat("pot", 5),
                                 WeightFormat("binary", 1), WeightFormat("ternary", 2), WeightFormat("int", 4)])
def test_torch_rounding_is_the_formats(torch, fmt):
    """The training network rounds a weight as the quantizer does, decision boundaries included."""
    rng = np.random.default_rng(0)
    top = fmt.top
    v = np.concatenate([rng.uniform(-1.6 * top, 1.6 * top, 4000), rng.uniform(-2, 2, 1000),
                        [0.0, 0.5, -0.5, 0.49, 2 ** 0.5 * 0.99, top * 2 ** 0.5 * 1.01, -top * 3]])
    v = v.astype(np.float32).astype(np.float64)  # values torch holds exactly
    from hwflow.train.net import format_round

    got = format_round(torch.tensor(v, dtype=torch.float32), fmt).double().numpy()
    assert np.array_equal(got, fmt.round(v))


@pytest.mark.parametrize("weights", ["pot", "binary", "ternary"])
def test_each_format_trains_a_step(torch, examples_dir, weights):
    """One step: every weight and every learned weight scale gets a finite, non-zero gradient,
    and after it every weight is still a value of its format."""
    calib = np.load(examples_dir / "digits_cnn_calib.npz")
    # every layer in the format (binary/ternary spare the edge layers unless named)
    quant = QuantConfig(weights=weights, layer_weights={n: weights for n in ("conv1", "conv2", "fc")})
    _, net = _net(examples_dir / "digits_cnn.onnx", quant, calib["x"])
    assert {wq.fmt.name for wq in net.wquant} == {weights}
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    x, y = torch.from_numpy(calib["x"][:64]), torch.from_numpy(calib["y"][:64])
    loss = torch.nn.functional.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    for w, wq in zip(net.weights, net.wquant):
        assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
        g = wq.scale.value.grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    opt.step()
    for i, j in net._param.items():
        w, _, wq = net.layer_params(i)
        assert wq.fmt.contains(wq.codes(w))


def test_sign_activations_train_and_stay_bipolar(torch, examples_dir):
    """w1a1 SFC: the hidden layers' outputs are ±1 (times the scale 1), and the gradient reaches
    the first layer through the three signs (straight-through where |x| <= 1)."""
    calib = np.load(examples_dir / f"{SFC_DATA}_calib.npz")
    _, net = _net(examples_dir / "digits784_sfc.onnx", QuantConfig(weights="binary", abits=1), calib["x"])
    plan = net.plan
    assert [net.qg.tensors[fl.output].bits for fl in plan.layers] == [1, 1, 1, 8]
    x, y = torch.from_numpy(calib["x"][:64]), torch.from_numpy(calib["y"][:64])
    env = {plan.input: net.act(plan.input)(x, *net.qg.tensors[plan.input].range)}
    for i, fl in enumerate(plan.layers[:-1]):
        env[fl.output] = net._layer(i, fl, [env[t] for t in fl.inputs])
        assert set(torch.unique(env[fl.output]).tolist()) <= {-1.0, 1.0}
    torch.nn.functional.cross_entropy(net(x), y).backward()
    assert net.weights[0].grad.abs().sum() > 0
    assert [wq.fmt.name for wq in net.wquant] == ["int", "binary", "binary", "int"]


@pytest.mark.parametrize("model,quant,formats", [
    ("digits_cnn", QuantConfig(weights="pot"), ["pot4", "pot4", "pot4"]),
    ("digits_cnn", QuantConfig(weights="pot", wbits=3, scheme="pow2"), ["pot3", "pot3", "pot3"]),
    ("digits_cnn", QuantConfig(weights="ternary"), ["int8", "int2", "int8"]),
    ("digits784_sfc", QuantConfig(weights="binary", abits=1), ["int8", "binary1", "binary1", "int8"]),
])
def test_export_reads_back_the_trained_weights(torch, examples_dir, tmp_path, model, quant, formats):
    """After a training step the exported model imports with exactly the trained integer
    weights: pot as pot (shift lanes, not multipliers), binary as binary, ternary as 2-bit
    integers -1/0/+1; 1-bit activations as thresholds writing -1/+1."""
    data = SFC_DATA if model == "digits784_sfc" else model
    calib = np.load(examples_dir / f"{data}_calib.npz")
    graph, net = _net(examples_dir / f"{model}.onnx", quant, calib["x"])
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(calib["x"][:64])), torch.from_numpy(calib["y"][:64]))
    loss.backward()
    opt.step()
    from hwflow.train.export import to_qonnx

    m = to_qonnx(net, graph)
    ops = [n.op_type for n in m.graph.node]
    if quant.weights == "binary":
        assert ops.count("BipolarQuant") == 2 + 3  # two binary weights, three sign outputs
        assert "Sign" not in ops
    onnx.save(m, str(tmp_path / "m.onnx"))
    qg = quantize_qonnx(load_graph(tmp_path / "m.onnx"))
    layers = [l for l in qg.layers if l.weight is not None]
    assert [f"{l.wformat}{l.wbits}" for l in layers] == formats
    for i, j in net._param.items():
        w, _, wq = net.layer_params(i)
        ql = next(l for l in layers if l.name == net.plan.layers[i].name)
        assert np.array_equal(ql.weight, wq.codes(w))  # the trained values, exactly
    if quant.abits == 1:
        assert [l.is_threshold for l in layers] == [True, True, True, False]


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _accuracy(logits, y):
    return float((np.asarray(logits).reshape(len(y), -1).argmax(1) == y).mean())


@pytest.mark.parametrize("model,opts", [("digits784_sfc", ["--weights", "binary", "--abits", "1"]),
                                        ("digits_cnn", ["--weights", "pot"])])
def test_finetune_is_eval_and_build(examples_dir, capsys, tmp_path, model, opts):
    """One epoch of w1a1 (the SFC) and of pot4 (the digits CNN): finetune's accuracy ==
    `hwflow eval OUT.onnx` == the compiled BUILD's Build.predict, and the BUILD keeps the formats."""
    data = SFC_DATA if model == "digits784_sfc" else model
    train, test = np.load(examples_dir / f"{data}_calib.npz"), np.load(examples_dir / f"{data}_test.npz")
    np.savez(tmp_path / "train.npz", x=train["x"][:192], y=train["y"][:192])
    np.savez(tmp_path / "val.npz", x=test["x"][:120], y=test["y"][:120])
    out = tmp_path / "tuned.onnx"
    rc, text, err = _run(capsys, "finetune", examples_dir / f"{model}.onnx", "--data", tmp_path / "train.npz",
                         "--val", tmp_path / "val.npz", *opts, "--epochs", "1", "--lr", "0.1", "--batch-size", "64",
                         "--json", "-o", out)
    assert rc == 0, err
    res = json.loads(text)
    assert len(res["history"]) == 2 and all(np.isfinite(h["val_loss"]) for h in res["history"])
    rc, text, err = _run(capsys, "eval", out, "--data", tmp_path / "val.npz", "--json")
    assert rc == 0, err
    assert json.loads(text)["quant_accuracy"] == res["accuracy"]
    build = hwflow.compile(out, out=tmp_path / "b", target="generic")
    val = np.load(tmp_path / "val.npz")
    assert _accuracy(build.predict(val["x"]), val["y"]) == res["accuracy"]
    wf = {l.wformat for l in build.qgraph().layers if l.weight is not None}
    assert wf == ({"int", "binary"} if model == "digits784_sfc" else {"pot"})
    assert json.loads(onnx.load(str(out)).metadata_props[0].value)["epoch"] == res["best_epoch"]


def _bad(capsys, model, out, *args):
    rc, _, err = _run(capsys, "finetune", model, "-o", out, "--epochs", "1", *args)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("hwflow: error:"), err
    assert not out.exists()
    return err


def test_bad_lowbit_input_one_line(examples_dir, capsys, tmp_path):
    out = tmp_path / "out.onnx"
    cnn, sfc = examples_dir / "digits_cnn.onnx", examples_dir / "digits784_sfc.onnx"
    cnn_data, sfc_data = examples_dir / "digits_cnn_calib.npz", examples_dir / f"{SFC_DATA}_calib.npz"
    assert "binary weights take wbits 1" in _bad(capsys, cnn, out, "--data", cnn_data, "--weights", "binary",
                                                 "--wbits", "4")
    assert "pot weights take wbits 3..5" in _bad(capsys, cnn, out, "--data", cnn_data, "--weights", "pot",
                                                 "--wbits", "6")
    assert "unknown weight format 'pot2'" in _bad(capsys, cnn, out, "--data", cnn_data, "--weights", "conv1=pot2")
    assert "need a sign" in _bad(capsys, cnn, out, "--data", cnn_data, "--abits", "1")  # Relu, no sign
    # a Sign trains only as a 1-bit activation (its table at 8 bits is no QONNX op hwflow reads)
    assert "--abits 1" in _bad(capsys, sfc, out, "--data", sfc_data, "--weights", "binary")
    assert "unknown layer name(s) 'nosuch'" in _bad(capsys, sfc, out, "--data", sfc_data, "--weights", "nosuch=binary",
                                      "--abits", "1")
