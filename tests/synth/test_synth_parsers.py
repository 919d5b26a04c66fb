"""Report parsers on reports captured from real Yosys 0.70 / nextpnr 0.11 runs (no tools needed).

The captured design is conftest.MacDemo (ECP5: fpga-small as is; iCE40: fpga-tiny with the
narrow I/O wrapper).
"""

import dataclasses
import json
from pathlib import Path

import pytest

from hwflow.errors import ToolError
from hwflow.synth.nextpnr import parse_report, read_report
from hwflow.synth.report import build_report, format_report, misses
from hwflow.synth.yosys import parse_stat, read_stat
from hwflow.targets import load_target

DATA = Path(__file__).parent / "data"


def load(name):
    return json.loads((DATA / name).read_text())


def test_yosys_stat_ecp5():
    s = parse_stat(load("ecp5_yosys_stat.json"), "ecp5")
    # LUT4 339 + 2 x CCU2C 110 + 2 x TRELLIS_DPR16X4 14
    assert (s["lut"], s["ff"], s["dsp"], s["bram"], s["spram"]) == (587, 391, 6, 1, 0)
    assert s["cells"]["DP16KD"] == 1 and s["cells"]["MULT18X18D"] == 6


def test_yosys_stat_ice40():
    s = parse_stat(load("ice40_yosys_stat.json"), "ice40")
    # FFs: SB_DFF 80 + SB_DFFESR 206 + SB_DFFSR 158 + SB_DFFSS 1
    assert (s["lut"], s["ff"], s["dsp"], s["bram"], s["spram"]) == (507, 445, 6, 5, 0)


def test_yosys_stat_without_design_section_sums_modules():
    data = {"modules": {"\\a": {"num_cells_by_type": {"SB_LUT4": 3, "SB_DFF": 2}},
                        "\\b": {"num_cells_by_type": {"SB_LUT4": 4, "SB_MAC16": 1}}}}
    s = parse_stat(data, "ice40")
    assert (s["lut"], s["ff"], s["dsp"]) == (7, 2, 1)


def test_nextpnr_report_ecp5():
    r = parse_report(load("ecp5_nextpnr_report.json"), "ecp5")
    assert (r["lut"], r["ff"], r["dsp"], r["bram"], r["io"]) == (689, 391, 6, 1, 57)
    assert r["fmax_mhz"] == pytest.approx(112.841, abs=1e-3)
    # The slowest register-to-register path is the one that sets Fmax: 1000 / 8.862 ns.
    assert r["critical_path"] == {"from": "_0__TRELLIS_FF_Q_13", "to": "prod_TRELLIS_FF_Q_22",
                                  "delay_ns": 8.862}
    assert 1000 / r["critical_path"]["delay_ns"] == pytest.approx(r["fmax_mhz"], rel=1e-3)
    # The device figures nextpnr knows agree with targets/fpga-small.toml.
    t = load_target("fpga-small")
    assert r["available"] == {"lut": t.luts, "ff": t.ffs, "dsp": t.dsps,
                              "bram": t.bram_blocks, "io": t.io_pins}


def test_nextpnr_report_ice40_ignores_constant_net_clock():
    r = parse_report(load("ice40_nextpnr_report.json"), "ice40")
    assert (r["lut"], r["dsp"], r["bram"], r["spram"], r["io"]) == (763, 6, 5, 0, 35)
    # '$PACKER_GND_NET_$glb_clk' (307 MHz) is a tied-off net, not the design's clock.
    assert list(r["clocks"]) == ["clk$SB_IO_IN_$glb_clk"]
    assert r["fmax_mhz"] == pytest.approx(49.249, abs=1e-3)
    t = load_target("fpga-tiny")
    assert r["available"] == {"lut": t.luts, "dsp": t.dsps, "bram": t.bram_blocks,
                              "spram": t.memory_kind("spram").blocks, "io": t.io_pins}


def test_report_fits_and_meets_timing():
    t = load_target("fpga-small")
    rep = build_report(t, parse_stat(load("ecp5_yosys_stat.json"), "ecp5"),
                       parse_report(load("ecp5_nextpnr_report.json"), "ecp5"))
    assert rep["resources"] == {"lut": {"used": 689, "available": 24288},
                                "ff": {"used": 391, "available": 24288},
                                "dsp": {"used": 6, "available": 28},
                                "bram": {"used": 1, "available": 56}}
    assert rep["other"] == {"io": {"used": 57, "available": 197}}
    assert (rep["fits"], rep["meets_timing"], rep["fmax_mhz"], rep["clock_mhz"]) == (
        True, True, 112.84, 100.0)
    assert misses(rep) == []
    text = format_report(rep)
    assert "DSP             6         28   21.4%" in text
    assert "Fmax      112.8 MHz (meets the 100 MHz goal)" in text
    assert "critical  8.9 ns from _0__TRELLIS_FF_Q_13 to prod_TRELLIS_FF_Q_22" in text


def test_report_ice40_uses_yosys_ffs_and_checks_spram():
    t = load_target("fpga-tiny")
    rep = build_report(t, parse_stat(load("ice40_yosys_stat.json"), "ice40"),
                       parse_report(load("ice40_nextpnr_report.json"), "ice40"))
    assert rep["resources"]["ff"] == {"used": 445, "available": 5280}
    assert rep["resources"]["lut"] == {"used": 763, "available": 5280}
    # Every memory kind of the target is a resource, counted against its blocks.
    assert rep["resources"]["spram"] == {"used": 0, "available": 4}
    assert rep["resources"]["bram"] == {"used": 5, "available": 30}
    assert rep["fits"] and rep["meets_timing"]
    assert "SPRAM           0          4    0.0%" in format_report(rep)


def test_misses_name_the_resource_and_the_overflow():
    t = dataclasses.replace(load_target("fpga-tiny").with_memory(bram=30), dsps=4)
    rep = build_report(t, parse_stat(load("ice40_yosys_stat.json"), "ice40"),
                       parse_report(load("ice40_nextpnr_report.json"), "ice40"))
    assert not rep["fits"]
    assert misses(rep) == ["DSP 6 used, 4 available (over by 2, 50%)"]


def test_misses_timing_by_how_much():
    t = dataclasses.replace(load_target("fpga-small"), clock_mhz=150.0)
    rep = build_report(t, parse_stat(load("ecp5_yosys_stat.json"), "ecp5"),
                       parse_report(load("ecp5_nextpnr_report.json"), "ecp5"))
    assert rep["fits"] and rep["meets_timing"] is False
    assert misses(rep) == [
        "Fmax 112.8 MHz is below the 150 MHz clock goal (short by 37.2 MHz, 25%); "
        "critical path _0__TRELLIS_FF_Q_13 -> prod_TRELLIS_FF_Q_22, 8.9 ns"]


def test_yosys_only_report_has_unknown_timing():
    t = load_target("fpga-small")
    rep = build_report(t, parse_stat(load("ecp5_yosys_stat.json"), "ecp5"), io_used=57)
    assert rep["source"] == "yosys" and rep["fmax_mhz"] is None
    assert rep["meets_timing"] is None and rep["fits"]
    assert rep["resources"]["lut"]["used"] == 587
    assert "not known" in format_report(rep)


def test_garbled_reports_are_tool_errors(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("{\"utilization\": 3")
    with pytest.raises(ToolError, match=r"cannot read the nextpnr report .*r.json"):
        read_report(bad, "ecp5")
    with pytest.raises(ToolError, match=r"cannot read the Yosys report .*nope.json"):
        read_stat(tmp_path / "nope.json", "ice40")


def test_unknown_family_is_a_programming_error():
    with pytest.raises(ValueError, match=r"'xilinx'"):
        parse_stat({}, "xilinx")
    with pytest.raises(ValueError, match=r"'generic'"):
        parse_report({}, "generic")
