# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from hwflow.rtl.serializer import Serializer
from hwflow.sim.beats import pack

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("nb,simd,cout,coff,t", [(4, 4, 10, 0, 4), (3, 4, 7, 5, 6), (8, 2, 8, 3, 8)])
def test_serializer_order_and_addresses(run_sim, nb, simd, cout, coff, t):
    acc_bits, pixels = 12, 3
    nt = -(-cout // nb)
    out_base, ch_base = 17, 9
    och = -(-(coff + cout + 2) // simd)  # output tensor has more channels than this step writes
    dut = Serializer(nb, simd, acc_bits, addr_bits=8, ch_bits=6, max_cout=cout)
    rng = np.random.default_rng(nb * cout)
    vecs = rng.integers(-2000, 2000, size=(pixels * nt, nb))
    # Model: every valid entry in output order.
    want = []
    for px in range(pixels):
        for g in range(nt):
            for i in range(nb):
                co = g * nb + i
                if co < cout:
                    c = coff + co
                    want.append((int(vecs[px * nt + g, i]), ch_base + co, out_base + px * och + c // simd, c % simd))
    got = []

    async def bench(ctx):
        for sig, v in ((dut.nb, nb), (dut.nt, nt), (dut.cout, cout), (dut.ch_base, ch_base),
                       (dut.out_base, out_base), (dut.och, och), (dut.coff_chunk, coff // simd),
                       (dut.coff_lane, coff % simd)):
            ctx.set(sig, v)
        ctx.set(dut.init, 1)
        await ctx.tick()
        ctx.set(dut.init, 0)
        for cyc in range(len(vecs) * t + nb + 2):
            tile, phase = divmod(cyc, t)
            load = phase == 0 and tile < len(vecs)
            ctx.set(dut.load, int(load))
            if load:
                ctx.set(dut.va, pack(vecs[tile], [range(nb)], acc_bits)[0])
            if ctx.get(dut.valid):
                got.append((ctx.get(dut.a), ctx.get(dut.gch), ctx.get(dut.waddr), ctx.get(dut.lane)))
            await ctx.tick()

    run_sim(dut, bench)
    assert got == want
