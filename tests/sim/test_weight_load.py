# amaranth: UnusedElaboratable=no
"""The weight-load path: weights in a memory the bitstream cannot initialise (iCE40 SPRAM).

A small graph on an UP5K with its block RAM cut to two blocks puts its weights in SPRAM
(the scheduler's choice, not forced); the core then takes the weight image through its
weight-load port before the first inference. Amaranth and Verilator must load it in
exactly the predicted cycles and then run bit- and cycle-exact; a wrong image or a
wrong load prediction must fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from _support.graphs import GraphBuilder
from hwflow.quant.reference import run_int_batch
from hwflow.rtl.accelerator import Accelerator
from hwflow.rtl.weight_rom import pack_words
from hwflow.schedule import schedule
from hwflow.sim import run_vectors
from hwflow.sim.amaranth_runner import run_amaranth

pytestmark = pytest.mark.sim


def spram_target(root, tmp_path, bram_blocks: int = 2):
    """fpga-tiny with only ``bram_blocks`` block RAMs (its 4 SPRAMs unchanged), as a TOML file."""
    text = (root / "targets" / "fpga-tiny.toml").read_text()
    assert "blocks = 30\n" in text
    path = tmp_path / "tiny-spram.toml"
    path.write_text(text.replace('name = "fpga-tiny"', 'name = "tiny-spram"')
                    .replace("blocks = 30\n", f"blocks = {bram_blocks}\n"))
    return path


@pytest.fixture
def graph():
    b = GraphBuilder(seed=3)
    h = b.gemm(b.input_tensor((1, 40)), 24, relu=True)
    b.gemm(h, 6)
    qg = b.build()
    xs = np.stack([b.random_input(qg) for _ in range(3)])
    return qg, xs


@pytest.fixture
def design(graph, root, tmp_path):
    qg, xs = graph
    return schedule(qg, spram_target(root, tmp_path)), xs, run_int_batch(qg, xs)


def test_the_scheduler_puts_the_weights_in_spram(graph, design):
    prog, _, _ = design
    assert prog.weight_kind.name == "spram" and prog.weight_load
    # PE 2 x SIMD 2: 12 tiles x 20 input words, then 3 x 12; one load beat a word
    assert prog.weight_words == 12 * 20 + 3 * 12 == prog.load_cycles
    assert prog.estimate["spram_blocks"] == 2 and prog.estimate["bram_blocks"] <= 2  # 32 bits: two 16-bit SPRAMs
    # On the real fpga-tiny the same weights fit the block RAM: a ROM, no load port, same cycles.
    rom = schedule(graph[0], "fpga-tiny")
    assert not rom.weight_load and rom.weight_kind.name == "bram" and rom.cycles == prog.cycles
    assert "wload_data" not in Accelerator(rom).signature.members
    assert Accelerator(prog).signature.members["wload_data"].shape == 32


def test_amaranth_loads_then_runs_exact(design):
    prog, xs, want = design
    r = run_vectors(prog, xs, "amaranth", expected=want)
    assert r.passed, r.summary()
    assert r.load_cycles == r.predicted_load_cycles == prog.weight_words
    assert "weight load      %d cycles (predicted %d)" % (prog.weight_words, prog.weight_words) in r.summary()
    assert r.to_json()["load_cycles"] == prog.weight_words


@pytest.mark.tool("verilator")
def test_verilator_loads_then_runs_exact(design):
    prog, xs, want = design
    r = run_vectors(prog, xs, "verilator", expected=want)  # built once, cached by the Verilog's hash
    assert r.passed, r.summary()
    assert r.load_cycles == prog.weight_words and r.cycles == [prog.cycles] * 3


def test_a_wrong_image_or_load_prediction_fails(design):
    prog, xs, want = design
    words = pack_words(prog.weights, prog.wbits)
    bad = [w ^ 0x80808080 for w in words]  # every weight's sign bit
    r = run_amaranth(Accelerator(prog), xs, want, prog.cycles, output_size=prog.output_size,
                     stream=prog.stream_maps(), load=(bad, prog.load_cycles))
    assert r.mismatches > 0 and not r.passed  # the weights really come from the load
    r = run_amaranth(Accelerator(prog), xs, want, prog.cycles, output_size=prog.output_size,
                     stream=prog.stream_maps(), load=(words, prog.load_cycles + 1))
    assert r.mismatches == 0 and r.cycles_exact and not r.load_exact and not r.passed


def test_start_is_ignored_until_loaded(design):
    prog, xs, _ = design
    dut = Accelerator(prog)
    words = pack_words(prog.weights, prog.wbits)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.start, 1)
        for _ in range(5):
            _, _, busy, loaded, ready = await ctx.tick().sample(dut.busy, dut.loaded, dut.wload_ready)
            assert not busy and not loaded and ready
        ctx.set(dut.start, 0)
        ctx.set(dut.wload_valid, 1)
        for w in words:  # a never-stalling source: one word a cycle
            ctx.set(dut.wload_data, w)
            await ctx.tick()
        ctx.set(dut.wload_valid, 0)
        seen["loaded"] = ctx.get(dut.loaded)
        seen["ready"] = ctx.get(dut.wload_ready)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        seen["busy"] = ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"loaded": 1, "ready": 0, "busy": 1}


@pytest.mark.parametrize("simulator", ["amaranth", "icarus"])
def test_stalls_and_resets_with_a_weight_load(design, tmp_path, simulator):
    """Random stalls hold the loaded weight RAM (and the activation RAM, both Verilog modules
    outside the stall's EnableInserter) exactly; after a mid-run reset (which clears
    ``loaded``) the image goes in again, in the same cycles."""
    from hwflow.rtl.accelerator import to_verilog
    from hwflow.sim.cocotb_runner import run_cocotb

    prog, xs, want = design
    load = (pack_words(prog.weights, prog.wbits), prog.load_cycles)
    if simulator == "amaranth":
        r = run_amaranth(Accelerator(prog), xs, want, prog.cycles, output_size=prog.output_size,
                         stream=prog.stream_maps(), load=load, stall=0.4, seed=1)
    else:
        v = tmp_path / "hwflow_top.v"
        v.write_text(to_verilog(prog, "hwflow_top"))
        r = run_cocotb(v, "hwflow_top", xs, want, prog.cycles, simulator, tmp_path / simulator,
                       output_size=prog.output_size, stream=prog.stream_maps(), load=load, stall=0.4, seed=1,
                       resets=True)
        assert r.resets == 3
    assert r.passed, r.summary()
    assert all(s > 0 for s in r.stall_cycles)
    assert r.cycles == [prog.cycles + s for s in r.stall_cycles] == r.core_cycles
