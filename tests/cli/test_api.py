"""The Python API: hwflow.compile / hwflow.load and the Build they return, and the typed
configs it takes (a notebook needs no CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import hwflow
from hwflow.config import PruneConfig, ScheduleConfig
from hwflow.errors import BuildError, OptionError
from hwflow.quant import AutoBitsConfig, QuantConfig

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
CNN, CNN_CALIB = MODELS / "digits_cnn.onnx", MODELS / "digits_cnn_calib.npz"
MLP, MLP_CALIB = MODELS / "digits_mlp.onnx", MODELS / "digits_mlp_calib.npz"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> hwflow.Build:
    out = tmp_path_factory.mktemp("api") / "cnn"
    return hwflow.compile(CNN, target="generic", calib=CNN_CALIB, out=out, pe=2, simd=4, vectors=3,
                          quant=QuantConfig(rounding="nearest"))


def test_public_names():
    assert set(hwflow.__all__) >= {"compile", "load", "Build", "QuantConfig", "AutoBitsConfig", "PruneConfig",
                                   "ScheduleConfig", "HwflowError", "__version__"}
    for name in hwflow.__all__:
        assert getattr(hwflow, name) is not None
    assert hwflow.QuantConfig is QuantConfig and hwflow.PruneConfig is PruneConfig
    with pytest.raises(AttributeError):
        hwflow.no_such_name  # noqa: B018


def test_compile_returns_a_build(cnn):
    assert isinstance(cnn, hwflow.Build)
    assert (cnn.manifest["pe"], cnn.manifest["simd"]) == (2, 4)
    assert cnn.predicted_cycles == cnn.manifest["cycles"] > 0
    assert set(cnn.compile_seconds) == {"load", "optimize", "fit", "quantize", "schedule", "generate", "vectors", "write"}
    assert cnn.manifest["options"]["schedule"] == {"pe": 2, "simd": 4, "fuse": "auto", "argmax": False}
    assert "cycles" in repr(cnn) and "PE 2 x SIMD 4" in repr(cnn)
    again = hwflow.load(cnn.path)
    assert again.manifest == cnn.manifest and again.compile_seconds is None


def test_predict_is_the_stored_reference_on_codes_and_floats(cnn):
    codes = cnn.inputs()
    np.testing.assert_array_equal(cnn.predict(codes), cnn.expected())
    x = np.load(CNN_CALIB)["x"][:3]                       # floats: quantized with the input's type
    np.testing.assert_array_equal(cnn.predict(x), cnn.expected())
    np.testing.assert_array_equal(cnn.predict(x[0]), cnn.expected()[:1])  # one vector
    out = cnn.manifest["output"]
    real = cnn.predict(codes, dequantize=True)
    np.testing.assert_allclose(real, (cnn.expected() - out["zero_point"]) * out["scale"])
    with pytest.raises(hwflow.HwflowError, match="shape"):
        cnn.predict(np.zeros((2, 5)))
    with pytest.raises(hwflow.HwflowError, match="outside the"):
        cnn.predict(np.full(codes.shape, 10**6))


@pytest.mark.sim
def test_simulate_records_the_result(cnn, tmp_path):
    b = hwflow.load(shutil.copytree(cnn.path, tmp_path / "b"))
    res = b.simulate("amaranth", random=2, seed=4)
    assert res.passed and res.vectors == 2
    rec = b.result("simulation")
    assert rec["passed"] and rec["simulator"] == "amaranth" and rec["inputs"] == "2 uniform random vectors (seed 4)"
    assert rec == {**res.to_json(), "inputs": rec["inputs"]}
    hwflow.load(b.path)  # writing the record did not break the BUILD's seal
    res = b.simulate("amaranth", inputs=np.load(CNN_CALIB)["x"][5:6])
    assert res.passed and b.result("simulation")["inputs"] == "1 given vectors"


def test_fuse_is_recorded_and_rebuilds_the_same_program(tmp_path):
    """A non-default ScheduleConfig travels into the manifest, and re-scheduling from the
    BUILD (what the Amaranth simulator does) uses it."""
    auto = hwflow.compile(CNN, target="generic", out=tmp_path / "auto", pe=4, simd=4, vectors=1)
    never = hwflow.compile(CNN, target="generic", out=tmp_path / "never", vectors=1,
                           schedule=ScheduleConfig(pe=4, simd=4, fuse="never"))
    assert never.manifest["options"]["schedule"]["fuse"] == "never"
    assert never.predicted_cycles != auto.predicted_cycles  # the CNN's pools are fused by default
    assert never.program().cycles == never.predicted_cycles


def test_prune_and_auto_bits_configs(tmp_path):
    b = hwflow.compile(MLP, target="generic", calib=MLP_CALIB, out=tmp_path / "b", vectors=1,
                       quant=QuantConfig(rounding="nearest"), prune=PruneConfig(sparsity=0.5, share=3),
                       auto_bits=AutoBitsConfig(agreement_floor=0.95))
    m = b.manifest
    assert m["options"]["prune"]["sparsity"] == 0.5 and m["options"]["auto_bits"]["agreement_floor"] == 0.95
    assert m["pruning"]["settings"] == {"prune": 0.5, "share": 3, "prune_scope": "global", "prune_norm": "l1",
                                        "prune_bias_correction": False}
    assert m["options"]["quant"]["layer_bits"]  # what auto bits chose is what was compiled
    w = np.concatenate([l.weight.ravel() for l in b.qgraph().layers if l.weight is not None])
    assert (w == 0).mean() >= 0.45


@pytest.mark.parametrize("make, msg", [
    (lambda: PruneConfig(), "needs sparsity, channels or share"),
    (lambda: PruneConfig(sparsity=1.0), r"sparsity must be in \[0, 1\)"),
    (lambda: PruneConfig(channels=-0.1), r"channels must be in \[0, 1\)"),
    (lambda: PruneConfig(share=6), "share must be 2..5 bits"),
    (lambda: PruneConfig(sparsity=0.5, scope="row"), "unknown pruning scope 'row'"),
    (lambda: PruneConfig(share=3, bias_correction=True), "needs sparsity or channels"),
    (lambda: ScheduleConfig(pe=0), "pe must be a positive integer, not 0"),
    (lambda: ScheduleConfig(simd=2.5), "simd must be a positive integer, not 2.5"),
    (lambda: ScheduleConfig(fuse="maybe"), "unknown fuse mode 'maybe'"),
    (lambda: AutoBitsConfig(), "needs? a weight budget"),
    (lambda: AutoBitsConfig(budget_kbit=0), "budget_kbit must be > 0"),
    (lambda: AutoBitsConfig(agreement_floor=1.5), r"agreement_floor must be a fraction in \(0, 1\]"),
])
def test_configs_check_their_values(make, msg):
    with pytest.raises(OptionError, match=msg):
        make()


@pytest.mark.parametrize("kwargs, msg", [
    ({"pe": 4, "schedule": ScheduleConfig(simd=4)}, "either as pe/simd or in schedule"),
    ({"quant": {"wbits": 4}}, "quant must be a QuantConfig"),
    ({"prune": 0.5}, "prune must be a PruneConfig"),
    ({"auto_bits": AutoBitsConfig(budget_kbit=10)}, "auto bits measure each layer's sensitivity on data"),
    ({"prune": PruneConfig(sparsity=0.3, bias_correction=True)}, "pruning bias correction measures mean outputs"),
    ({"vectors": 0}, "vectors must be a positive integer"),
])
def test_compile_rejects_bad_options_in_one_line(tmp_path, kwargs, msg):
    with pytest.raises(OptionError, match=msg) as info:
        hwflow.compile(MLP, target="generic", out=tmp_path / "b", **kwargs)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "b").exists()


def test_load_rejects_another_format(cnn, tmp_path):
    from hwflow.build import write_manifest

    b = shutil.copytree(cnn.path, tmp_path / "old")
    m = json.loads((b / "manifest.json").read_text())
    m["format"] = "hwflow.build/1"
    write_manifest(b / "manifest.json", m)
    with pytest.raises(BuildError, match=r"has format 'hwflow.build/1', this hwflow reads 'hwflow.build/2'; "
                                         r"re-run hwflow compile"):
        hwflow.load(b)


def test_cli_fuse_option(tmp_path):
    from hwflow.cli import main

    assert main(["compile", str(CNN), "-t", "generic", "-o", str(tmp_path / "b"), "--fuse", "never",
                 "--vectors", "1"]) == 0
    assert hwflow.load(tmp_path / "b").manifest["options"]["schedule"] == {"pe": None, "simd": None,
                                                                          "fuse": "never", "argmax": False}
