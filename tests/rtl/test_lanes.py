"""Each MAC lane type on a compiled small graph, bit- and cycle-exact in Amaranth and Verilator.

``pot`` (shift lanes: pot weights in every MAC layer), ``addsub`` (binary and ternary
weights in every MAC layer, 2-bit ternary codes) and ``mul`` (mixed formats: the values on
multipliers). Builds live in pytest's cache directory so Verilator's sim_build survives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _support.cli_sim import simulate_exact
from _support.lowbit_models import sign_cnn, sign_mlp
from hwflow.build import load_build
from hwflow.cli import main

pytestmark = pytest.mark.sim

#: name -> (model, options, lane, stored code bits)
BUILDS = {
    "mlp-pot4": ("sign_mlp", ["--weights", "pot", "--scheme", "pow2", "--abits", "1", "--bits", "fc0=4/8",
                              "--bits", "fc2=4/8", "--weights", "fc0=pot", "--weights", "fc2=pot"], "pot", 4),
    "mlp-pot5-a8": ("sign_mlp", ["--weights", "pot", "--wbits", "5", "--weights", "fc0=pot", "--weights", "fc2=pot",
                                 "--bits", "fc0=5/8", "--bits", "fc2=5/8"], "pot", 5),
    "cnn-binary-ternary": ("sign_cnn", ["--weights", "binary", "--abits", "1", "--weights", "conv0=ternary",
                                        "--bits", "conv0=2/8", "--weights", "fc=ternary", "--bits", "fc=2/8"],
                           "addsub", 2),
    "cnn-w1a1-int8-ends": ("sign_cnn", ["--weights", "binary", "--abits", "1"], "mul", 0),
}


@pytest.fixture(scope="module")
def build(request):
    cache = Path(request.config.cache.mkdir("hwflow-lanes"))
    models = {}
    for make in (sign_cnn, sign_mlp):
        p = make(cache / f"{make.__name__}.onnx")
        models[make.__name__] = (p, p.with_name(p.stem + "_calib.npz"))
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            model, opts, _, _ = BUILDS[name]
            onnx_path, calib = models[model]
            out = cache / name
            assert main(["compile", str(onnx_path), "--target", "generic", "-o", str(out), "--calib", str(calib),
                         "--pe", "4", "--simd", "4", *opts]) == 0, name
            done[name] = out
        return done[name]

    return get


@pytest.mark.parametrize("name", list(BUILDS))
def test_lane_and_rom(build, name):
    b = load_build(build(name))
    _, _, lane, cbits = BUILDS[name]
    sched = json.loads((b.path / "schedule.json").read_text())
    assert sched["lane"] == lane and sched["widths"].get("cbits", 0) == cbits
    p = b.program()
    assert p.stored_wbits == (cbits or p.wbits)
    if lane != "mul":
        assert sched["dsp_mults"] == 0 and "lutmul_" not in (b.path / f"{p.name}.v").read_text()
    layers = {l.name: f"{l.wformat}{l.wbits}" for l in b.qgraph().layers if l.weight is not None}
    assert {l["layer"]: l["weights"] for l in sched["lanes"]} == layers
    assert all(l["lane"].endswith(lane if lane != "mul" else "mul-dsp") for l in sched["lanes"])
    # Each layer's weights at their own width: binary ones (no padding here) at 1 bit, the
    # ROM's lanes only as wide as the widest layer's.
    for step in p.layers:
        if step.kind == "mac" and layers[step.name] == "binary1" and lane != "pot":
            assert p.stored_wbits >> step.wlr == 1, step.name


@pytest.mark.parametrize("name", list(BUILDS))
def test_amaranth(build, name, capsys):
    simulate_exact(capsys, build(name), "amaranth", "--limit", "2")


@pytest.mark.slow
@pytest.mark.tool("verilator")
@pytest.mark.parametrize("name", list(BUILDS))
def test_verilator(build, name, capsys):
    simulate_exact(capsys, build(name), "verilator", "--limit", "4")
