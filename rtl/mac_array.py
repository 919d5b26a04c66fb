"""PE x SIMD signed multiply-accumulate array.

Each of the ``pe`` rows multiplies ``simd`` activations by its own ``simd`` weights,
sums the products in a registered adder tree and accumulates the sum:

- stage 1: input registers for ``a`` and ``w`` (both come straight from block RAM, whose
  clock-to-out is slow: the multiplier gets a full cycle; Yosys can absorb them into DSPs);
- stage 2: products ``a[s] * w[p][s]`` (registered: maps to DSPs / pipelined LUT multipliers);
- ``ceil(log2(simd))`` stages: one registered adder-tree level each;
- last stage: ``acc[p] = sum`` when ``first`` else ``acc[p] + sum`` (only when ``valid``).

``out_valid`` is high in the cycle ``acc`` holds a finished dot product (the input
that carried ``last`` went in :attr:`latency` cycles earlier). ``acc`` keeps its value
until the next ``valid`` input reaches the accumulator, so a reader has one cycle.
"""

from __future__ import annotations

import math

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._lanes import lane

__all__ = ["MacArray"]


def _check(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")
    return v


class MacArray(wiring.Component):
    """A ``pe`` x ``simd`` MAC array.

    Ports are packed vectors (see :mod:`._lanes`): ``a`` has ``simd`` lanes of ``abits``,
    ``w`` has ``pe*simd`` lanes of ``wbits`` (row ``p`` lane ``s`` at index ``p*simd + s``),
    ``acc`` has ``pe`` lanes of ``acc_bits``.

    Parameters
    ----------
    pe, simd : int
        Output channels and inputs per cycle.
    wbits, abits : int
        Signed weight and activation widths.
    acc_bits : int
        Signed accumulator width (from the worst case the schedule computed).
    """

    def __init__(self, pe: int, simd: int, wbits: int, abits: int, acc_bits: int):
        self._pe = _check("pe", pe)
        self._simd = _check("simd", simd)
        self._wbits = _check("wbits", wbits, 2)
        self._abits = _check("abits", abits, 2)
        self._acc_bits = _check("acc_bits", acc_bits, 2)
        super().__init__({
            "a": In(simd * abits),
            "w": In(pe * simd * wbits),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "acc": Out(pe * acc_bits),
            "out_valid": Out(1),
        })

    pe = property(lambda self: self._pe)
    simd = property(lambda self: self._simd)
    levels = property(lambda self: math.ceil(math.log2(self._simd)) if self._simd > 1 else 0)

    @property
    def latency(self) -> int:
        """Cycles from an input to ``acc`` including it (input register, multiplier, tree levels, accumulator)."""
        return 3 + self.levels

    def elaborate(self, platform):
        m = Module()
        pw = self._wbits + self._abits
        # Control flags travel beside the data, one register per stage.
        flags0, flags = Signal(3), Signal(3)
        a_r = Signal.like(self.a, reset_less=True)
        w_r = Signal.like(self.w, reset_less=True)
        m.d.sync += [flags0.eq(Cat(self.valid, self.first, self.last)), flags.eq(flags0),
                     a_r.eq(self.a), w_r.eq(self.w)]
        # Datapath registers need no reset (``first`` restarts the accumulator), and each
        # row's values are packed into one register per stage, which keeps the Verilog short.
        rows, width = [], pw
        for p in range(self._pe):
            r = Signal(pw * self._simd, name=f"prod_{p}", reset_less=True)
            a = [lane(a_r, s, self._abits) for s in range(self._simd)]
            w = [lane(w_r, p * self._simd + s, self._wbits) for s in range(self._simd)]
            m.d.sync += r.eq(Cat(*(a[s] * w[s] for s in range(self._simd))))
            rows.append(r)
        n = self._simd
        for lv in range(self.levels):
            nf = Signal(3, name=f"flags_l{lv}")
            m.d.sync += nf.eq(flags)
            flags = nf
            nn = (n + 1) // 2
            for p in range(self._pe):
                prev = [rows[p].word_select(i, width).as_signed() for i in range(n)]
                if n % 2:
                    # The odd one out is sign-extended to the level's width.
                    odd = Signal(signed(width + 1), name=f"odd_{p}_l{lv}")
                    m.d.comb += odd.eq(prev[-1])
                    prev[-1] = odd
                r = Signal((width + 1) * nn, name=f"sum_{p}_l{lv}", reset_less=True)
                m.d.sync += r.eq(Cat(*((prev[i] + prev[i + 1]) if i + 1 < n else prev[i]
                                       for i in range(0, n, 2))))
                rows[p] = r
            n, width = nn, width + 1
        valid, first, last = flags[0], flags[1], flags[2]
        accs = [Signal(signed(self._acc_bits), name=f"acc_{p}", reset_less=True) for p in range(self._pe)]
        for p, acc in enumerate(accs):
            with m.If(valid):
                m.d.sync += acc.eq(Mux(first, 0, acc) + rows[p][:width].as_signed())
        m.d.comb += self.acc.eq(Cat(*accs))
        m.d.sync += self.out_valid.eq(valid & last)
        return m
