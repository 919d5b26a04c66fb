"""A small accelerator-shaped design for the synthesis tests.

``MacDemo`` has the exact port shape of :class:`hwflow.rtl.accelerator.Accelerator`
(start/busy/done/cycles, valid/ready code streams) and the structures whose mapping
the synthesis flow must get right: a weight ROM initialised with data (must become
block RAM), an input buffer RAM, PE parallel multipliers (must become DSPs) and a
per-channel requantizer. It computes ``y = clamp((W @ x) * M >> SHIFT)`` for
``N`` int8 inputs and ``K`` outputs, ``PE`` outputs at a time.
"""


from types import SimpleNamespace

import numpy as np
import pytest
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

N, K, PE, SHIFT = 64, 16, 4, 12
_rng = np.random.default_rng(5)
WEIGHTS = _rng.integers(-128, 128, size=(K, N))
MULTS = _rng.integers(1 << 8, 1 << 10, size=K)


def reference(x: np.ndarray) -> np.ndarray:
    """The integer function MacDemo computes, for its own simulation test."""
    acc = WEIGHTS @ x.astype(np.int64)
    y = (acc * MULTS + (1 << (SHIFT - 1))) >> SHIFT
    return np.clip(y, -128, 127)


class MacDemo(wiring.Component):
    start: In(1)
    busy: Out(1)
    done: Out(1)
    cycles: Out(32)
    in_valid: In(1)
    in_ready: Out(1)
    in_data: In(signed(8))
    out_valid: Out(1)
    out_ready: In(1)
    out_data: Out(signed(8))

    def elaborate(self, platform):
        m = Module()
        groups = K // PE
        # Weight ROM: one row holds PE weights for one input index (PE*8 bits wide).
        rows = []
        for g in range(groups):
            for i in range(N):
                word = 0
                for p in range(PE):
                    word |= (int(WEIGHTS[g * PE + p, i]) & 0xFF) << (8 * p)
                rows.append(word)
        m.submodules.wrom = wrom = Memory(shape=unsigned(8 * PE), depth=len(rows), init=rows)
        m.submodules.xbuf = xbuf = Memory(shape=signed(8), depth=N, init=[])
        m.submodules.mrom = mrom = Memory(shape=unsigned(10), depth=K, init=[int(v) for v in MULTS])
        m.submodules.abuf = abuf = Memory(shape=signed(24), depth=K, init=[])
        wr_x, rd_x = xbuf.write_port(), xbuf.read_port()
        rd_w = wrom.read_port()
        rd_m = mrom.read_port()
        wr_a, rd_a = abuf.write_port(), abuf.read_port()

        count = Signal(32)
        running = Signal()
        m.d.comb += self.busy.eq(running)
        with m.If(running):
            m.d.sync += count.eq(count + 1)
        m.d.sync += self.done.eq(0)

        i = Signal(range(N + 1))
        g = Signal(range(groups + 1))
        k = Signal(range(K + 1))
        # Compute pipeline: address -> ROM/RAM read -> register -> multiply -> accumulate.
        # The registers after the block RAMs and after the multipliers are what make
        # 100 MHz on ECP5: DP16KD clock-to-out alone is ~5.8 ns on speed grade 6.
        issue = Signal()
        v1, v2, v3 = Signal(), Signal(), Signal()
        f1, f2, f3 = Signal(), Signal(), Signal()
        m.d.sync += [v1.eq(issue), f1.eq(issue & (i == 0)),
                     v2.eq(v1), f2.eq(f1), v3.eq(v2), f3.eq(f2)]
        m.d.comb += [rd_x.addr.eq(i), rd_w.addr.eq(g * N + i)]
        xq = Signal(signed(8))
        wq = Signal(8 * PE)
        m.d.sync += [xq.eq(rd_x.data), wq.eq(rd_w.data)]
        prods = [Signal(signed(16), name=f"prod{p}") for p in range(PE)]
        accs = [Signal(signed(24), name=f"acc{p}") for p in range(PE)]
        for p in range(PE):
            m.d.sync += prods[p].eq(wq[8 * p:8 * p + 8].as_signed() * xq)
            with m.If(v3):
                m.d.sync += accs[p].eq(Mux(f3, 0, accs[p]) + prods[p])
        # Spill the PE accumulators to the accumulator buffer after the last input.
        spill = Signal(range(PE + 1))
        spilling = Signal()
        m.d.comb += [wr_a.addr.eq(g * PE - PE + spill),
                     wr_a.data.eq(Cat(*[a for a in accs]).word_select(spill[:2], 24)),
                     wr_a.en.eq(spilling)]

        # Output, one code at a time: address -> read -> acc*M -> round -> clamp -> emit.
        prod = Signal(signed(36))
        rounded = Signal(signed(36))
        m.d.comb += [rd_a.addr.eq(k), rd_m.addr.eq(k)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [running.eq(1), count.eq(1), i.eq(0), g.eq(0), k.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.in_ready.eq(1), wr_x.addr.eq(i), wr_x.data.eq(self.in_data),
                             wr_x.en.eq(self.in_valid)]
                with m.If(self.in_valid):
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == N - 1):
                        m.d.sync += i.eq(0)
                        m.next = "MAC"
            with m.State("MAC"):
                m.d.comb += issue.eq(1)
                m.d.sync += i.eq(i + 1)
                with m.If(i == N - 1):
                    m.d.sync += [i.eq(0), g.eq(g + 1)]
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(~v1 & ~v2 & ~v3):
                    m.d.sync += spill.eq(0)
                    m.next = "SPILL"
            with m.State("SPILL"):
                m.d.comb += spilling.eq(1)
                m.d.sync += spill.eq(spill + 1)
                with m.If(spill == PE - 1):
                    m.next = "NEXT"
            with m.State("NEXT"):
                with m.If(g == groups):
                    m.next = "RQ0"
                with m.Else():
                    m.next = "MAC"
            with m.State("RQ0"):
                m.next = "RQ1"
            with m.State("RQ1"):
                m.d.sync += prod.eq(rd_a.data * rd_m.data)
                m.next = "RQ2"
            with m.State("RQ2"):
                m.d.sync += rounded.eq((prod + (1 << (SHIFT - 1))) >> SHIFT)
                m.next = "RQ3"
            with m.State("RQ3"):
                m.d.sync += [self.out_valid.eq(1),
                             self.out_data.eq(Mux(rounded > 127, 127,
                                                  Mux(rounded < -128, -128, rounded)))]
                m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(self.out_ready):
                    m.d.sync += [self.out_valid.eq(0), k.eq(k + 1)]
                    with m.If(k == K - 1):
                        m.d.sync += [running.eq(0), self.done.eq(1), self.cycles.eq(count)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "RQ0"
        return m


def demo_verilog(top: str = "mac_demo") -> str:
    """Verilog of :class:`MacDemo` with module name ``top``."""
    return verilog.convert(MacDemo(), name=top)


@pytest.fixture(scope="session")
def demo():
    """The test design: ``MacDemo``, ``reference``, ``N``, ``K`` and ``verilog(top)``."""
    return SimpleNamespace(MacDemo=MacDemo, reference=reference, N=N, K=K,
                           verilog=demo_verilog)
