"""Argmax unit: the index of the first largest code among those written, one register stage.

It watches the back end's writes of the network's last layer (``valid``, the code ``q``
and its flat index ``idx``) and keeps the best so far: a code replaces it when it is
larger, or equal with a smaller index, so the result is the first maximum (ONNX ArgMax,
``numpy.argmax``) whatever order the writes come in. ``clear`` (the last layer's first
result arriving) forgets the previous inference. ``index`` is valid one cycle after the
last write (:attr:`latency`), before the output stream can read it.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ArgmaxUnit"]


class ArgmaxUnit(wiring.Component):
    """Running argmax over a stream of (code, index) pairs.

    Parameters
    ----------
    code_bits : int
        Signed width of the codes.
    index_bits : int
        Unsigned width of the indices.
    """

    def __init__(self, code_bits: int, index_bits: int):
        for name, v in (("code_bits", code_bits), ("index_bits", index_bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        self._code_bits, self._index_bits = code_bits, index_bits
        super().__init__({
            "clear": In(1),
            "valid": In(1),
            "q": In(signed(code_bits)),
            "idx": In(index_bits),
            "index": Out(index_bits),
        })

    @property
    def latency(self) -> int:
        """Cycles from a write to ``index`` counting it: 1."""
        return 1

    def elaborate(self, platform):
        m = Module()
        best = Signal(signed(self._code_bits))
        have = Signal()
        better = ~have | (self.q > best) | ((self.q == best) & (self.idx < self.index))
        with m.If(self.clear):
            m.d.sync += have.eq(0)
        with m.Elif(self.valid & better):
            m.d.sync += [best.eq(self.q), self.index.eq(self.idx), have.eq(1)]
        return m
