"""XNOR-popcount unit: ``rows x simd`` binary MACs a cycle for binary-weight x bipolar-input layers.

A layer whose weights are binary (``±1``) and whose input is bipolar (codes ``-1``/``+1``,
:mod:`hwflow.quant.qgraph`) needs no multiplier: with ``s`` the sign bit of a code (1 for
``-1``) and ``v`` the sign bit of a weight, the product is ``+1`` exactly when ``s == v``, so
a word of ``simd`` products sums to ``simd - 2*popcount(s ^ v)``. This unit is the MAC
array's binary counterpart (an ``xnor`` step, :class:`~hwflow.schedule.program.LayerProgram`):
the same loop nest, one activation word (``simd`` lanes of the activation RAM, whose sign
bits it takes) and one word of its own weight ROM a cycle, but ``rows`` output channels at
once, each weight one bit (``w``: row ``r``'s signs in bits ``[r*simd, (r+1)*simd)``), so a
wide ROM word feeds ``rows * simd`` binary MACs a cycle.

Stages (every one a register; :attr:`XnorArray.latency` from the ports to ``acc``):

- input registers: the word's ``simd`` sign bits, the weight word, the step flags;
- per row, ``popcount(s ^ v)`` (``simd`` bits, an adder tree in LUTs), registered;
- accumulator: ``acc[r] = c`` on ``first``, else ``acc[r] + c``, with ``c = simd - 2*popcount``
  (only when ``valid``);
- output buffer: the cycle after a tile's last accumulation (``acc`` holds its ``rows`` dot
  products, ``done``) they move to ``obuf``, which hands them to the back end ``entries`` at a
  time, one chunk every ``gap`` cycles from the next cycle (``out_valid``, ``out``: rows
  ``c*entries ..`` of chunk ``c``): the serializer takes one result vector of ``entries``
  every ``gap = entries / lanes`` cycles, and the tile's ``rows / entries`` chunks leave
  within ``rows / lanes`` cycles, before the next tile's results (a tile is at least that
  long, :func:`~hwflow.schedule.schedule._set_lanes`).

Every lane of every word read is a real input (the scheduler sends a layer here only when
its input channels fill the words): the result equals ``sum(q_in * w)`` of the integer
contract, exactly. The accumulators are ``acc_bits`` wide, signed (``bits_for_range(-ich,
ich)`` suffices).
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["XnorArray", "LATENCY"]

#: Cycles from the ports to a tile's first result chunk: input register, popcount,
#: accumulator, output buffer.
LATENCY = 4


def popcount(v: Value) -> Value:
    """The number of set bits of ``v`` (a balanced adder tree)."""
    terms = [v[i] for i in range(len(v))]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0] if terms else C(0, 1)


class XnorArray(wiring.Component):
    """The XNOR-popcount unit.

    Parameters
    ----------
    rows, simd : int
        Output channels a cycle and input lanes a word.
    abits : int
        Width of an activation lane (the unit reads its sign bit).
    acc_bits : int
        Signed accumulator width.
    entries, gap : int
        Results a chunk (dividing ``rows``) and cycles between chunks.
    """

    def __init__(self, rows: int, simd: int, abits: int, acc_bits: int, entries: int | None = None, gap: int = 1):
        entries = rows if entries is None else entries
        for name, v in (("rows", rows), ("simd", simd), ("abits", abits), ("acc_bits", acc_bits),
                        ("entries", entries), ("gap", gap)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if acc_bits < (simd.bit_length() + 1):
            raise ValueError(f"acc_bits {acc_bits!r} cannot hold a word's sum of {simd!r} products")
        if rows % entries:
            raise ValueError(f"entries {entries!r} must divide rows {rows!r}")
        self._rows, self._simd, self._abits, self._acc_bits = rows, simd, abits, acc_bits
        self._entries, self._gap = entries, gap
        super().__init__({
            "a": In(simd * abits),     # the activation word (bipolar codes, signed lanes)
            "w": In(rows * simd),      # the weight signs (1: -1), row r in bits [r*simd, (r+1)*simd)
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "out": Out(entries * acc_bits),  # a chunk of results, row c*entries in the low bits
            "out_valid": Out(1),
            "next_valid": Out(1),  # out_valid of the next cycle (unless the core stalls)
        })

    @property
    def latency(self) -> int:
        return LATENCY

    def elaborate(self, platform):
        m = Module()
        R, S, ab = self._rows, self._simd, self._abits
        rl = dict(reset_less=True)
        signs = Signal(S, name="x_sign", **rl)
        w_r = Signal(R * S, name="x_w", **rl)
        f0, f1 = Signal(3, name="x_f0"), Signal(3, name="x_f1")
        m.d.sync += [signs.eq(Cat(*(self.a[(s + 1) * ab - 1] for s in range(S)))), w_r.eq(self.w),
                     f0.eq(Cat(self.valid, self.first, self.last)), f1.eq(f0)]
        pw = S.bit_length()
        pcs = Signal(R * pw, name="x_pc", **rl)
        m.d.sync += pcs.eq(Cat(*(popcount(signs ^ w_r[r * S:(r + 1) * S])[:pw] for r in range(R))))
        valid, first, last = f1[0], f1[1], f1[2]
        accs = [Signal(signed(self._acc_bits), name=f"x_acc_{r}", **rl) for r in range(R)]
        for r, acc in enumerate(accs):
            c = C(S, pw + 2).as_signed() - Cat(C(0, 1), pcs.word_select(r, pw), C(0, 1)).as_signed()
            with m.If(valid):
                m.d.sync += acc.eq(Mux(first, 0, acc) + c)
        done = Signal(name="x_done")
        m.d.sync += done.eq(valid & last)

        # ---- output buffer: ``entries`` results a chunk, a chunk every ``gap`` cycles ---------
        E, ch, xb = self._entries, R // self._entries, self._acc_bits
        obuf = Signal(R * xb, name="x_obuf", **rl)
        left = Signal(range(ch + 1), name="x_left")
        wait = Signal(range(self._gap), name="x_wait")
        go = (left != 0) & (wait == 0)
        with m.If(done):
            m.d.sync += [obuf.eq(Cat(*accs)), left.eq(ch), wait.eq(0)]
            m.d.comb += self.next_valid.eq(ch != 0)
        with m.Elif(go):
            m.d.sync += [obuf.eq(obuf >> (E * xb)), left.eq(left - 1), wait.eq(self._gap - 1)]
            m.d.comb += self.next_valid.eq((left != 1) if self._gap == 1 else 0)
        with m.Elif(wait != 0):
            m.d.sync += wait.eq(wait - 1)
            m.d.comb += self.next_valid.eq((left != 0) & (wait == 1))
        m.d.comb += [self.out_valid.eq(go), self.out.eq(obuf[:E * xb])]
        return m
