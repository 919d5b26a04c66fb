"""End to end: YoWASP Yosys + nextpnr on the test design, both families (slow)."""

import pytest

from hwflow._files import sha256_file
from hwflow.build import FORMAT, RESULTS, load_build, write_manifest
from hwflow.synth.flow import synthesize


def make_build(path, demo, target):
    path.mkdir()
    (path / "mac_demo.v").write_text(demo.verilog("mac_demo"))
    write_manifest(path / "manifest.json", {"format": FORMAT, "results": RESULTS, "top": "mac_demo",
                                            "target": target, "verilog": "mac_demo.v",
                                            "files": {"mac_demo.v": sha256_file(path / "mac_demo.v")}})
    return path


@pytest.mark.slow
@pytest.mark.parametrize("target, family, bram_cell, dsp_cell, clock", [
    ("fpga-small", "ecp5", "DP16KD", "MULT18X18D", 100.0),
    ("fpga-tiny", "ice40", "SB_RAM40_4K", "SB_MAC16", 40.0),
])
def test_synthesize_maps_roms_to_bram_and_multipliers_to_dsps(
        tmp_path, demo, target, family, bram_cell, dsp_cell, clock):
    build = make_build(tmp_path / "b", demo, target)
    rep = synthesize(build)
    res = rep["resources"]
    # 4 lane multipliers (8x8) + the requantizer's 24x10 multiply.
    assert res["dsp"]["used"] >= 5 and rep["cells"][dsp_cell] == res["dsp"]["used"]
    # The 256 x 32-bit weight ROM is in block RAM, not LUTs.
    assert res["bram"]["used"] >= 1 and rep["cells"][bram_cell] >= 1
    assert 0 < res["lut"]["used"] < res["lut"]["available"]
    assert 0 < res["ff"]["used"] < res["ff"]["available"]
    assert rep["fmax_mhz"] > 0 and rep["clock_mhz"] == clock and rep["source"] == "nextpnr"
    assert rep["fits"] and rep["meets_timing"]
    assert load_build(build, simulate=False).result("synth") == rep
    assert (build / "synth" / "nextpnr_report.json").exists()
    assert (build / "handoff.json").exists() and (build / "README.md").exists()
    assert not list(build.glob(".synth-*"))


@pytest.mark.slow
def test_yosys_only_run(tmp_path, demo):
    build = make_build(tmp_path / "b", demo, "fpga-small")
    rep = synthesize(build, pnr=False)
    assert rep["source"] == "yosys" and rep["fmax_mhz"] is None and rep["meets_timing"] is None
    assert rep["resources"]["dsp"]["used"] >= 5 and rep["resources"]["bram"]["used"] >= 1
    assert "nextpnr" not in rep["seconds"]
