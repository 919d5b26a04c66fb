# amaranth: UnusedElaboratable=no
"""LUT multiplier lanes of the MAC array: exhaustive products, DSP count after Yosys,
and a compiled model with LUT lanes, bit- and cycle-exact on Verilator."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.sim import Simulator

from hwflow.cli import main
from hwflow.rtl.mac_array import MacArray, lut_products
from hwflow.synth.yosys import find_yosys, parse_stat

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
TARGETS = Path(__file__).resolve().parents[2] / "targets"


@pytest.mark.sim
@pytest.mark.parametrize("abits,wbits", [(3, 2), (8, 3), (5, 5), (4, 8)])
def test_lut_products_exhaustive(abits, wbits):
    m = Module()
    a, w = Signal(signed(abits)), Signal(signed(wbits))
    (p,) = lut_products(m, [(a, w)], abits + wbits, "t")
    out = Signal(signed(abits + wbits))
    m.d.comb += out.eq(p)
    got = {}

    pairs = [(x, y) for x in range(-(1 << (abits - 1)), 1 << (abits - 1))
             for y in range(-(1 << (wbits - 1)), 1 << (wbits - 1))]

    async def bench(ctx):  # the first adder level is registered: the product follows the clock edge
        for x, y in pairs:
            ctx.set(a, x)
            ctx.set(w, y)
            await ctx.tick()
            got[x, y] = ctx.get(out)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == 1 << (abits + wbits)
    assert all(v == x * y for (x, y), v in got.items())


@pytest.mark.slow
def test_yosys_puts_exactly_dsp_mults_on_mult18x18d(tmp_path):
    (tmp_path / "mac.v").write_text(verilog.convert(MacArray(2, 4, 8, 8, 24, dsp_mults=3), name="mac"))
    subprocess.run([*find_yosys(), "-q", "-p", "read_verilog mac.v; synth_ecp5 -abc9 -top mac; "
                    "tee -q -o stat.json stat -json"], cwd=tmp_path, check=True, capture_output=True)
    stat = parse_stat(json.loads((tmp_path / "stat.json").read_text()), "ecp5")
    assert stat["dsp"] == stat["cells"]["MULT18X18D"] == 3
    assert stat["lut"] > 5 * 100  # the five LUT lanes, about 137 LUT4s each


@pytest.mark.sim
@pytest.mark.slow
def test_compiled_model_with_lut_lanes_is_exact_on_verilator(tmp_path, capsys):
    # fpga-small with 8 DSPs: of PE 4 x SIMD 4 = 16 lanes, those past the requantizer's
    # and control's DSPs (in ECP5_DSP_SHARE of the 8) multiply in LUTs.
    text = (TARGETS / "fpga-small.toml").read_text()
    text = re.sub(r'(?m)^name = .*$', 'name = "small-8dsp"', text)
    text = re.sub(r"(?m)^dsps = 28", "dsps = 8", text)
    assert "dsps = 8" in text
    (tmp_path / "small-8dsp.toml").write_text(text)
    out = tmp_path / "mlp"
    assert main(["compile", str(EXAMPLES / "digits_mlp.onnx"), "--calib", str(EXAMPLES / "digits_mlp_calib.npz"),
                 "--scheme", "symmetric", "--target", str(tmp_path / "small-8dsp.toml"),
                 "--pe", "4", "--simd", "4", "-o", str(out)]) == 0
    sched = json.loads((out / "schedule.json").read_text())
    assert 0 < sched["dsp_mults"] < 16 and sched["estimate"]["dsps"] <= 8
    assert "lutmul_" in (out / "digits_mlp.v").read_text()
    capsys.readouterr()
    rc = main(["simulate", str(out), "--simulator", "verilator", "--random", "6", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert (rc, res["passed"], res["mismatches"], res["vectors"]) == (0, True, 0, 6), res
    assert res["cycles_per_vector"] == [sched["cycles"]] * 6
    assert np.all(np.asarray(res["core_cycles_per_vector"]) == sched["cycles"])
