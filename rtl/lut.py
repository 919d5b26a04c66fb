"""Lookup-table activation: ``q_out = lut[base + q - lo]`` (Tanh, Sigmoid, LeakyReLU).

One ROM holds the tables of every layer back to back (``base`` selects the layer's).
When ``en`` is low the code passes through unchanged, with the same latency, so the
post-processing pipeline has one fixed length. Latency 1 (a synchronous ROM read,
mapped to block RAM).
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..quant.arith import int_range
from ..schedule.estimate import memory_style
from ..schedule.widths import addr_bits

__all__ = ["Lut"]


class Lut(wiring.Component):
    """Lookup-table activation with bypass.

    Parameters
    ----------
    table : sequence of int
        Concatenated tables (signed codes of ``bits``).
    bits : int
        Signed code width.
    tag_bits : int
        Side-band width carried along.
    """

    def __init__(self, table, bits: int, tag_bits: int = 1):
        table = [int(v) for v in table] or [0]
        lo, hi = int_range(bits)
        bad = [v for v in table if not lo <= v <= hi]
        if bad:
            raise ValueError(f"LUT entry {bad[0]!r} does not fit signed {bits} bits")
        self._table, self._bits = table, bits
        self._abits = addr_bits(len(table))
        super().__init__({
            "valid": In(1),
            "q": In(signed(bits)),
            "en": In(1),
            "base": In(self._abits),
            "lo": In(signed(bits)),
            "tag": In(tag_bits),
            "out_valid": Out(1),
            "out_q": Out(signed(bits)),
            "out_tag": Out(tag_bits),
        })

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=signed(self._bits), depth=len(self._table),
                                               init=self._table,
                                               attrs={"ram_style": memory_style(len(self._table), self._bits)})
        rd = rom.read_port()
        idx = Signal(signed(self._bits + 2))
        m.d.comb += [idx.eq(self.q - self.lo), rd.addr.eq(self.base + idx.as_unsigned()[:self._abits])]
        q1, en1 = Signal.like(self.q), Signal()
        m.d.sync += [q1.eq(self.q), en1.eq(self.en), self.out_valid.eq(self.valid), self.out_tag.eq(self.tag)]
        m.d.comb += self.out_q.eq(Mux(en1, rd.data, q1))
        return m
