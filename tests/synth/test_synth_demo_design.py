"""The synthesis test design computes what its reference says (so its figures mean something)."""

import numpy as np
import pytest
from amaranth.sim import Simulator



@pytest.mark.sim
def test_mac_demo_matches_reference(demo):
    dut = demo.MacDemo()
    x = np.random.default_rng(1).integers(-128, 128, size=demo.N)
    got = []
    state = {}

    async def bench(ctx):
        ctx.set(dut.out_ready, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for v in x:
            assert ctx.get(dut.in_ready)
            ctx.set(dut.in_valid, 1)
            ctx.set(dut.in_data, int(v))
            await ctx.tick()
        ctx.set(dut.in_valid, 0)
        for _ in range(5000):
            if ctx.get(dut.out_valid):  # out_ready is held high: each valid cycle is a beat
                got.append(ctx.get(dut.out_data))
            await ctx.tick()
            if ctx.get(dut.done):
                state["cycles"] = ctx.get(dut.cycles)
                break

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(1e-4)
    assert got == list(demo.reference(x))
    assert state["cycles"] > demo.N
