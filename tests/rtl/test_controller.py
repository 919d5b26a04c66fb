# amaranth: UnusedElaboratable=no
"""The controller's address trace equals the Program's loop nest, cycle for cycle."""

import pytest

from _support.graphs import GraphBuilder
from hwflow.rtl.controller import Controller
from hwflow.schedule import schedule
from hwflow.schedule.program import ISSUE_CYCLES, READ_DATA_REGS

pytestmark = pytest.mark.sim


def _program(pe, simd, ones=False):
    b = GraphBuilder(seed=5, scheme="asymmetric")
    if ones:  # loops of one step: 1x1 kernels on one channel, a 1x1 pool, a concat copy
        x = b.input_tensor((1, 1, 3, 4))
        h = b.conv(x, 1, k=1, pad=0)
        p = b.maxpool(h, k=1, stride=1)
        c = b.concat([p, h])
        b.gemm(b.conv(c, 2, k=1, pad=0, groups=2), 3)
        return schedule(b.build(), "generic", pe=pe, simd=simd)
    x = b.input_tensor((1, 3, 6, 5))
    h = b.conv(x, 6, k=3, stride=(2, 1), pad=(1, 2, 0, 1))
    d = b.conv(h, 6, k=3, pad=1, groups=6)
    a = b.add(h, d)
    p = b.maxpool(a, k=2, stride=1, pad=1)
    c = b.conv(p, 5, k=2, pad=1)
    q = b.maxpool(c, k=2, stride=2)  # fused into the conv: window loop
    b.gemm(q, 4)
    return schedule(b.build(), "generic", pe=pe, simd=simd)


@pytest.mark.parametrize("pe,simd,ones", [(2, 2, False), (3, 4, False), (4, 1, False), (1, 3, False),
                                          (1, 1, True), (2, 1, True)])
def test_controller_walks_the_loop_nest(run_sim, pe, simd, ones):
    prog = _program(pe, simd, ones)
    if ones:  # every loop flag also starts set (limits of 1: t = k = cis = kw = kh = 1)
        assert any(l.t == l.k == l.cis == l.kw == l.kh == 1 for l in prog.layers)
    else:
        assert any(l.qh * l.qw > 1 for l in prog.layers)
    dut = Controller(prog)
    # Two address registers, the synchronous read, the RAM's data registers.
    assert dut.latency == ISSUE_CYCLES == 3 + READ_DATA_REGS == prog.latency["issue"]
    want = []
    for layer in prog.layers:
        want += [r for r in layer.reads() if r is not None]
    got = []
    state = {"rd": [None] * (1 + READ_DATA_REGS), "w": [None] * (1 + READ_DATA_REGS)}

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.in_valid, 1)
        ctx.set(dut.out_ready, 1)
        for cyc in range(1, prog.cycles + 2):
            if ctx.get(dut.d_valid):
                addr = state["rd"][0] if ctx.get(dut.d_inrange) else None
                got.append((addr, state["w"][0], bool(ctx.get(dut.d_first)), bool(ctx.get(dut.d_last)),
                            bool(ctx.get(dut.d_sel)), bool(ctx.get(dut.d_wfirst)), bool(ctx.get(dut.d_wlast))))
            if ctx.get(dut.done):
                assert cyc == prog.cycles
                break
            # Both memories' addresses lead their flags by the read and the data registers.
            state["rd"] = state["rd"][1:] + [ctx.get(dut.rd_addr)]
            state["w"] = state["w"][1:] + [ctx.get(dut.w_addr)]
            await ctx.tick()
        else:
            raise AssertionError("no done")

    run_sim(dut, bench)
    # Weight addresses only matter for MAC steps; compare them there.
    kinds = [l.kind for l in prog.layers for r in l.reads() if r is not None]
    assert len(got) == len(want)
    for k, g, w in zip(kinds, got, want):
        if k != "mac":
            g, w = (g[0],) + g[2:], (w[0],) + w[2:]
        assert g == w
