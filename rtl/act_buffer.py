"""Activation RAM: simple dual port (one synchronous read port, one write port).

A word holds ``simd`` signed lanes of ``bits``; the write port has one enable per lane
(granularity ``bits``), so a single code can be written into its channel lane. Tensors
live in HWC order with channels padded to a multiple of ``simd`` (see
:mod:`hwflow.schedule.memory`). The read port has an enable: when it is low the data
output holds, which the output stream uses for back-pressure. Latency 1.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..schedule.estimate import memory_style
from ..schedule.widths import addr_bits

__all__ = ["ActBuffer"]


class ActBuffer(wiring.Component):
    """``depth`` words of ``simd`` x ``bits``.

    Parameters
    ----------
    depth, simd, bits : int
    """

    def __init__(self, depth: int, simd: int, bits: int):
        for name, v in (("depth", depth), ("simd", simd), ("bits", bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self._depth, self._simd, self._bits = depth, simd, bits
        aw = addr_bits(depth)
        word = simd * bits  # packed lanes, lane 0 lowest
        super().__init__({
            "rd_addr": In(aw),
            "rd_en": In(1),
            "rd_data": Out(word),
            "wr_addr": In(aw),
            "wr_en": In(simd),
            "wr_data": In(word),
        })

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        width = self._simd * self._bits
        m.submodules.mem = mem = memory.Memory(shape=unsigned(width), depth=self._depth, init=[],
                                               attrs={"ram_style": memory_style(self._depth, width, rom=False)})
        rd = mem.read_port()
        wr = mem.write_port(granularity=self._bits)
        m.d.comb += [
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data),
            wr.addr.eq(self.wr_addr), wr.en.eq(self.wr_en), wr.data.eq(self.wr_data),
        ]
        return m
