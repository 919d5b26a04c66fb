"""Every weight format and bipolar activations, bit- and cycle-exact on today's hardware.

A binary or ternary weight is an ordinary integer weight for the MAC array (its
value, ``QLayer.mul_wbits`` wide), pot weights in every MAC layer run on the shift lane
(``Program.lane``), mixed with other formats as values on the multiplying lane and a bipolar activation an ordinary 2-bit code written
by a threshold (requantizer plus a two-entry LUT), so ``hwflow compile`` and ``hwflow
simulate`` run them unchanged; these builds prove it in Amaranth and Verilator. Builds
live in pytest's cache directory so Verilator's sim_build survives between sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from _support.cli_sim import simulate_exact
from _support.lowbit_models import sign_after_pool, sign_cnn, sign_mlp
from hwflow.build import load_build
from hwflow.cli import main

pytestmark = pytest.mark.sim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"

#: name -> (model, options); together: pot (pow2 and symmetric scales), binary and
#: ternary weights, bipolar inputs to Gemm and padded Conv, MaxPool of bipolar codes,
#: a standalone Sign, two array shapes
BUILDS = {
    "cnn-pot4-pow2": ("digits_cnn", ["--weights", "pot", "--scheme", "pow2", "--pe", "4", "--simd", "4"]),
    "signcnn-w1a1": ("sign_cnn", ["--weights", "binary", "--abits", "1", "--pe", "2", "--simd", "8"]),
    "signmlp-ternary-pot5-a1": ("sign_mlp", ["--weights", "ternary", "--weights", "fc0=pot", "--bits", "fc0=5/1",
                                             "--abits", "1", "--scheme", "symmetric", "--pe", "4", "--simd", "4"]),
    "cnn-ternary-all": ("digits_cnn", ["--weights", "ternary", "--weights", "conv1=ternary", "--weights", "fc=ternary",
                                       "--pe", "8", "--simd", "2"]),
    "signpool-lut-threshold": ("sign_after_pool", ["--abits", "1", "--bits", "conv0=8/8", "--bits", "pool0=8/8",
                                                   "--weights", "fc=binary", "--pe", "4", "--simd", "4"]),
}
QUICK = ("cnn-pot4-pow2", "signcnn-w1a1")


@pytest.fixture(scope="module")
def cache_dir(request) -> Path:
    return Path(request.config.cache.mkdir("hwflow-lowbit"))


@pytest.fixture(scope="module")
def build(cache_dir):
    models = {"digits_cnn": (EXAMPLES / "digits_cnn.onnx", EXAMPLES / "digits_cnn_calib.npz")}
    for make in (sign_cnn, sign_mlp, sign_after_pool):
        p = make(cache_dir / f"{make.__name__}.onnx")
        models[make.__name__] = (p, p.with_name(p.stem + "_calib.npz"))
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            model, opts = BUILDS[name]
            onnx_path, calib = models[model]
            out = cache_dir / name
            assert main(["compile", str(onnx_path), "--target", "generic", "-o", str(out), "--calib", str(calib),
                         *opts]) == 0, name
            done[name] = out
        return done[name]

    return get


def _ids():
    return [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in BUILDS]


@pytest.mark.parametrize("name", _ids())
def test_build_holds_the_formats(build, name):
    qg = load_build(build(name)).qgraph()
    formats = {l.wformat for l in qg.layers if l.weight is not None}
    bipolar = [t for t, q in qg.tensors.items() if q.bits == 1]
    want = {"cnn-pot4-pow2": ({"pot"}, 0), "signcnn-w1a1": ({"int", "binary"}, 4),
            "signmlp-ternary-pot5-a1": ({"pot", "ternary", "int"}, 2), "cnn-ternary-all": ({"ternary"}, 0),
            "signpool-lut-threshold": ({"int", "binary"}, 1)}[name]
    assert (formats, len(bipolar)) == want
    exp = load_build(build(name)).expected()
    assert len({tuple(r.ravel()) for r in exp}) > 1  # the outputs vary across vectors


@pytest.mark.parametrize("name", _ids())
def test_amaranth(build, name, capsys):
    simulate_exact(capsys, build(name), "amaranth", "--limit", "2")


@pytest.mark.slow
@pytest.mark.tool("verilator")
@pytest.mark.parametrize("name", list(BUILDS))
def test_verilator(build, name, capsys):
    res = simulate_exact(capsys, build(name), "verilator")
    assert res["vectors"] == 8


def test_pot_weights_are_codes_on_a_shift_lane(build):
    """An all-pot4 build runs on the shift lane: its ROM holds the 4-bit codes (decoded, the
    layers' values) and neither the MAC array nor the pow2 requantizer multiplies."""
    from hwflow.quant.wformat import WeightFormat

    b = load_build(build("cnn-pot4-pow2"))
    assert b.manifest["options"]["quant"]["weights"] == "pot"
    sched = json.loads((b.path / "schedule.json").read_text())
    assert sched["lane"] == "pot" and sched["dsp_mults"] == 0
    assert (sched["widths"]["wbits"], sched["widths"]["cbits"], sched["widths"]["mbits"]) == (8, 4, 1)
    p = b.program()
    assert p.stored_wbits == 4 and p.weight_rom_bits == p.weights.shape[0] * 16 * 4
    vals = WeightFormat("pot", 4).decode(p.weights & 15)
    qg = b.qgraph()
    assert sorted(np.unique(vals)) == sorted(np.unique(np.concatenate([l.weight.ravel() for l in qg.layers
                                                                        if l.weight is not None] + [[0]])))
