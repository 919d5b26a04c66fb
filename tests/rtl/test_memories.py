# amaranth: UnusedElaboratable=no
"""Weight ROM, weight RAM (loaded), channel ROM, LUT and activation buffer against their images."""

import subprocess

import numpy as np
import pytest

from hwflow.rtl.act_buffer import ActBuffer
from hwflow.rtl.channel_rom import ChannelRom
from hwflow.rtl.lut import Lut
from hwflow.rtl.weight_ram import WeightRam
from hwflow.rtl.weight_rom import WeightRom, pack_words
from hwflow.schedule.estimate import RomBanks, _rom_banks, _use, place_memories, read_banks
from hwflow.sim.beats import pack, unpack
from hwflow.targets import load_target

pytestmark = pytest.mark.sim


def test_weight_rom_reads_image_with_latency_1(run_sim):
    rng = np.random.default_rng(0)
    image = rng.integers(-8, 8, size=(13, 3, 5))
    dut = WeightRom(image, 4)
    assert dut.latency == 1
    order = rng.permutation(13)

    async def bench(ctx):
        for a in order:
            ctx.set(dut.addr, int(a))
            await ctx.tick()  # synchronous read: the word appears after the clock edge
            assert unpack([ctx.get(dut.data)], [range(15)], 4) == list(image[a].reshape(-1))

    run_sim(dut, bench)


def test_weight_ram_loads_through_its_stream_then_reads_with_latency_1(run_sim):
    rng = np.random.default_rng(1)
    words = [int(w) for w in rng.integers(0, 1 << 20, size=11)]
    dut = WeightRam(11, 20, ram_style="huge")
    assert dut.latency == 1
    gaps = {2, 3, 7}  # the source stalls before these words

    async def bench(ctx):
        sent, k, stalls = 0, 0, set()
        while True:
            offer = sent < len(words) and not (sent in gaps and sent not in stalls)
            if not offer and sent < len(words):
                stalls.add(sent)
            ctx.set(dut.load_valid, int(offer))
            ctx.set(dut.load_data, words[sent] if offer else 0xFFFFF)
            _, _, ready, loaded = await ctx.tick().sample(dut.load_ready, dut.loaded)
            assert ready == (not loaded)
            if loaded:
                break
            sent += int(offer and ready)
            k += 1
        # one word a cycle, three stalls; loaded the cycle after the last word
        assert (sent, k) == (11, 11 + 3)
        ctx.set(dut.load_valid, 1)  # ignored once loaded: the contents stay
        ctx.set(dut.load_data, 0)
        for a in rng.permutation(11):
            ctx.set(dut.addr, int(a))
            await ctx.tick()
            assert ctx.get(dut.data) == words[a] and ctx.get(dut.loaded) and not ctx.get(dut.load_ready)

    run_sim(dut, bench)


def test_weight_ram_checks_arguments_and_writes_a_single_port_module():
    with pytest.raises(ValueError, match=r"words must be a positive integer, not 0"):
        WeightRam(0, 8, ram_style="huge")
    with pytest.raises(ValueError, match=r"ram_style must be a Yosys ram_style name, not 'a b'"):
        WeightRam(4, 8, ram_style="a b")
    text = WeightRam(19850, 32, ram_style="huge", verilog_module="w").verilog()
    # no initial contents (the SPRAM has none), one address, read data held while writing or stalled
    assert "initial" not in text and '(* ram_style = "huge" *)' in text
    assert "if (en) begin\n    if (we) mem[addr] <= wdata;\n    else data <= mem[addr];" in text
    assert "reg [31:0] mem [0:19849];" in text and "input [14:0] addr;" in text


def test_pack_words_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"outside signed 4 bits"):
        pack_words(np.array([[[8]]]), 4)


@pytest.mark.parametrize("lanes", [1, 2])
def test_channel_rom(run_sim, lanes):
    """Word ``i`` holds channels ``i*lanes .. i*lanes + lanes - 1``; an address a cycle, its
    word two cycles later (the read, then the data register)."""
    bias, m, n = [5, -7, 100000, 3], [1, 65535, 3, 9], [0, -2, 31, 4]
    dut = ChannelRom(bias, m, n, 20, 16, 7, lanes=lanes)
    assert dut.latency == 2
    words = 4 // lanes
    addrs = [i % words for i in range(words * 2 + 1)][::-1]

    async def bench(ctx):
        for t, a in enumerate(addrs + [0]):
            ctx.set(dut.addr, a)
            await ctx.tick()
            if t >= 1:
                i = addrs[t - 1]
                for l in range(lanes):
                    d = ctx.get(dut.data)[l]
                    c = i * lanes + l
                    assert (d.bias, d.m, d.n) == (bias[c], m[c], n[c])

    run_sim(dut, bench)
    with pytest.raises(ValueError, match=r"lanes must be a positive integer dividing the 4 channels, not 3"):
        ChannelRom(bias, m, n, 20, 16, 7, lanes=3)


def test_lut_lookup_and_bypass(run_sim):
    t1 = np.arange(-8, 8)[::-1]          # layer A: 16 entries (lo = -8)
    t2 = np.array([3, -3, 1])             # layer B: 3 entries (lo = 0)
    dut = Lut(np.concatenate([t1, t2]), 8, tag_bits=4)
    assert dut.latency == 1
    cases = [(q, 1, 0, -8, int(t1[q + 8])) for q in range(-8, 8)]
    cases += [(q, 1, 16, 0, int(t2[q])) for q in range(3)]
    cases += [(q, 0, 0, -8, q) for q in (-128, 0, 127)]

    async def bench(ctx):
        for i, (q, en, base, lo, want) in enumerate(cases):
            ctx.set(dut.q, q)
            ctx.set(dut.en, en)
            ctx.set(dut.base, base)
            ctx.set(dut.lo, lo)
            ctx.set(dut.valid, 1)
            ctx.set(dut.tag, i % 16)
            await ctx.tick()
            ctx.set(dut.valid, 0)
            assert ctx.get(dut.out_valid)
            assert ctx.get(dut.out_q) == want
            assert ctx.get(dut.out_tag) == i % 16

    run_sim(dut, bench)


def test_act_buffer_lane_writes_and_hold(run_sim):
    simd, bits = 4, 6
    dut = ActBuffer(8, simd, bits)
    model = np.zeros((8, simd), np.int64)
    rng = np.random.default_rng(1)

    async def bench(ctx):
        for _ in range(60):
            a = int(rng.integers(8))
            en = int(rng.integers(1 << simd))
            vals = rng.integers(-32, 32, size=simd)
            ctx.set(dut.wr_addr, a)
            ctx.set(dut.wr_en, en)
            ctx.set(dut.wr_data, pack(vals, [range(simd)], bits)[0])
            ra = int(rng.integers(8))
            ctx.set(dut.rd_addr, ra)
            ctx.set(dut.rd_en, 1)
            before = model[ra].copy()  # read and write in one cycle: the read sees the old word
            await ctx.tick()
            for s in range(simd):
                if en >> s & 1:
                    model[a, s] = vals[s]
            last = ctx.get(dut.rd_data)
            assert unpack([last], [range(simd)], bits) == list(before)
            await ctx.tick()  # rd_q: rd_data a cycle later
            assert ctx.get(dut.rd_q) == last
        # rd_en low holds the data output; en low holds both ports and rd_q.
        ctx.set(dut.wr_en, 0)
        ctx.set(dut.rd_en, 0)
        held = ctx.get(dut.rd_data)
        other = next(a for a in range(8) if int(pack(model[a], [range(simd)], bits)[0]) != held)
        ctx.set(dut.rd_addr, other)
        await ctx.tick()
        assert ctx.get(dut.rd_data) == held
        ctx.set(dut.rd_en, 1)
        await ctx.tick()
        assert ctx.get(dut.rd_data) != held and ctx.get(dut.rd_q) == held
        ctx.set(dut.en, 0)
        await ctx.tick()
        assert ctx.get(dut.rd_q) == held and ctx.get(dut.rd_data) != held

    run_sim(dut, bench)


def _icarus_passes(path, dut: str) -> None:
    """Icarus runs ``dut`` with ``tb.v`` in ``path``: the bench printed PASS and no MISMATCH."""
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", dut, "tb.v"], cwd=path, check=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=path, check=True, capture_output=True, text=True).stdout
    assert "PASS" in out and "MISMATCH" not in out, out


@pytest.mark.tool("iverilog")
@pytest.mark.parametrize("banks", [(13,), (8, 5), (4, 4, 4, 1)])
def test_act_buffer_verilog_banks_read_what_was_written(banks, tmp_path):
    """The Verilog module, whole or in banks, in Icarus against a model of the RAM:
    lane writes, reads across the bank boundaries, a read held by rd_en low, ``rd_q`` (the
    per-bank data registers and the mux after them) a cycle behind ``rd_data``, held by en low."""
    depth, simd, bits = sum(banks), 3, 5
    (tmp_path / "act.v").write_text(ActBuffer(depth, simd, bits, verilog_module="act", banks=banks).verilog())
    rng = np.random.default_rng(7)
    model = np.zeros((depth, simd), np.int64)
    lines, want, want_q = [], None, None
    for t in range(160):
        wa, en, ra, ren = int(rng.integers(depth)), int(rng.integers(1 << simd)), int(rng.integers(depth)), int(rng.integers(4) > 0)
        qen = int(rng.integers(4) > 0)
        vals = rng.integers(0, 1 << bits, size=simd)
        lines.append(f"    wr_addr = {wa}; wr_en = {en}; wr_data = {int(pack(vals, [range(simd)], bits)[0])}; "
                     f"rd_addr = {ra}; rd_en = {ren}; en = {qen}; @(posedge clk); #1;")
        if qen:
            want_q = want  # rd_q loads the rd_data of before the edge
        if ren:
            want = int(pack(model[ra], [range(simd)], bits)[0])  # read-first: the old word
        if want is not None:
            lines.append(f'    if (rd_data !== {want}) begin $display("MISMATCH at {t}"); $finish; end')
        if want_q is not None:
            lines.append(f'    if (rd_q !== {want_q}) begin $display("MISMATCH rd_q at {t}"); $finish; end')
        for i in range(simd):
            if en >> i & 1:
                model[wa, i] = vals[i]
    (tmp_path / "tb.v").write_text(
        "module tb; reg clk = 0; always #5 clk = ~clk;\n"
        f"  reg [3:0] rd_addr, wr_addr; reg rd_en, en; reg [{simd - 1}:0] wr_en; reg [{simd * bits - 1}:0] wr_data;\n"
        f"  wire [{simd * bits - 1}:0] rd_data, rd_q;\n"
        "  act dut(.clk(clk), .en(en), .rd_addr(rd_addr), .rd_en(rd_en), .rd_data(rd_data), .rd_q(rd_q), .wr_addr(wr_addr),"
        " .wr_en(wr_en), .wr_data(wr_data));\n"
        "  initial begin #1;\n" + "\n".join(lines) + '\n    $display("PASS"); $finish;\n  end\nendmodule\n')
    _icarus_passes(tmp_path, "act.v")


@pytest.mark.tool("iverilog")
@pytest.mark.parametrize("banks,files,cols", [((13,), False, None), ((13,), True, None), ((8, 5), True, None),
                                               ((4, 4, 4, 1), False, None), ((8, 5), True, 9),
                                               ((4, 4, 4, 1), False, 1)])
def test_weight_rom_verilog_banks_read_the_image(banks, files, cols, tmp_path):
    """The ROM's Verilog module, whole or in banks, its contents inline or in one ``$readmemh``
    file per bank, in Icarus: ``data`` the addressed word a cycle later, ``q`` (the per-bank
    registers and the mux after them) a cycle behind it, both held by en low. With ``cols``
    the banks hold that many of the varying columns, one memory beside them the rest and
    constants the constant ones (lane 1's weights are all 5 here)."""
    rng = np.random.default_rng(8)
    image = rng.integers(-8, 8, size=(sum(banks), 2, 3))
    image[:, 0, 1] = 5
    rom = WeightRom(image, 4, verilog_module="rom", banks=banks, cols=cols)
    (tmp_path / "rom.v").write_text(rom.verilog("w" if files else None))
    for name, text in (rom.hex_files("w").items() if files else ()):
        (tmp_path / name).write_text(text)
    assert files == ('$readmemh("w' in (tmp_path / "rom.v").read_text())
    assert (cols is not None) == ("mem_rest" in (tmp_path / "rom.v").read_text())
    words = rom.words
    lines, data, q = [], None, None
    for t in range(120):
        a, en = int(rng.integers(len(words))), int(rng.integers(4) > 0)
        lines.append(f"    addr = {a}; en = {en}; @(posedge clk); #1;")
        if en:
            q, data = data, words[a]
        if data is not None:
            lines.append(f'    if (data !== {data}) begin $display("MISMATCH at {t}"); $finish; end')
        if q is not None:
            lines.append(f'    if (q !== {q}) begin $display("MISMATCH q at {t}"); $finish; end')
    (tmp_path / "tb.v").write_text(
        "module tb; reg clk = 0; always #5 clk = ~clk;\n  reg [3:0] addr; reg en; wire [23:0] data, q;\n"
        "  rom dut(.clk(clk), .en(en), .addr(addr), .data(data), .q(q));\n"
        "  initial begin #1;\n" + "\n".join(lines) + '\n    $display("PASS"); $finish;\n  end\nendmodule\n')
    _icarus_passes(tmp_path, "rom.v")


def test_weight_rom_q_is_data_a_cycle_later(run_sim):
    image = np.random.default_rng(9).integers(-8, 8, size=(6, 2, 2))
    dut = WeightRom(image, 4)

    async def bench(ctx):
        prev = None
        for a in (3, 0, 5, 5, 1):
            ctx.set(dut.addr, a)
            await ctx.tick()
            if prev is not None:
                assert ctx.get(dut.q) == dut.words[prev]
            prev = a

    run_sim(dut, bench)


def test_read_banks_one_per_block_slice():
    ecp5 = load_target("fpga-small").block_ram
    # 18 blocks of 1024 x 18 whole; 8 x 2 + 1 (the last bank in one 512 x 36)
    assert read_banks(8474, 32, 8, ecp5) == (1024,) * 8 + (282,)
    assert read_banks(2244, 32, 8, ecp5) == (512,) * 4 + (196,)  # DS-CNN 4x4: 5 blocks of 512 x 36
    assert read_banks(4000, 32, 8, ecp5) == (4000,)  # one slice of 4096 x 4 blocks: no mux
    assert read_banks(500, 32, 8, ecp5) == (500,)
    assert read_banks(500, 32, 8, None) == (500,)
    for bad in [(6, 4), (4, 4, 2, 0), (3, 3, 3, 1), (4, 2, 4)]:
        with pytest.raises(ValueError, match="banks"):
            ActBuffer(10, 2, 4, banks=bad)


def test_rom_banks_leave_the_columns_beside_them_that_do_not_fill_a_block():
    """ResNet-8's weight ROM on fpga-small: 4844 words of 128 columns take 36 blocks whole (libmap
    packs the 5 slices' last 2 columns into one 8192 x 2 block) but 40 in 5 banks; 126 columns
    in the banks and 2 beside them take 36 again, so they fit where banks of every column do not."""
    tgt = load_target("fpga-small")
    kind = tgt.block_ram
    mems = [("act", 8474, 32, 8, 32), ("weights", 4844, 128, None, 128)]
    assert place_memories(mems, tgt, banks="low")[1][kind.name] == 17 + 36
    assert _rom_banks(mems, tgt, kind) == RomBanks((1024,) * 4 + (748,), 126)
    assert _use(mems, tgt, kind, RomBanks((1024,) * 4 + (748,), 128))[kind.name] == 17 + 40
    assert _rom_banks(mems, tgt, kind, room=False) == RomBanks((1024,) * 4 + (748,), 128)
    with pytest.raises(ValueError, match="cols"):
        WeightRom(np.arange(8).reshape(8, 1, 1), 4, banks=(4, 4), cols=4)  # 3 varying columns
