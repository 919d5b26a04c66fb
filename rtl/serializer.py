"""Serializer: turns a tile's ``nb`` parallel results into groups of ``lanes`` codes, one group a cycle.

On ``load`` it copies the unit's result vector (``va``, and ``vb`` for Add) and then
emits group ``i`` (entries ``i*lanes .. i*lanes + lanes - 1``) in the ``i``-th following
cycle, for ``ng = nb / lanes`` cycles. Entry ``i`` of the ``g``-th tile of a pixel is output
channel ``co = g*nb + i``; it is valid only when ``co < cout`` (the last tile may be
partial), so a group's valid entries are a prefix (``mask``). For every group with a
valid entry the serializer also produces the channel ROM word ``gch = ch_base + co //
lanes`` (the ROM holds ``lanes`` channels a word) and the destination in the activation
RAM: word ``out_base + pixel*och + (coff+co)//simd``, lanes ``(coff+co) % simd`` onward
(``lane``); the group never crosses a word because ``lanes`` divides ``simd``, ``nb``
and ``coff`` (the scheduler checks). Addresses are counted incrementally in output
order, so there is no multiplier and no divider.

With ``dw`` (a depthwise step's row loads, :mod:`hwflow.rtl.dw_array`) every load is one
output pixel's ``simd`` channels of one chunk (``nb = simd = lanes``) and arrives in the
sweep's order: per chunk, per group of ``rows`` output rows, per output column, per row.
The word address then follows that order: ``out_base + chunk + ((oy0 + r)*ow + ox)*och``.

Latency: group ``i`` appears ``i + 1`` cycles after ``load``.

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
    entries : int
        Entries per load (``max(pe, simd)``).
    simd : int
        Lanes of an activation-RAM word.
    lanes : int
        Entries per output group (a power of two dividing ``simd``).
    acc_bits : int
        Signed entry width.
    addr_bits, ch_bits : int
        Widths of activation-RAM word addresses and of channel ROM word indices.
    max_cout : int
        Largest channel count of a layer.
    with_b : bool
        Carry a second operand (Add).
    dw_rows : int
        Rows of a depthwise sweep group (0: no depthwise steps, no ``dw`` logic).
    dw_bits : int
        Width of the depthwise counters (output columns, row groups).
    """

    def __init__(self, entries: int, simd: int, lanes: int, acc_bits: int, addr_bits: int, ch_bits: int,
                 max_cout: int, with_b: bool = False, dw_rows: int = 0, dw_bits: int = 1):
        for name, v in (("entries", entries), ("simd", simd), ("lanes", lanes), ("acc_bits", acc_bits),
                        ("addr_bits", addr_bits), ("ch_bits", ch_bits), ("max_cout", max_cout),
                        ("dw_bits", dw_bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if lanes & (lanes - 1) or simd % lanes or entries % lanes:
            raise ValueError(f"lanes must be a power of two dividing simd {simd!r} and entries {entries!r}, "
                             f"not {lanes!r}")
        if dw_rows and lanes != simd:
            raise ValueError(f"depthwise loads need lanes == simd, not {lanes!r} != {simd!r}")
        self._entries, self._simd, self._lanes = entries, simd, lanes
        self._with_b, self._acc_bits = bool(with_b), acc_bits
        self._co_bits = count_bits(max_cout, entries)
        self._dw_rows, self._dw_bits = dw_rows, dw_bits
        lane_w = lane_bits(simd)
        super().__init__({
            "init": In(1),
            "load": In(1),
            "va": In(entries * acc_bits),
            "vb": In(entries * acc_bits),
            "ng": In(ubits(entries // lanes)),
            "nt": In(self._co_bits),
            "cout": In(self._co_bits),
            "ch_base": In(ch_bits),
            "out_base": In(addr_bits),
            "och": In(addr_bits),
            "coff_chunk": In(addr_bits),
            "coff_lane": In(lane_w),
            "dw": In(1),
            "dw_rows": In(ubits(max(dw_rows, 1))),
            "dw_last_rows": In(ubits(max(dw_rows, 1))),
            "dw_ow": In(dw_bits),
            "dw_groups": In(dw_bits),
            "dw_row_step": In(addr_bits),
            "dw_grp_step": In(addr_bits),
            "valid": Out(1),
            "mask": Out(lanes),
            "a": Out(lanes * acc_bits),
            "b": Out(lanes * acc_bits),
            "gch": Out(ch_bits),
            "waddr": Out(addr_bits),
            "lane": Out(lane_w),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``load`` to the first group."""
        return 1

    def elaborate(self, platform):
        m = Module()
        n, L = self._entries, self._lanes
        ab = self._acc_bits
        shift = (L - 1).bit_length()  # log2(lanes)
        # One wide shift register per operand: entry 0 in the low bits.
        sr_a = Signal(n * ab, reset_less=True)
        sr_b = Signal(n * ab, reset_less=True)
        cnt = Signal(range(n // L + 1))
        co = Signal(self._co_bits)
        tile_co = Signal(self._co_bits)
        tcount = Signal(self._co_bits)
        pix_base = Signal.like(self.waddr)
        wa = Signal.like(self.waddr)
        lane = Signal.like(self.lane)
        dco = Signal(self._co_bits)  # depthwise: the current chunk's first channel

        # nt - 1 registered (a layer constant, settled long before the first load): no
        # subtractor in front of the compare.
        nt_m1 = Signal.like(self.nt)
        m.d.sync += nt_m1.eq(self.nt - 1)
        # ``live`` (a group goes out) and ``row_end`` (it is a pixel's last) are registers, from
        # the counters' next values (``*_nx``): no compare between them and the address. The
        # ports hold from a layer's first load to its last group, so ``cout`` now is ``cout``
        # then.
        cnt_nx, co_nx = Signal.like(cnt), Signal.like(co)
        live, row_end = Signal(), Signal()
        m.d.sync += [cnt.eq(cnt_nx), co.eq(co_nx), live.eq((cnt_nx != 0) & (co_nx < self.cout)),
                     row_end.eq(Cat(co_nx, C(0, 1)).as_signed() >= self.cout - L)]
        m.d.comb += [
            self.valid.eq(live),
            self.mask.eq(Cat(*((cnt != 0) & (co + i < self.cout) for i in range(L)))),
            self.a.eq(sr_a[:L * ab]),
            self.gch.eq(self.ch_base + (co >> shift)),
            self.waddr.eq(wa),
            self.lane.eq(lane),
        ]
        if self._with_b:
            m.d.comb += self.b.eq(sr_b[:L * ab])

        # Tile counters as this load sees them: zero for a layer's first load.
        tco = Mux(self.init, 0, tile_co)
        tcn = Mux(self.init, 0, tcount)
        m.d.comb += [cnt_nx.eq(cnt), co_nx.eq(co)]
        with m.If(self.load):
            m.d.sync += sr_a.eq(self.va)
            if self._with_b:
                m.d.sync += sr_b.eq(self.vb)
            m.d.comb += [cnt_nx.eq(self.ng), co_nx.eq(Mux(self.dw, Mux(self.init, 0, dco), tco) if self._dw_rows else tco)]
            # (nt_m1 is a cycle behind the ports: a layer's first load compares nt itself.)
            with m.If(Mux(self.init, self.nt == 1, tcount == nt_m1)):
                m.d.sync += [tcount.eq(0), tile_co.eq(0)]
            with m.Else():
                m.d.sync += [tcount.eq(tcn + 1), tile_co.eq(tco + (self.ng << shift))]
        with m.Elif(self.init):
            m.d.sync += [tile_co.eq(0), tcount.eq(0)]
            m.d.comb += cnt_nx.eq(0)
        with m.Elif(cnt != 0):
            m.d.comb += [cnt_nx.eq(cnt - 1), co_nx.eq(co + L)]
            m.d.sync += sr_a.eq(sr_a >> (L * ab))
            if self._with_b:
                m.d.sync += sr_b.eq(sr_b >> (L * ab))

        if self._dw_rows:
            self._dw_addresses(m, live, pix_base, wa, dco)
            normal = ~self.dw
        else:
            normal = C(1)
        # Output address: advances once per valid group, in output order.
        with m.If(live & normal):
            with m.If(row_end):
                m.d.sync += [pix_base.eq(pix_base + self.och), wa.eq(pix_base + self.och),
                             lane.eq(self.coff_lane)]
            with m.Elif(lane == self._simd - L):
                m.d.sync += [lane.eq(0), wa.eq(wa + 1)]
            with m.Else():
                m.d.sync += lane.eq(lane + L)
        with m.If(self.init):
            start = self.out_base + self.coff_chunk
            m.d.sync += [pix_base.eq(start), wa.eq(start), lane.eq(self.coff_lane)]
        return m

    def _dw_addresses(self, m, live, col_base, wa, dco):
        """Depthwise order: per chunk, row group, output column, row (see the module docstring).

        ``col_base`` holds the address of row 0 of the current output column; ``wa`` steps
        ``dw_row_step = ow*och`` words per row. After a group's last column the next
        group's first column is ``dw_grp_step = rows*ow*och`` words on from the group's;
        after the last group, the next chunk's first pixel is one word on from the chunk's.
        A chunk change never falls between two consecutive loads (a pass is longer), so the
        next load reads the updated ``dco``.
        """
        w = self._dw_bits
        rows = ubits(max(self._dw_rows, 1))
        r, ox, grp = Signal(rows), Signal(w), Signal(w)
        chunk_base, grp_base = Signal.like(wa), Signal.like(wa)
        last_grp = grp == self.dw_groups - 1
        nrows = Mux(last_grp, self.dw_last_rows, self.dw_rows)
        with m.If(live & self.dw):
            with m.If(r != nrows - 1):
                m.d.sync += [r.eq(r + 1), wa.eq(wa + self.dw_row_step)]
            with m.Elif(ox != self.dw_ow - 1):
                m.d.sync += [r.eq(0), ox.eq(ox + 1), col_base.eq(col_base + self.och),
                             wa.eq(col_base + self.och)]
            with m.Elif(~last_grp):
                # Next group: ``rows`` rows down from the group's first pixel.
                nxt = grp_base + self.dw_grp_step
                m.d.sync += [r.eq(0), ox.eq(0), grp.eq(grp + 1), grp_base.eq(nxt), col_base.eq(nxt),
                             wa.eq(nxt)]
            with m.Else():
                nxt = chunk_base + 1
                m.d.sync += [r.eq(0), ox.eq(0), grp.eq(0), chunk_base.eq(nxt), grp_base.eq(nxt),
                             col_base.eq(nxt), wa.eq(nxt), dco.eq(dco + self._simd)]
        with m.If(self.init):
            m.d.sync += [r.eq(0), ox.eq(0), grp.eq(0), chunk_base.eq(self.out_base), grp_base.eq(self.out_base),
                         dco.eq(0)]
