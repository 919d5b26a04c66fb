"""PE x SIMD signed multiply-accumulate array.

Each of the ``pe`` rows multiplies ``simd`` activations by its own ``simd`` weights,
sums the products in a registered adder tree and accumulates the sum:

- stage 1: input registers for ``a`` and ``w`` (both come straight from block RAM, whose
  clock-to-out is slow: the multiplier gets a full cycle);
- stages 2 and 3: products ``a[s] * w[p][s]`` (registered). Lane ``l = p*simd + s`` uses
  ``*`` (a hard multiplier, DSP) when ``l < dsp_mults``, else an explicit shift-add Yosys
  cannot turn into a ``$mul``: a part with few DSPs (ECP5-25F: 28) can then run a larger
  array, the other lanes paying in LUTs. Both are bit-exact and take the same two stages
  (DSP lanes: a second input register beside the DSP, then the product; LUT lanes: the
  first adder level, then the rest of the shift-add tree). On ECP5, ``hwflow synth`` moves a
  DSP lane's second input register and its product register into the MULT18X18D
  (:mod:`hwflow.synth.ecp5_dsp`: Yosys maps the multiply alone, and FF -> multiplier -> FF
  through the fabric's routes took 9-11 ns);
  With ``lane="pot"`` (power-of-two weights, :mod:`hwflow.quant.wformat`) or ``"addsub"``
  (binary and ternary weights as ternary codes: the pot code at ``cbits = 2``) the ``w`` port
  carries ``cbits``-bit pot codes (sign bit, exponent field ``e``) and no lane multiplies
  (:func:`pot_products`): the first stage shifts ``a`` left by ``e - 1`` (zero for ``e = 0``),
  the second inverts it by the sign, and the adder tree and the accumulator take the
  sign bits as carry-ins (which completes the negation). Same latency, no DSP, no ``$mul``;
- ``ceil(log2(simd))`` stages: one registered adder-tree level each;
- last stage: ``acc[p] = sum`` when ``first`` else ``acc[p] + sum`` (only when ``valid``).

``out_valid`` is high in the cycle ``acc`` holds a finished dot product (the input
that carried ``last`` went in :attr:`latency` cycles earlier). ``acc`` keeps its value
until the next ``valid`` input reaches the accumulator, so a reader has one cycle.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..schedule.widths import tree_levels
from ._lanes import lane

__all__ = ["MacArray"]


def _check(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")
    return v


def lut_products(m: Module, pairs, pw: int, name: str) -> list[Value]:
    """Products ``a * w`` (signed pairs) as shift-add trees Yosys builds from LUTs, not DSPs.

    Partial product ``i`` is ``a`` where weight bit ``i`` is set, weighing ``2**i``; the
    weight's sign bit weighs ``-2**(wbits-1)`` (two's complement), so it is subtracted.
    A balanced tree adds them pairwise. The first level's terms are *registered* (the
    products take two cycles, like the DSP lanes' extra input register); later levels are
    wires marked ``keep`` (packed over all pairs, one per level), because otherwise Yosys
    merges the additions into one ``$macc`` and maps it as a carry-save tree 2.5x the size.
    Sums are exact modulo ``2**pw`` (the low ``pw`` bits of each result are the product:
    ``pw >= len(a) + len(w)``); the low bits below the other term's shift pass through
    without an adder.
    """
    # A term is (signed value, shift, subtract); only the sign bit's term is subtracted and
    # it stays last, so it is always the right operand of a pair.
    trees = [[(Mux(w[i], a, 0), i, i == len(w) - 1) for i in range(len(w))] for a, w in pairs]
    level = 0
    while trees and (level == 0 or len(trees[0]) > 1):
        terms = []
        for t in trees:
            nxt = []
            for i in range(0, len(t), 2):
                if i + 1 == len(t):
                    nxt.append(t[i])
                    continue
                (x, sx, _), (y, sy, neg) = t[i], t[i + 1]
                d = sy - sx
                hi = (x >> d) - y if neg else (x >> d) + y
                if len(hi) > pw - sy:
                    hi = hi[:pw - sy]
                nxt.append((Cat(x[:d], hi).as_signed(), sx, False))
            t[:] = nxt
            terms += nxt
        wire = Signal(sum(len(v) for v, _, _ in terms), name=f"{name}_l{level}",
                      reset_less=True, attrs={} if level == 0 else {"keep": 1})
        m.d["sync" if level == 0 else "comb"] += wire.eq(Cat(*(v for v, _, _ in terms)))
        off = 0
        for t in trees:  # the next level reads the register / kept wire
            for j, (v, sh, neg) in enumerate(t):
                t[j] = (wire[off:off + len(v)].as_signed(), sh, neg)
                off += len(v)
        level += 1
    return [t[0][0][:pw] for t in trees]


def pot_products(m: Module, pairs, cbits: int, pw: int, name: str) -> tuple[list[Value], Value]:
    """Products ``a * w`` of signed ``a`` and pot codes ``w`` (``cbits`` bits: sign bit,
    exponent field ``e``; the value is 0 for ``e = 0``, else ``±2**(e-1)``), less one for
    each negative code: ``(terms, signs)``, the terms and the codes' sign bits, registered.

    The first stage shifts: ``(a << e) >> 1`` is ``a << (e - 1)`` for ``e >= 1``; ``e = 0``
    selects zero. The second inverts the bits where the sign is set: ``~v = -v - 1``, an XOR
    synthesis merges into the shifter's last level, where a negation would be an adder a
    lane. The caller adds each sign bit back as the carry-in of an adder it has anyway (the
    adder tree's and the accumulator's: a row of ``simd`` lanes has ``simd`` of them). A
    term needs ``len(a) + 2**(cbits-1) - 1`` signed bits, at most ``pw``; it is sign-extended
    to ``pw``. No multiplier.
    """
    if not pairs:
        return [], C(0, 0)
    ebits = cbits - 1
    sw = len(pairs[0][0]) + (1 << ebits) - 2
    shifted = Signal(sw * len(pairs), name=f"{name}_sh", reset_less=True)
    signs = Signal(len(pairs), name=f"{name}_sg", reset_less=True)
    m.d.sync += [shifted.eq(Cat(*(Mux(w[:ebits] == 0, 0, (a << w[:ebits]) >> 1)[:sw] for a, w in pairs))),
                 signs.eq(Cat(*(w[ebits] for _, w in pairs)))]
    out = []
    for i in range(len(pairs)):
        x = shifted.word_select(i, sw) ^ signs[i].replicate(sw)  # ~v where the sign is set (sw bits)
        out.append(Cat(x, x[-1].replicate(pw - sw)))
    signs2 = Signal(len(pairs), name=f"{name}_sg2", reset_less=True)
    m.d.sync += signs2.eq(signs)  # beside the product register
    return out, signs2


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
    dsp_mults : int, optional
        Lanes ``0 .. dsp_mults-1`` multiply with ``*`` (DSPs), the others with LUT logic
        (:func:`lut_products`). ``None``: every lane uses ``*``. A ``pot`` array has none.
    lane : str, optional
        ``"mul"`` (multiplying lanes), ``"pot"`` (shift lanes, :func:`pot_products`) or
        ``"addsub"`` (add/subtract/zero lanes: :func:`pot_products` at ``cbits = 2``, whose
        codes are ternary's two's complement codes).
    cbits : int, optional
        ``pot``: the code width of ``w``'s lanes (3..5; ``addsub``: 2); ``wbits`` is then at
        least the width of the values, ``2**(cbits-1)``.
    """

    def __init__(self, pe: int, simd: int, wbits: int, abits: int, acc_bits: int,
                 dsp_mults: int | None = None, lane: str = "mul", cbits: int = 0):
        self._pe = _check("pe", pe)
        self._simd = _check("simd", simd)
        self._wbits = _check("wbits", wbits, 2)
        self._abits = _check("abits", abits, 2)
        self._acc_bits = _check("acc_bits", acc_bits, 2)
        if lane not in ("mul", "pot", "addsub"):
            raise ValueError(f"lane must be 'mul', 'pot' or 'addsub', not {lane!r}")
        if lane == "addsub" and cbits != 2:
            raise ValueError(f"an addsub lane takes cbits 2, not {cbits!r}")
        if lane == "pot" and (_check("cbits", cbits, 3) > 5 or wbits < 1 << (cbits - 1)):
            raise ValueError(f"a pot lane takes cbits 3..5 and wbits >= 2**(cbits-1), not cbits {cbits!r} "
                             f"wbits {wbits!r}")
        self._lane, self._cbits = lane, (wbits if lane == "mul" else cbits)
        self._dsp_mults = 0 if lane != "mul" else \
            pe * simd if dsp_mults is None else min(_check("dsp_mults", dsp_mults, 0), pe * simd)
        super().__init__({
            "a": In(simd * abits),
            "w": In(pe * simd * self._cbits),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "acc": Out(pe * acc_bits),
            "out_valid": Out(1),
        })

    pe = property(lambda self: self._pe)
    simd = property(lambda self: self._simd)
    dsp_mults = property(lambda self: self._dsp_mults)
    lane = property(lambda self: self._lane)
    levels = property(lambda self: tree_levels(self._simd))

    @property
    def latency(self) -> int:
        """Cycles from an input to ``acc`` including it (input register, two multiplier
        stages, tree levels, accumulator)."""
        return 4 + self.levels

    def elaborate(self, platform):
        m = Module()
        pw = self._wbits + self._abits
        # Control flags travel beside the data, one register per stage.
        flags0, flags1, flags = Signal(3), Signal(3), Signal(3)
        a_r = Signal.like(self.a, reset_less=True)
        w_r = Signal.like(self.w, reset_less=True)
        m.d.sync += [flags0.eq(Cat(self.valid, self.first, self.last)), flags1.eq(flags0), flags.eq(flags1),
                     a_r.eq(self.a), w_r.eq(self.w)]
        # Multipliers take two cycles: DSP lanes register their inputs a second time, LUT
        # lanes their shift-add tree's first level (which splits the tree's logic over two cycles).
        ndsp = self._dsp_mults
        a_d = Signal.like(self.a, name="a_dsp", reset_less=True)
        w_d = Signal(max(1, ndsp * self._wbits), name="w_dsp", reset_less=True)
        if ndsp:
            m.d.sync += [a_d.eq(a_r), w_d.eq(w_r[:ndsp * self._wbits])]
        cb = self._cbits
        # Datapath registers need no reset (``first`` restarts the accumulator), and each
        # row's values are packed into one register per stage, which keeps the Verilog short.
        # pot lanes: the sign bits each row still owes its sum, one a carry-in of each adder
        # (tree levels, then the accumulator), delayed beside the data.
        rows, width, carries = [], pw, []
        for p in range(self._pe):
            r = Signal(pw * self._simd, name=f"prod_{p}", reset_less=True)
            k = min(self._simd, max(0, ndsp - p * self._simd))  # DSP lanes of this row
            prods = [lane(a_d, s, self._abits) * lane(w_d, p * self._simd + s, self._wbits) for s in range(k)]
            pairs = [(lane(a_r, s, self._abits), lane(w_r, p * self._simd + s, cb)) for s in range(k, self._simd)]
            if self._lane != "mul":
                terms, sg = pot_products(m, pairs, cb, pw, f"pot_{p}")
                prods += terms
                carries.append(list(sg))
            else:
                prods += lut_products(m, pairs, pw, f"lutmul_{p}")
                carries.append([])
            m.d.sync += r.eq(Cat(*prods))
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
                owed = carries[p]
                cin = [owed.pop() if owed else 0 for _ in range(n // 2)]
                m.d.sync += r.eq(Cat(*((prev[i] + prev[i + 1] + cin[i // 2])[:width + 1] if i + 1 < n else prev[i]
                                       for i in range(0, n, 2))))
                rows[p] = r
                if owed:
                    later = Signal(len(owed), name=f"carry_{p}_l{lv}", reset_less=True)
                    m.d.sync += later.eq(Cat(*owed))
                    carries[p] = list(later)
            n, width = nn, width + 1
        valid, first, last = flags[0], flags[1], flags[2]
        accs = [Signal(signed(self._acc_bits), name=f"acc_{p}", reset_less=True) for p in range(self._pe)]
        for p, acc in enumerate(accs):
            with m.If(valid):
                m.d.sync += acc.eq(Mux(first, 0, acc) + rows[p][:width].as_signed() + sum(carries[p]))
        m.d.comb += self.acc.eq(Cat(*accs))
        m.d.sync += self.out_valid.eq(valid & last)
        return m
