# amaranth: UnusedElaboratable=no
"""The estimate's DSP/BRAM placement rules, the DSP budget check, and the ROM text they steer."""

import numpy as np
import pytest

from _support.graphs import GraphBuilder, digits_cnn
from hwflow.rtl.weight_rom import WeightRom
from hwflow.schedule import schedule
from hwflow.schedule.estimate import dsp_blocks, memory_blocks, memory_style
from hwflow.targets import load_target


def _cnn(seed=0, **kw):
    b = GraphBuilder(seed=seed, **kw)
    digits_cnn(b)
    return b.build()


def test_dsp_blocks_follow_yosys_tiling():
    assert dsp_blocks(8, 8, "ecp5") == 1
    assert dsp_blocks(21, 17, "ecp5") == 2          # 18 + 3 bit tiles of A
    assert dsp_blocks(21, 17, "ice40") == 2         # 16x16 and 5x16; the 1-bit B tiles go to LUTs
    assert dsp_blocks(4, 4, "ice40") == 0           # product under 11 bits
    assert dsp_blocks(4, 4, "ecp5") == 1
    assert dsp_blocks(11, 5, "ice40", 8) == 0       # only 8 result bits used


def test_memory_style_and_blocks():
    assert memory_style(34, 53) == "logic"          # shallow ROM
    assert memory_style(104, 32, rom=False) == "block"
    assert memory_style(16, 32) == "logic"          # under 1 kbit
    assert memory_style(24, 32, rom=False) == "block"  # a RAM in logic costs a FF per bit
    ecp5, ice40 = load_target("fpga-small").block_ram, load_target("fpga-tiny").block_ram
    assert memory_blocks(126, 128, ecp5) == 4
    assert memory_blocks(126, 128, ice40) == 8
    spram = load_target("fpga-tiny").memory_kind("spram")
    assert memory_blocks(19850, 32, spram) == 4     # 2 wide x 2 deep 16K x 16
    assert memory_blocks(16384, 16, spram) == 1
    assert memory_blocks(16385, 17, spram, 17) == 3   # the two slices' 20 bits share a block


@pytest.mark.parametrize("depth, width, lane, family, blocks", [
    # Cell counts of Yosys's synth_ecp5/synth_ice40 (memory_libmap) on rtl/act_buffer.py's
    # and rtl/weight_ram.py's Verilog: 8-bit lanes take 9-bit bytes on ECP5, and a deep RAM
    # takes fewer, wider slices when the read multiplexer would cost more than a block.
    (400, 32, 8, "ecp5", 1), (1100, 32, 8, "ecp5", 3), (2100, 32, 8, "ecp5", 5),
    (4000, 32, 8, "ecp5", 8), (8474, 32, 8, "ecp5", 18), (4000, 64, 8, "ecp5", 16),
    (8474, 64, 8, "ecp5", 36), (700, 16, 8, "ice40", 3), (3000, 32, 8, "ice40", 24),
    (4975, 128, None, "ecp5", 36),
])
def test_memory_blocks_follow_yosys_libmap(depth, width, lane, family, blocks):
    kind = load_target("fpga-small" if family == "ecp5" else "fpga-tiny").block_ram
    assert memory_blocks(depth, width, kind, lane) == blocks


def test_more_multipliers_than_dsps_fit_with_lut_lanes():
    prog = schedule(_cnn(), "fpga-small")  # 16 MAC multipliers; ECP5 designs use half the DSPs
    assert prog.estimate["dsps"] == 14 and prog.dsp_mults == 12
    prog = schedule(_cnn(), "fpga-small", pe=8, simd=4)  # 32 MAC multipliers, 28 DSPs
    assert prog.estimate["dsps"] <= 28 and 0 < prog.dsp_mults < 32


def test_weight_rom_text_is_chunked_and_placed():
    image = (np.arange(130 * 2 * 4).reshape(130, 2, 4) % 15) - 7
    text = WeightRom(image, 4, verilog_module="rom").verilog()
    assert text.count("initial begin") == 3          # 64 + 64 + 2 words
    assert text.count("    mem[") == 130
    assert '(* ram_style = "block" *)' in text
    small = WeightRom(image[:8], 4, verilog_module="rom").verilog()
    assert '(* ram_style = "logic" *)' in small
