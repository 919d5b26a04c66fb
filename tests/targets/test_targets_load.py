"""Loading and validating target files."""

import re
from pathlib import Path

import pytest

from hwflow.errors import TargetError
from hwflow.targets import DEFAULT_TARGET, Target, list_targets, load_target

KNOWN = re.compile(r"known targets: fpga-tiny, fpga-small, fpga-medium, generic")

GOOD = """
name = "mine"
family = "ecp5"
device = "LFE5U-45F"
package = "CABGA256"
clock_mhz = 80

[resources]
luts = 43848
ffs = 43848
dsps = 72
io_pins = 197

[memory.bram]
cell = "DP16KD"
blocks = 108
block_bits = 18432
shapes = ["512x36", "1024x18", "2048x9", "4096x4", "8192x2", "16384x1"]
init = true
ports = 2

[array]
pe = 8
simd = 2

[pnr]
args = ["--45k", "--package", "CABGA256"]
"""


def test_shipped_targets_and_their_datasheet_figures():
    assert list_targets() == ["fpga-tiny", "fpga-small", "fpga-medium", "generic"]
    assert DEFAULT_TARGET == "fpga-small"
    tiny = load_target("fpga-tiny")
    assert (tiny.family, tiny.device, tiny.package) == ("ice40", "UP5K", "sg48")
    assert (tiny.luts, tiny.dsps, tiny.bram_blocks, tiny.bram_block_bits, tiny.io_pins) == (
        5280, 8, 30, 4096, 39)
    spram = tiny.memory_kind("spram")
    assert (spram.cell, spram.blocks, spram.block_bits, spram.shapes) == ("SB_SPRAM256KA", 4, 256 * 1024,
                                                                        ((16384, 16),))
    assert (spram.init, spram.ports, spram.ram_style) == (False, 1, "huge")
    assert [k.name for k in tiny.memory] == ["bram", "spram"]
    assert tiny.block_ram.shapes == ((256, 16), (512, 8), (1024, 4), (2048, 2)) and tiny.block_ram.init
    assert tiny.clock_mhz == 40.0
    small = load_target("fpga-small")
    assert (small.family, small.device, small.package) == ("ecp5", "LFE5U-25F", "CABGA256")
    assert (small.luts, small.dsps, small.bram_blocks, small.io_pins) == (24288, 28, 56, 197)
    assert small.bram_bits == 56 * 18 * 1024
    assert small.yosys_synth.startswith("synth_ecp5")
    assert small.pnr_tool == "nextpnr-ecp5" and "--25k" in small.pnr_args
    medium = load_target("fpga-medium")
    assert (medium.device, medium.dsps, medium.bram_blocks) == ("LFE5U-85F", 156, 208)
    assert [k.name for k in small.memory] == [k.name for k in medium.memory] == ["bram"]
    assert load_target(None) == small


def test_generic_is_unlimited():
    g = load_target("generic")
    assert g.unlimited and g.family == "generic"
    assert g.luts is None and g.dsps is None and g.bram_bits is None and g.io_pins is None
    assert g.pnr_tool is None
    assert g.block_ram.blocks is None and g.block_ram.shapes[0] == (512, 36)  # counted as DP16KD


def test_passthrough_and_to_json():
    t = load_target("fpga-small")
    assert load_target(t) is t
    d = t.to_json()
    assert d["name"] == "fpga-small" and d["pnr_args"][0] == "--25k"
    assert d["memory"][0]["shapes"][0] == "512x36" and d["memory"][0]["blocks"] == 56
    tiny = load_target("fpga-tiny")
    assert tiny.with_memory(bram=None).bram_blocks is None and tiny.with_memory(spram=2).memory[1].blocks == 2
    with pytest.raises(ValueError, match=r"no memory kind \['uram'\]"):
        tiny.with_memory(uram=1)


def test_own_file(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text(GOOD)
    t = load_target(str(path))
    assert isinstance(t, Target)
    assert (t.name, t.dsps, t.pe, t.simd, t.clock_mhz) == ("mine", 72, 8, 2, 80.0)
    # Defaults filled in from the family.
    assert t.yosys_synth == "synth_ecp5" and t.pnr_tool == "nextpnr-ecp5"
    assert t.source == str(path)
    # The name defaults to the file stem; a Path works too.
    path.write_text(GOOD.replace('name = "mine"\n', ""))
    assert load_target(path).name == "board"


def test_unknown_name_lists_known_targets():
    with pytest.raises(TargetError, match=r"unknown target 'fpga-huge'; " + KNOWN.pattern):
        load_target("fpga-huge")


def test_missing_file(tmp_path):
    with pytest.raises(TargetError, match=r"does not exist; " + KNOWN.pattern):
        load_target(tmp_path / "nope.toml")


@pytest.mark.parametrize("edit, message", [
    (("clock_mhz = 80", "clock_mhz = [80"), r"not valid TOML"),
    (("clock_mhz = 80", "clock_mhz = -5"), r"clock_mhz must be a number in \(0, 1000\], not -5"),
    (("clock_mhz = 80", 'clock_mhz = "fast"'), r"clock_mhz must be .*not 'fast'"),
    (("clock_mhz = 80\n", ""), r"missing key 'clock_mhz'"),
    (('family = "ecp5"', 'family = "xilinx"'), r"family must be one of ice40, ecp5, generic, not 'xilinx'"),
    (("dsps = 72", "dsps = -1"), r"resources.dsps must be an integer in \[0, .*not -1"),
    (("luts = 43848", "luts = 4.5"), r"resources.luts must be an integer .*not 4.5"),
    (("luts = 43848\n", ""), r"missing key 'resources.luts'"),
    (("pe = 8", "pe = 0"), r"array.pe must be an integer in \[1, 4096\], not 0"),
    (("simd = 2", "simd = true"), r"array.simd must be an integer .*not True"),
    (("io_pins = 197", "io_pins = 197\nbrams = 3"), r"unknown key 'resources.brams'"),
    (('device = "LFE5U-45F"\n', ""), r"missing key 'device'"),
    (("[pnr]", "[pnr]\ntool = \"nextpnr-ice40\""), r"pnr.tool must be nextpnr-ecp5 .*'nextpnr-ice40'"),
    (('args = ["--45k", "--package", "CABGA256"]', "args = \"--45k\""), r"pnr.args must be a list of strings, not '--45k'"),
    (("[pnr]", "[synth]\nyosys = \"synth_ice40\"\n[pnr]"), r"synth.yosys must start with synth_ecp5"),
    (("[pnr]", "[synth]\nyosys = \"synth_ecp5 -top x\"\n[pnr]"), r"must not set -top or -json"),
    (('name = "mine"', "colour = 'red'\nname = \"mine\""), r"unknown key 'colour'"),
    (("io_pins = 197", "io_pins = 197\nbram_blocks = 3"), r"resources.bram_blocks is now \[memory.bram\] blocks"),
    (("[memory.bram]", "[memory.uram]"), r"unknown memory kind \[memory.uram\] for family ecp5 \(allowed: bram\)"),
    (("[memory.bram]", "[memory.spram]"), r"unknown memory kind \[memory.spram\] for family ecp5"),
    (("blocks = 108\n", ""), r"missing key 'memory.bram.blocks'"),
    (("blocks = 108", "blocks = -2"), r"memory.bram.blocks must be an integer in \[0, .*not -2"),
    (('"512x36", ', '"512x37", '), r"memory.bram.shapes: each must be \"DEPTHxWIDTH\" of at most block_bits = "
                                   r"18432 bits, not '512x37'"),
    (('"512x36", ', '"512 by 36", '), r"not '512 by 36'"),
    (("init = true", "init = 1"), r"memory.bram.init must be true or false, not 1"),
    (("init = true", "init = false"), r"\[memory.bram\] must come first and be initialisable"),
    (("ports = 2", "ports = 3"), r"memory.bram.ports must be an integer in \[1, 2\], not 3"),
    (("ports = 2", "ports = 2\nspeed = 1"), r"unknown key 'memory.bram.speed'"),
])
def test_malformed_file_one_line_with_bad_value(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    old, new = edit
    assert old in GOOD
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(TargetError, match=message) as info:
        load_target(str(path))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"target file {path}: ")
    assert KNOWN.search(text)


def test_generic_file_must_not_have_resources(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('family = "generic"\nclock_mhz = 50\n[array]\npe = 1\nsimd = 1\n'
                    "[resources]\nluts = 5\n")
    with pytest.raises(TargetError, match=r"generic target has no \[resources\]"):
        load_target(path)


def test_constructor_checks_values():
    with pytest.raises(ValueError, match=r"'vhdl'"):
        Target(name="x", family="vhdl", clock_mhz=1.0, pe=1, simd=1)
    with pytest.raises(ValueError, match=r"pe must be a positive int, not 0"):
        Target(name="x", family="generic", clock_mhz=1.0, pe=0, simd=1)


def test_memory_table_is_required_and_bram_comes_first(tmp_path):
    start = GOOD.index("[memory.bram]")
    path = tmp_path / "nomem.toml"
    path.write_text(GOOD[:start] + GOOD[GOOD.index("[array]"):])
    with pytest.raises(TargetError, match=r"missing table \[memory.bram\]"):
        load_target(path)
    tiny = (Path(__file__).parents[2] / "targets" / "fpga-tiny.toml").read_text()
    a, b = tiny.index("[memory.bram]"), tiny.index("[memory.spram]")
    c = tiny.index("[array]")
    path.write_text(tiny[:a] + tiny[b:c] + tiny[a:b] + tiny[c:])  # spram first
    with pytest.raises(TargetError, match=r"\[memory.bram\] must come first"):
        load_target(path)


def test_memory_kind_checks_values():
    from hwflow.targets import MemoryKind

    with pytest.raises(ValueError, match=r"shapes must be .* not \(\(512, 40\),\)"):
        MemoryKind("bram", "X", 4, 18432, ((512, 40),))
    with pytest.raises(ValueError, match=r"ports must be 1 or 2, not 0"):
        MemoryKind("bram", "X", 4, 18432, ((512, 36),), ports=0)
    spram = MemoryKind("spram", "SB_SPRAM256KA", 4, 262144, ((16384, 16),), init=False, ports=1)
    with pytest.raises(ValueError, match=r"first memory kind \(spram\) must be initialisable and dual-port"):
        Target(name="x", family="ice40", clock_mhz=1.0, pe=1, simd=1, memory=(spram,))
