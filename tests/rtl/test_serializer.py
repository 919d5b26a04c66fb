# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from hwflow.rtl.serializer import Serializer
from hwflow.sim.beats import pack

pytestmark = pytest.mark.sim


def _lanes(v, n, bits):
    """Signed lanes of a packed integer."""
    out = []
    for i in range(n):
        c = (v >> (i * bits)) & ((1 << bits) - 1)
        out.append(c - (1 << bits) if c >> (bits - 1) else c)
    return out


@pytest.mark.parametrize("nb,simd,lanes,cout,coff,t", [
    (4, 4, 1, 10, 0, 4), (3, 4, 1, 7, 5, 6), (8, 2, 1, 8, 3, 8),
    (4, 4, 2, 10, 0, 2), (8, 4, 4, 13, 4, 3), (4, 8, 4, 6, 8, 1), (8, 8, 8, 20, 0, 1),
])
def test_serializer_order_and_addresses(run_sim, nb, simd, lanes, cout, coff, t):
    """Groups of ``lanes`` consecutive channels, one a cycle, with their channel ROM word,
    activation word and first lane; entries past ``cout`` masked off."""
    acc_bits, pixels = 12, 3
    nt = -(-cout // nb)
    out_base, ch_base = 17, 8
    och = -(-(coff + cout + 2) // simd)  # output tensor has more channels than this step writes
    dut = Serializer(max(nb, simd), simd, lanes, acc_bits, addr_bits=8, ch_bits=6, max_cout=cout)
    rng = np.random.default_rng(nb * cout + lanes)
    vecs = rng.integers(-2000, 2000, size=(pixels * nt, nb))
    # Model: every group with a valid entry, in output order.
    want = []
    for px in range(pixels):
        for g in range(nt):
            for i in range(0, nb, lanes):
                co = g * nb + i
                if co < cout:
                    c = coff + co
                    n = min(lanes, cout - co)
                    want.append(([int(v) for v in vecs[px * nt + g, i:i + n]], (1 << n) - 1,
                                 (ch_base + co) // lanes, out_base + px * och + c // simd, c % simd))
    got = []

    async def bench(ctx):
        for sig, v in ((dut.ng, nb // lanes), (dut.nt, nt), (dut.cout, cout), (dut.ch_base, ch_base // lanes),
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
                mask = ctx.get(dut.mask)
                codes = _lanes(ctx.get(dut.a), lanes, acc_bits)[:bin(mask).count("1")]
                got.append((codes, mask, ctx.get(dut.gch), ctx.get(dut.waddr), ctx.get(dut.lane)))
            await ctx.tick()

    run_sim(dut, bench)
    assert got == want


def test_serializer_checks_its_lanes():
    with pytest.raises(ValueError, match=r"lanes must be a power of two dividing simd 8 and entries 8, not 3"):
        Serializer(8, 8, 3, 12, addr_bits=8, ch_bits=6, max_cout=8)
