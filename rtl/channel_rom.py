"""Per-channel ROM: ``(bias, m, n)`` of every output channel of every layer.

Indexed by the word ``(layer.ch_base + channel) // lanes`` that the serializer produces;
one word holds ``lanes`` consecutive channels (each: bias, unsigned multiplier, signed
shift, packed; channel ``lanes*i + l`` in element ``l`` of word ``i``), so the back end
reads the parameters of a whole group of codes at once. Synchronous read (block RAM when
large), then a data register: the read's own path (a block RAM's clock-to-out and the
multiplexer of its blocks, or the decoder of a ROM in LUTs) ends at a register, not in the
bias add behind it. Latency 2.
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
        Equal-length per-channel values (a multiple of ``lanes``).
    bias_bits, mbits, nbits : int
        Signed bias width, unsigned multiplier width, signed shift width.
    lanes : int
        Channels a word.
    """

    def __init__(self, bias, m, n, bias_bits: int, mbits: int, nbits: int, lanes: int = 1):
        bias, m, n = (np.asarray(v, dtype=np.int64).reshape(-1) for v in (bias, m, n))
        if not bias.shape == m.shape == n.shape:
            raise ValueError(f"bias, m, n lengths differ: {bias.shape!r}, {m.shape!r}, {n.shape!r}")
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or bias.shape[0] % lanes:
            raise ValueError(f"lanes must be a positive integer dividing the {bias.shape[0]} channels, not {lanes!r}")
        self._entry = data.StructLayout({"bias": signed(bias_bits), "m": unsigned(mbits), "n": signed(nbits)})
        self._layout = data.ArrayLayout(self._entry, lanes)
        chans = [{"bias": int(b), "m": int(mm), "n": int(nn)} for b, mm, nn in zip(bias, m, n)]
        self._init = [chans[i:i + lanes] for i in range(0, len(chans), lanes)]
        aw = addr_bits(len(self._init))
        super().__init__({"addr": In(aw), "data": Out(self._layout)})

    @property
    def latency(self) -> int:
        return 2

    def elaborate(self, platform):
        m = Module()
        style = memory_style(len(self._init), self._layout.size)
        m.submodules.mem = mem = memory.Memory(shape=self._layout, depth=len(self._init), init=self._init,
                                               attrs={"ram_style": style})
        rd = mem.read_port()
        q = Signal(self._layout.size, reset_less=True)
        m.d.sync += q.eq(rd.data)
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(q)]
        return m
