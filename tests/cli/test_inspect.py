"""``hwflow inspect`` on the onnx package's light models, the fixtures and the examples."""

import json
from pathlib import Path

import onnx
import pytest

from hwflow.cli import main

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
ROOT = Path(__file__).resolve().parents[2]


def _inspect_json(capsys, path, *flags):
    assert main(["inspect", str(path), "--json", *flags]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)


def test_light_squeezenet_totals(capsys):
    doc = _inspect_json(capsys, LIGHT / "light_squeezenet.onnx")
    # SqueezeNet 1.1: 1,235,496 weights and biases, 349M multiply-accumulates at 224x224
    assert doc["totals"]["params"] == 1_235_496
    assert doc["totals"]["macs"] == 349_151_936
    ops = {r["op"] for r in doc["layers"]}
    assert ops == {"Conv", "MaxPool", "Concat", "GlobalAveragePool", "Softmax"}
    assert all(r.get("activation") == "Relu" for r in doc["layers"] if r["op"] == "Conv")
    assert doc["layers"][-1]["host"] is True


@pytest.mark.slow
def test_light_vgg19_totals(capsys):
    assert main(["inspect", str(LIGHT / "light_vgg19.onnx")]) == 0
    out = capsys.readouterr().out
    # VGG-19: 143,667,240 parameters, 19.6 GMACs
    assert "params: 143,667,240   MACs: 19,632,062,464" in out


def test_raw_shows_the_graph_as_imported(capsys):
    raw = _inspect_json(capsys, LIGHT / "light_squeezenet.onnx", "--raw")
    opt = _inspect_json(capsys, LIGHT / "light_squeezenet.onnx")
    assert raw["optimized"] is False and opt["optimized"] is True
    assert sum(r["op"] == "Relu" for r in raw["layers"]) == 26
    assert sum(r["op"] == "Dropout" for r in raw["layers"]) == 1
    assert len(opt["layers"]) == len(raw["layers"]) - 27
    assert raw["totals"]["params"] == opt["totals"]["params"]
    assert raw["totals"]["macs"] == opt["totals"]["macs"]


def test_table_lists_every_layer(capsys):
    assert main(["inspect", str(LIGHT / "light_squeezenet.onnx")]) == 0
    out = capsys.readouterr().out
    assert "fire9/expand3x3" in out or "Conv+Relu" in out
    assert "params: 1,235,496   MACs: 349,151,936" in out


@pytest.mark.parametrize("name, op", [("light_bvlc_alexnet", "LRN"), ("light_zfnet512", "LRN"), ("light_inception_v1", "LRN")])
def test_light_models_with_unsupported_ops_name_the_op(capsys, name, op):
    assert main(["inspect", str(LIGHT / f"{name}.onnx")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert f"uses op {op}, which hwflow does not support" in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["light_resnet50", "light_inception_v2", "light_densenet121", "light_shufflenet"])
def test_other_supported_light_models(capsys, name):
    """Their totals, and the fit check's verdict: DenseNet's BatchNorms are Mul and Add nodes
    after Concats (depthwise 1x1 Convs to hwflow); ShuffleNet's channel shuffle and Inception's
    AveragePools that leave out their padding are refused naming the node."""
    doc = _inspect_json(capsys, LIGHT / f"{name}.onnx")
    assert doc["totals"]["params"] > 1_000_000 and doc["totals"]["macs"] > 100_000_000
    refused = {"light_shufflenet": "reorders activations between layers", "light_inception_v2": "count_include_pad=0"}
    if name in refused:
        assert main(["inspect", str(LIGHT / f"{name}.onnx"), "--target", "fpga-medium"]) == 2
        assert refused[name] in capsys.readouterr().err
    else:
        assert _inspect_json(capsys, LIGHT / f"{name}.onnx", "--target", "fpga-medium")["fit"]["verdict"] == "too big"


FIXTURES = ROOT / "tests" / "fixtures"
# every fixture (the digits ones as their exporters wrote them) and example, but the ZipMap
# classifier, which inspect refuses with the fix (test_zipmap_is_refused_with_the_fix)
MODELS = (sorted(FIXTURES.glob("*.onnx")) + sorted(p for p in (FIXTURES / "digits").glob("*.onnx") if "zipmap" not in p.name)
          + sorted((FIXTURES / "conv1d").glob("*.onnx"))
          + sorted((ROOT / "examples" / "models").glob("*.onnx")))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_fixtures_and_examples(capsys, path):
    doc = _inspect_json(capsys, path)
    assert doc["totals"]["params"] > 0 and doc["totals"]["macs"] > 0
    layers = [r for r in doc["layers"] if r["op"] in ("Conv", "Gemm")]
    assert layers and all(r["params"] > 0 for r in layers)
    assert main(["inspect", str(path)]) == 0
    assert "params:" in capsys.readouterr().out


def test_zipmap_is_refused_with_the_fix(capsys):
    assert main(["inspect", str(FIXTURES / "digits" / "skl_digits_mlp_zipmap.onnx")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "options={'zipmap': False}" in err


@pytest.mark.parametrize("raw", [False, True])
def test_weight_only_dequantize_model(capsys, tmp_path, raw):
    """TFLite's "float" models keep some weights int8 behind a DequantizeLinear (tf2onnx
    writes it so): inspect reads them as compile does, with the weights counted."""
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    w = numpy_helper.from_array(np.arange(-6, 6, dtype=np.int8).reshape(3, 4), "wq")
    s, z = numpy_helper.from_array(np.float32(0.5), "s"), numpy_helper.from_array(np.int8(0), "z")
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]),
             helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "dq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w, s, z])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "dq.onnx")
    assert main(["inspect", str(tmp_path / "dq.onnx"), "--json", *(["--raw"] if raw else [])]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["op"] for r in doc["layers"]] == ["Gemm"] and doc["totals"]["params"] == 12
