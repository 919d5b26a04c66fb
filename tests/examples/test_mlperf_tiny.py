"""The shipped MLPerf Tiny examples: structure, data, and the figures examples/mlperf_tiny.py recorded.

No torch needed: the models run in onnxruntime, and hwflow reads them.
"""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from hwflow.cli import main

_CBR = ["Conv", "BatchNormalization", "Relu"]
_HEAD = ["AveragePool", "Flatten", "Gemm", "Softmax"]
_RESNET_STACK = _CBR + ["Conv", "BatchNormalization"]  # then the shortcut (a 1x1 Conv after stride 2), Add, Relu
MODELS = {
    # name: (input shape without batch, output shape without batch, ONNX ops in graph order,
    #        calib/test sample counts, whether the data has labels)
    "ic_resnet8": (
        (3, 32, 32), (10,),
        _CBR + _RESNET_STACK + ["Add", "Relu"] + 2 * (_RESNET_STACK + ["Conv", "Add", "Relu"]) + _HEAD,
        (300, 360), True,
    ),
    "kws_dscnn": ((1, 49, 10), (12,), _CBR + 8 * _CBR + _HEAD, (300, 360), True),
    "ad_autoencoder": ((640,), (640,), 9 * ["Gemm", "BatchNormalization", "Relu"] + ["Gemm"], (300, 360), False),
    "vww_mobilenetv1": ((3, 96, 96), (2,), _CBR + 26 * _CBR + _HEAD, (64, 64), True),
}  # fmt: skip


@pytest.fixture(scope="module")
def mlperf(root):
    """examples/mlperf_tiny.py as a module (torch is imported only by the functions that build models)."""
    spec = importlib.util.spec_from_file_location("hwflow_example_mlperf_tiny", root / "examples" / "mlperf_tiny.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def metrics(examples_dir):
    return json.loads((examples_dir / "mlperf_tiny.json").read_text())


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize("name", MODELS)
def test_model_structure(examples_dir, name):
    model = onnx.load(examples_dir / f"{name}.onnx")
    onnx.checker.check_model(model, full_check=True)
    in_shape, out_shape, ops, _, _ = MODELS[name]
    assert [n.op_type for n in model.graph.node] == ops
    assert model.opset_import[0].version == 13
    for value, shape in ((model.graph.input[0], in_shape), (model.graph.output[0], out_shape)):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "N"
        assert tuple(d.dim_value for d in dims[1:]) == shape


def test_keras_same_padding(examples_dir):
    """Stride-2 'same' convolutions pad the odd pixel at the end, as Keras does."""
    pads = {}
    for name in ("ic_resnet8", "kws_dscnn", "vww_mobilenetv1"):
        for n in onnx.load(examples_dir / f"{name}.onnx").graph.node:
            if n.op_type == "Conv":
                a = _attrs(n)
                geometry = (tuple(a["kernel_shape"]), tuple(a["strides"]), tuple(a["pads"]), a["group"])
                pads.setdefault(name, []).append(geometry)
    assert pads["kws_dscnn"][0] == ((10, 4), (2, 2), (4, 1, 5, 1), 1)  # 49x10 -> 25x5
    assert [p[2] for p in pads["ic_resnet8"] if p[0] == (3, 3) and p[1] == (2, 2)] == [(0, 0, 1, 1)] * 2
    strided = [p for p in pads["vww_mobilenetv1"] if p[1] == (2, 2)]
    assert [(p[2], p[3] > 1) for p in strided] == [((0, 0, 1, 1), False)] + [((0, 0, 1, 1), True)] * 4
    depthwise = [p for p in pads["kws_dscnn"] + pads["vww_mobilenetv1"] if p[3] > 1]
    assert len(depthwise) == 4 + 13 and all(p[0] == (3, 3) for p in depthwise)


@pytest.mark.parametrize("name", MODELS)
def test_data_files(examples_dir, name):
    in_shape, _, _, counts, labelled = MODELS[name]
    for split, count in zip(("calib", "test"), counts):
        with np.load(examples_dir / f"{name}_{split}.npz") as d:
            assert sorted(d.files) == (["x", "y"] if labelled else ["x"])
            x = d["x"]
            assert x.dtype == np.float32 and x.shape == (count, *in_shape)
            assert np.isfinite(x).all()
            if labelled:
                assert d["y"].dtype == np.int64 and d["y"].shape == (count,)


def test_images_are_the_digits_split(examples_dir):
    """IC and VWW use examples/digits.py's calib/test split: its labels, its images at 32x32 and 96x96."""
    for split in ("calib", "test"):
        digits = np.load(examples_dir / f"digits_cnn_{split}.npz")
        ic = np.load(examples_dir / f"ic_resnet8_{split}.npz")
        vww = np.load(examples_dir / f"vww_mobilenetv1_{split}.npz")
        np.testing.assert_array_equal(ic["y"], digits["y"])
        np.testing.assert_array_equal(vww["y"], (digits["y"][: len(vww["y"])] >= 5).astype(np.int64))
        for x in (ic["x"], vww["x"]):
            assert 0.0 <= x.min() and x.max() <= 1.0
            assert np.array_equal(x[:, 0], x[:, 1]) and np.array_equal(x[:, 0], x[:, 2])  # grey: 3 equal channels
            np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-4)  # 8-bit pixels, k/255
        # the upsampled image is the digit: its 8x8 block means follow the 8x8 original
        blocks = ic["x"][:, 0].reshape(-1, 8, 4, 8, 4).mean(axis=(2, 4))
        assert np.corrcoef(blocks.ravel(), digits["x"].ravel())[0, 1] > 0.9


def test_kws_labels_are_the_twelve_classes(examples_dir):
    for split in ("calib", "test"):
        y = np.load(examples_dir / f"kws_dscnn_{split}.npz")["y"]
        assert set(np.unique(y)) == set(range(12))


@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_recorded_metrics(examples_dir, metrics, mlperf, name):
    with np.load(examples_dir / f"{name}_test.npz") as d:
        x, y = d["x"], (d["y"] if "y" in d.files else None)
    got = mlperf.summary(mlperf.ort_run(examples_dir / f"{name}.onnx", x), x, y)
    want = metrics[name]["onnxruntime"]
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key in ("accuracy", "n_test"):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-4), key


def test_recorded_accuracies(examples_dir, metrics):
    """The trained models learned their tasks, and onnxruntime agrees with torch."""
    for name, floor in (("ic_resnet8", 0.97), ("kws_dscnn", 0.9), ("vww_mobilenetv1", 0.9)):
        assert metrics[name]["onnxruntime"]["accuracy"] >= floor, name
        assert metrics[name]["onnxruntime"]["accuracy"] == metrics[name]["torch"]["accuracy"], name
    # the autoencoder reconstructs far better than the inputs' mean would
    x = np.load(examples_dir / "ad_autoencoder_test.npz")["x"]
    assert metrics["ad_autoencoder"]["onnxruntime"]["reconstruction_mse"] < 0.3 * x.var()


@pytest.mark.parametrize("name", MODELS)
def test_hwflow_reads_it(examples_dir, metrics, capsys, name):
    """hwflow's inspect counts the recorded MACs, and the parameters less the BN ones it folds."""
    assert main(["inspect", str(examples_dir / f"{name}.onnx"), "--json"]) in (0, None)
    doc = json.loads(capsys.readouterr().out)
    m = metrics[name]
    assert doc["totals"]["macs"] == m["macs"]
    assert doc["totals"]["params"] == m["params"] - m["bn_running_stats"]  # BN's scale+shift fold away
    assert not any(layer["op"] == "BatchNormalization" for layer in doc["layers"])


def test_recorded_sizes(metrics):
    """The reference architectures' published sizes."""
    folded = {k: (m["params"] - m["bn_running_stats"], m["macs"]) for k, m in metrics.items()}
    assert folded == {
        "ic_resnet8": (77_706, 12_501_632),
        "kws_dscnn": (22_604, 2_656_768),
        "ad_autoencoder": (265_864, 264_192),
        "vww_mobilenetv1": (210_850, 7_489_664),
    }


def test_files_stay_small(examples_dir):
    total = sum(p.stat().st_size for name in MODELS for p in examples_dir.glob(f"{name}*"))
    assert total < 10e6


def test_check_mode(root):
    out = subprocess.run([sys.executable, str(root / "examples" / "mlperf_tiny.py"), "--check"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(" ok") == len(MODELS)


def test_check_mode_detects_a_wrong_model(root, examples_dir, tmp_path):
    for f in examples_dir.iterdir():
        if f.name.startswith(tuple(MODELS)) or f.name == "mlperf_tiny.json":
            (tmp_path / f.name).write_bytes(f.read_bytes())
    # one BN variance off in the autoencoder changes its reconstructions
    model = onnx.load(tmp_path / "ad_autoencoder.onnx")
    for init in model.graph.initializer:
        if init.name == "bn5.var":
            init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) * 4, init.name))
    onnx.save(model, tmp_path / "ad_autoencoder.onnx")
    out = subprocess.run(
        [sys.executable, str(root / "examples" / "mlperf_tiny.py"), "--check", "--out", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert out.returncode == 1
    assert "ad_autoencoder" in out.stdout and out.stdout.count("MISMATCH") == 1
