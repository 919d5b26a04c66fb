"""Serializer: turns a tile's ``nb`` parallel results into one code per cycle.

On ``load`` it copies the unit's result vector (``va``, and ``vb`` for Add) and then
emits entry ``i`` in the ``i``-th following cycle, for ``nb`` cycles. Entry ``i`` of the
``g``-th tile of a pixel is output channel ``co = g*nb + i``; it is valid only when
``co < cout`` (the last tile may be partial). For every valid entry the serializer also
produces the global channel index ``ch_base + co`` (per-channel ROM address) and the
destination in the activation RAM (word ``out_base + pixel*och + (coff+co)//simd``, lane
``(coff+co) % simd``), counted incrementally in output order, so there is no
multiplier and no divider.

Latency: entry ``i`` appears ``i + 1`` cycles after ``load``.

``init`` starts a layer: alone it resets the counters; together with ``load`` it resets
them for that load (the first of the new layer), so the previous layer's last entries can
still be on their way out while the next layer computes. The configuration ports must
hold the layer's values from its first load to its last entry.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..schedule.widths import count_bits, lane_bits, ubits

__all__ = ["Serializer"]


class Serializer(wiring.Component):
    """Parallel-to-serial converter with output address generation.

    Parameters
    ----------
    lanes : int
        Entries per load (``max(pe, simd)``).
    simd : int
        Lanes of an activation-RAM word (for the write lane).
    acc_bits : int
        Signed entry width.
    addr_bits, ch_bits : int
        Widths of activation-RAM word addresses and of global channel indices.
    max_cout : int
        Largest channel count of a layer.
    with_b : bool
        Carry a second operand (Add).
    """

    def __init__(self, lanes: int, simd: int, acc_bits: int, addr_bits: int, ch_bits: int,
                 max_cout: int, with_b: bool = False):
        for name, v in (("lanes", lanes), ("simd", simd), ("acc_bits", acc_bits),
                        ("addr_bits", addr_bits), ("ch_bits", ch_bits), ("max_cout", max_cout)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self._lanes, self._simd, self._with_b, self._acc_bits = lanes, simd, bool(with_b), acc_bits
        self._co_bits = count_bits(max_cout, lanes)
        lane_w = lane_bits(simd)
        super().__init__({
            "init": In(1),
            "load": In(1),
            "va": In(lanes * acc_bits),
            "vb": In(lanes * acc_bits),
            "nb": In(ubits(lanes)),
            "nt": In(self._co_bits),
            "cout": In(self._co_bits),
            "ch_base": In(ch_bits),
            "out_base": In(addr_bits),
            "och": In(addr_bits),
            "coff_chunk": In(addr_bits),
            "coff_lane": In(lane_w),
            "valid": Out(1),
            "a": Out(signed(acc_bits)),
            "b": Out(signed(acc_bits)),
            "gch": Out(ch_bits),
            "waddr": Out(addr_bits),
            "lane": Out(lane_w),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``load`` to the first entry."""
        return 1

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        ab = self._acc_bits
        # One wide shift register per operand: entry 0 in the low bits.
        sr_a = Signal(n * ab, reset_less=True)
        sr_b = Signal(n * ab, reset_less=True)
        cnt = Signal(range(n + 1))
        co = Signal(self._co_bits)
        tile_co = Signal(self._co_bits)
        tcount = Signal(self._co_bits)
        pix_base = Signal.like(self.waddr)
        wa = Signal.like(self.waddr)
        lane = Signal.like(self.lane)

        # cout - 1 and nt - 1 registered (layer constants, settled long before the first
        # load): no subtractor in front of the compares.
        cout_m1, nt_m1 = Signal.like(self.cout), Signal.like(self.nt)
        m.d.sync += [cout_m1.eq(self.cout - 1), nt_m1.eq(self.nt - 1)]
        live = (cnt != 0) & (co < self.cout)
        m.d.comb += [
            self.valid.eq(live),
            self.a.eq(sr_a[:ab].as_signed()),
            self.gch.eq(self.ch_base + co),
            self.waddr.eq(wa),
            self.lane.eq(lane),
        ]
        if self._with_b:
            m.d.comb += self.b.eq(sr_b[:ab].as_signed())

        # Tile counters as this load sees them: zero for a layer's first load.
        tco = Mux(self.init, 0, tile_co)
        tcn = Mux(self.init, 0, tcount)
        with m.If(self.load):
            m.d.sync += sr_a.eq(self.va)
            if self._with_b:
                m.d.sync += sr_b.eq(self.vb)
            m.d.sync += [cnt.eq(self.nb), co.eq(tco)]
            # (nt_m1 is a cycle behind the ports: a layer's first load compares nt itself.)
            with m.If(Mux(self.init, self.nt == 1, tcount == nt_m1)):
                m.d.sync += [tcount.eq(0), tile_co.eq(0)]
            with m.Else():
                m.d.sync += [tcount.eq(tcn + 1), tile_co.eq(tco + self.nb)]
        with m.Elif(self.init):
            m.d.sync += [tile_co.eq(0), tcount.eq(0), cnt.eq(0)]
        with m.Elif(cnt != 0):
            m.d.sync += [cnt.eq(cnt - 1), co.eq(co + 1)]
            m.d.sync += sr_a.eq(sr_a >> ab)
            if self._with_b:
                m.d.sync += sr_b.eq(sr_b >> ab)
        # Output address: advances once per valid entry, in output order.
        with m.If(live):
            with m.If(co == cout_m1):
                m.d.sync += [pix_base.eq(pix_base + self.och), wa.eq(pix_base + self.och),
                             lane.eq(self.coff_lane)]
            with m.Elif(lane == self._simd - 1):
                m.d.sync += [lane.eq(0), wa.eq(wa + 1)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        with m.If(self.init):
            start = self.out_base + self.coff_chunk
            m.d.sync += [pix_base.eq(start), wa.eq(start), lane.eq(self.coff_lane)]
        return m
