"""``hwflow synth`` end to end on the command line: exit codes 0 and 1 (slow: runs the tools)."""

import json
from importlib import resources

import pytest

from hwflow._files import sha256_file
from hwflow.build import FORMAT, RESULTS, load_build, write_manifest
from hwflow.cli import main


def _build(path, demo, target):
    path.mkdir()
    (path / "mac_demo.v").write_text(demo.verilog("mac_demo"))
    write_manifest(path / "manifest.json", {"format": FORMAT, "results": RESULTS, "top": "mac_demo",
                                            "target": str(target), "verilog": "mac_demo.v",
                                            "files": {"mac_demo.v": sha256_file(path / "mac_demo.v")}})
    return path


def _own_target(tmp_path, **changes):

    text = (resources.files("hwflow._targets") / "fpga-small.toml").read_text()
    changes = {'name = "fpga-small"': 'name = "own"', **changes}
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "own.toml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_synth_fits_and_meets_timing(tmp_path, demo, capsys):
    build = _build(tmp_path / "b", demo, "fpga-small")
    assert main(["synth", str(build), "--json", "--seed", "3"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["resources"]) == {"lut", "ff", "dsp", "bram"}
    assert rep["fits"] and rep["meets_timing"] and rep["fmax_mhz"] >= 100
    assert (rep["seed"], rep["pnr"]) == (3, True)
    assert rep == load_build(build, simulate=False).result("synth")  # recorded, sealed


@pytest.mark.slow
def test_synth_does_not_fit_names_the_resource(tmp_path, demo, capsys):
    target = _own_target(tmp_path, **{"dsps = 28 ": "dsps = 4 "})
    build = _build(tmp_path / "b", demo, target)
    assert main(["synth", str(build), "--no-pnr"]) == 1
    out, err = capsys.readouterr()
    assert "DSP             6          4  150.0%" in out
    assert err == "hwflow: mac_demo does not fit on own: DSP 6 used, 4 available (over by 2, 50%)\n"


@pytest.mark.slow
def test_synth_misses_timing_says_by_how_much(tmp_path, demo, capsys):
    target = _own_target(tmp_path, **{"clock_mhz = 100.0": "clock_mhz = 400.0"})
    build = _build(tmp_path / "b", demo, target)
    assert main(["synth", str(build)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hwflow: mac_demo does not meet timing on own: Fmax ")
    assert "MHz is below the 400 MHz clock goal (short by " in err
    # One line, naming the failing path's endpoints; the BUILD keeps its report.
    assert err.count("\n") == 1 and "; critical path " in err and " -> " in err
    rep = json.loads((build / "synth.json").read_text())
    assert rep["meets_timing"] is False and rep["critical_path"]["from"] in err
