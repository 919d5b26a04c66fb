"""Per-channel ROM: ``(bias, m, n)`` of every output channel of every layer.

Indexed by the global channel index ``layer.ch_base + channel`` that the serializer
produces; one word per channel (bias, unsigned multiplier, signed shift, packed).
Synchronous read (block RAM when large). Latency 1.
"""

from __future__ import annotations

import numpy as np
from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..schedule.estimate import memory_style
from ..schedule.widths import addr_bits

__all__ = ["ChannelRom"]


class ChannelRom(wiring.Component):
    """Bias / multiplier / shift ROM.

    Parameters
    ----------
    bias, m, n : array-like of int
        Equal-length per-channel values.
    bias_bits, mbits, nbits : int
        Signed bias width, unsigned multiplier width, signed shift width.
    """

    def __init__(self, bias, m, n, bias_bits: int, mbits: int, nbits: int):
        bias, m, n = (np.asarray(v, dtype=np.int64).reshape(-1) for v in (bias, m, n))
        if not bias.shape == m.shape == n.shape:
            raise ValueError(f"bias, m, n lengths differ: {bias.shape!r}, {m.shape!r}, {n.shape!r}")
        self._layout = data.StructLayout({"bias": signed(bias_bits), "m": unsigned(mbits), "n": signed(nbits)})
        self._init = [{"bias": int(b), "m": int(mm), "n": int(nn)} for b, mm, nn in zip(bias, m, n)]
        aw = addr_bits(len(self._init))
        super().__init__({"addr": In(aw), "data": Out(self._layout)})

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        style = memory_style(len(self._init), self._layout.size)
        m.submodules.mem = mem = memory.Memory(shape=self._layout, depth=len(self._init), init=self._init,
                                               attrs={"ram_style": style})
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
        return m
