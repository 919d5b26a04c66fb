"""SIMD-lane pooling / element-wise unit: max, sum, and the two operands of Add.

Per lane, one input word per cycle:

- ``kind`` 1 (max): ``a = x`` on ``first`` else ``max(a, x)``;
- ``kind`` 2 (sum): ``a = x`` on ``first`` else ``a + x``;
- ``kind`` 3 (add): ``a = x - za`` when ``sel`` is 0, ``b = x - zb`` when ``sel`` is 1
  (the requantizer's pre-stage forms ``a*ma + b*mb``).

Spatial padding has already been replaced by the pad value upstream. ``out_valid`` is
high, :attr:`latency` cycles after the ``last`` input, while ``a``/``b`` hold the result.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..schedule.descriptor import KIND_CODES
from ._lanes import lane

__all__ = ["PoolUnit", "KIND_MAX", "KIND_SUM", "KIND_ADD"]

#: The ``kind`` codes: the descriptor's.
KIND_MAX, KIND_SUM, KIND_ADD = KIND_CODES["max"], KIND_CODES["sum"], KIND_CODES["add"]


class PoolUnit(wiring.Component):
    """Lane-wise max / sum / subtract-zero-point over ``simd`` lanes.

    ``x`` is a packed vector of ``simd`` lanes of ``abits``; ``a``/``b`` of ``acc_bits``.

    Parameters
    ----------
    simd : int
    abits : int
        Signed input lane width.
    acc_bits : int
        Signed result width (holds ``kh*kw`` sums and ``x - z``).
    with_add : bool
        Build the second operand register ``b`` (only needed when the program has Add).
    """

    def __init__(self, simd: int, abits: int, acc_bits: int, with_add: bool = True):
        for name, v in (("simd", simd), ("abits", abits), ("acc_bits", acc_bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if acc_bits < abits + 1:
            raise ValueError(f"acc_bits {acc_bits!r} must exceed abits {abits!r}")
        self._simd, self._abits, self._acc_bits, self._with_add = simd, abits, acc_bits, bool(with_add)
        super().__init__({
            "x": In(simd * abits),
            "kind": In(2),
            "za": In(signed(abits + 1)),
            "zb": In(signed(abits + 1)),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "sel": In(1),
            "a": Out(simd * acc_bits),
            "b": Out(simd * acc_bits),
            "out_valid": Out(1),
            "next_valid": Out(1),  # out_valid of the next cycle (unless the core stalls)
        })

    @property
    def latency(self) -> int:
        """Cycles from the last input to the result: the input register, the lane op."""
        return 2

    def elaborate(self, platform):
        m = Module()
        # Every input is registered first: ``x`` comes from the activation RAM's bank
        # multiplexer (or the stream), and a lane op after it in the same cycle was the
        # critical path (ResNet-8 fpga-medium: act.ram.sel_q -> bank mux -> adder, 11.0 ns).
        x_r = Signal.like(self.x, reset_less=True)
        kind, za, zb = Signal.like(self.kind), Signal.like(self.za), Signal.like(self.zb)
        valid, first, last, sel = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [x_r.eq(self.x), kind.eq(self.kind), za.eq(self.za), zb.eq(self.zb),
                     valid.eq(self.valid), first.eq(self.first), last.eq(self.last), sel.eq(self.sel)]
        As = [Signal(signed(self._acc_bits), name=f"a{s}", reset_less=True) for s in range(self._simd)]
        Bs = [Signal(signed(self._acc_bits), name=f"b{s}", reset_less=True) for s in range(self._simd)]
        m.d.comb += self.a.eq(Cat(*As))
        if self._with_add:
            m.d.comb += self.b.eq(Cat(*Bs))
        for s in range(self._simd):
            x, a, b = lane(x_r, s, self._abits), As[s], Bs[s]
            with m.If(valid):
                with m.Switch(kind):
                    with m.Case(KIND_MAX):
                        with m.If(first | (x > a)):
                            m.d.sync += a.eq(x)
                    with m.Case(KIND_SUM):
                        m.d.sync += a.eq(Mux(first, x, a + x))
                    if self._with_add:
                        with m.Case(KIND_ADD):
                            with m.If(sel):
                                m.d.sync += b.eq(x - zb)
                            with m.Else():
                                m.d.sync += a.eq(x - za)
        m.d.comb += self.next_valid.eq(valid & last)
        m.d.sync += self.out_valid.eq(self.next_valid)
        return m
