"""Requantizer: ``q = clamp(rshift_round(v * m, n) + z, lo, hi)``, pipelined.

Two variants, chosen by ``mbits``:

- power-of-2 (``mbits == 1``, every ``m`` is 1): a shifter only, no multiplier;
- symmetric/asymmetric (``mbits > 1``): an unsigned ``mbits`` multiplier, then the shift.

The rounding shift uses ``rshift_round(v, n) = ((v >> (n-1)) + 1) >> 1`` for ``n >= 1`` and
``((v << (1-n)) + 1) >> 1 = v << -n`` for ``n <= 0``, which is exactly
``(v + 2**(n-1)) >> n`` (floor shifts), so one barrel shifter serves both directions.

``rounding="half_even"`` rounds a tie to the even result (``rshift_round_even``): with
``t = v >> (n-1)``, the value is a tie when ``t`` is odd and the ``n - 1`` bits shifted out
are zero (a sticky bit, from a mask decoded beside the shifter); then ``(t + 1) >> 1`` is
replaced by ``t >> 1`` when that is even, i.e. the carry-in ``1`` becomes ``~t[1]``-gated:
``(t + 1 - (tie & ~t[1])) >> 1``. Same latency; with ``"half_up"`` (the default) none of
it is built.

Stages: [partial products -> their sum] -> coarse shift -> fine shift -> round and add zero
point -> clamp decisions -> clamp select. The
multiply is split into partial products of at most ``PIECE``-bit unsigned (the top piece of
``v`` signed) operands, each one DSP, registered before their sum: a wide product would
otherwise add the DSPs' outputs in fabric in the DSPs' own cycle (the slowest path of a
design). A ``tag`` (the write address) travels alongside. Latency: :attr:`latency` cycles
from ``valid`` in to ``valid`` out.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..schedule.program import RQ_FINE as FINE, RQ_PIECE as PIECE
from ..schedule.widths import shift_bits, shifter_widths

__all__ = ["Requantizer"]



def rsh_of(n):
    """The right shift ``n - 1`` (``n >= 1``), clamped at 0."""
    return Mux(n >= 1, n - 1, 0).as_unsigned()


class Requantizer(wiring.Component):
    """Pipelined requantizer.

    Parameters
    ----------
    in_bits : int
        Signed width of the accumulator value ``v``.
    mbits : int
        Unsigned multiplier width; 1 builds the shift-only (power-of-2) variant.
    n_min, n_max : int
        Range of the shift ``n`` (signed).
    out_bits : int
        Signed output width (``z``, ``lo``, ``hi``, ``q``).
    tag_bits : int
        Width of the side-band carried with each value.
    rounding : {"half_up", "half_even"}
        How a tie rounds.
    """

    def __init__(self, in_bits: int, mbits: int, n_min: int, n_max: int, out_bits: int, tag_bits: int = 1,
                 rounding: str = "half_up"):
        for name, v in (("in_bits", in_bits), ("mbits", mbits), ("out_bits", out_bits), ("tag_bits", tag_bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if n_min > n_max:
            raise ValueError(f"n_min {n_min!r} > n_max {n_max!r}")
        if rounding not in ("half_up", "half_even"):
            raise ValueError(f"rounding must be 'half_up' or 'half_even', not {rounding!r}")
        self._rounding = rounding
        self._in_bits, self._mbits, self._out_bits = in_bits, mbits, out_bits
        self._n_min, self._n_max = min(n_min, 0), max(n_max, 1)
        nbits = shift_bits(n_min, n_max)
        super().__init__({
            "valid": In(1),
            "v": In(signed(in_bits)),
            "m": In(unsigned(mbits)),
            "n": In(signed(nbits)),
            "z": In(signed(out_bits)),
            "lo": In(signed(out_bits)),
            "hi": In(signed(out_bits)),
            "tag": In(tag_bits),
            "out_valid": Out(1),
            "q": Out(signed(out_bits)),
            "out_tag": Out(tag_bits),
        })

    @property
    def rounding(self) -> str:
        return self._rounding

    @property
    def has_multiplier(self) -> bool:
        return self._mbits > 1

    @property
    def latency(self) -> int:
        """Cycles from input to output: 7 with the multiplier (partial products, their sum),
        5 without."""
        return 7 if self.has_multiplier else 5

    def elaborate(self, platform):
        m = Module()
        valid, tag, n = self.valid, self.tag, self.n
        # Shift stage: t = v >> (n-1) for n >= 1, v << (1-n) for n <= 0. With a multiplier,
        # the shift amounts are decoded beside it (registered: off the shifter's path).
        pw, lw, tw = shifter_widths(self._in_bits, self._mbits, self._n_min)
        lsh = Signal(lw)
        rsh = Signal(range(self._n_max))
        right = Signal()
        decode = [lsh.eq(Mux(n <= 0, 1 - n, 0)), rsh.eq(Mux(n >= 1, n - 1, 0)), right.eq(n >= 1)]
        if self.has_multiplier:
            # v = sum v_i 2**(PIECE*i) (unsigned pieces, the top one signed), likewise m
            # (unsigned): every partial product is one DSP, registered; then their sum.
            vs = [(o, self.v[o:o + PIECE] if o + PIECE < self._in_bits else self.v[o:].as_signed())
                  for o in range(0, self._in_bits, PIECE)]
            ms = [(o, self.m[o:o + PIECE]) for o in range(0, self._mbits, PIECE)]
            parts = []
            for i, (ov, pv) in enumerate(vs):
                for j, (om, pm) in enumerate(ms):
                    pp = Signal(signed(len(pv) + len(pm) + 1), name=f"pp_{i}_{j}")
                    m.d.sync += pp.eq(pv * pm)
                    parts.append((ov + om, pp))
            prod = Signal(signed(pw))
            v0, t0, v1, t1 = Signal(), Signal.like(tag), Signal(), Signal.like(tag)
            n0 = Signal.like(n)
            m.d.sync += [prod.eq(sum(pp << o for o, pp in parts)), v0.eq(valid), t0.eq(tag), n0.eq(n),
                         v1.eq(v0), t1.eq(t0)]
            n = n0
            decode = [lsh.eq(Mux(n <= 0, 1 - n, 0)), rsh.eq(Mux(n >= 1, n - 1, 0)), right.eq(n >= 1)]
            m.d.sync += decode
            valid, tag = v1, t1
        else:
            prod = self.v
            m.d.comb += decode
        # The shift in two stages, the amount's high bits (a multiple of 2**FINE) then its low
        # bits: a barrel shifter of a few levels a cycle (floor shifts compose exactly).
        coarse, shifted = Signal(signed(tw)), Signal(signed(tw))
        lo = (1 << FINE) - 1
        rl, ll, right_c = Signal(FINE), Signal(FINE), Signal()
        vc, tc = Signal(), Signal.like(tag)
        with m.If(right):
            m.d.sync += coarse.eq(prod >> ((rsh >> FINE) << FINE))
        with m.Else():
            m.d.sync += coarse.eq(prod << ((lsh >> FINE) << FINE))
        m.d.sync += [rl.eq(rsh & lo), ll.eq(lsh & lo), right_c.eq(right), vc.eq(valid), tc.eq(tag)]
        v2, t2 = Signal(), Signal.like(tag)
        with m.If(right_c):
            m.d.sync += shifted.eq(coarse >> rl)
        with m.Else():
            m.d.sync += shifted.eq(coarse << ll)
        m.d.sync += [v2.eq(vc), t2.eq(tc)]
        # Round and add the zero point in one carry chain: ((s + 1) >> 1) + z == (s + 2z + 1) >> 1,
        # and 2z + 1 is just wiring. Then clamp (a separate stage: another carry chain).
        carry = C(1, 1)
        if self._rounding == "half_even":
            # sticky: the bits below the half bit are zero; the mask (2**(n-1) - 1) is decoded
            # from the shift amount beside the multiplier (or combinationally without one)
            mask = Signal(pw, name="sticky_mask")
            decode_mask = mask.eq(Mux(n >= 2, (C(1, pw) << rsh_of(n)) - 1, 0))
            if self.has_multiplier:
                m.d.sync += decode_mask
            else:
                m.d.comb += decode_mask
            exact_c, exact = Signal(), Signal()
            m.d.sync += [exact_c.eq((prod & mask) == 0), exact.eq(exact_c)]
            carry = ~(exact & shifted[0] & ~shifted[1])  # a tie with an even floor: no carry
        r = Signal(signed(tw + 1))
        v3, t3 = Signal(), Signal.like(tag)
        m.d.sync += [r.eq((shifted + Cat(carry, self.z).as_signed()) >> 1), v3.eq(v2), t3.eq(t2)]
        v2, t2 = v3, t3
        # Clamp with short carry chains: an r outside out_bits is outside [lo, hi] (both fit
        # out_bits), so it saturates on its sign; otherwise compare out_bits wide. Two
        # stages: the decisions are registered, then select (one path on the UP5K was the
        # saturation test, the compares and the select: 7 LUT levels).
        ob = self._out_bits
        top = r[ob - 1:]
        fits = (top == 0) | (top == (1 << len(top)) - 1)
        low = r[:ob].as_signed()
        to_lo, to_hi, low_r = Signal(), Signal(), Signal(signed(ob))
        v4, t4 = Signal(), Signal.like(tag)
        m.d.sync += [to_lo.eq(Mux(fits, low < self.lo, r[-1])), to_hi.eq(Mux(fits, low > self.hi, ~r[-1])),
                     low_r.eq(low), v4.eq(v2), t4.eq(t2)]
        m.d.sync += self.q.eq(Mux(to_lo, self.lo, Mux(to_hi, self.hi, low_r)))
        m.d.sync += [self.out_valid.eq(v4), self.out_tag.eq(t4)]
        return m
