"""Depthwise unit: ``rows x simd`` multiply-accumulators, lanes across channels, taps in time.

A depthwise convolution has no sum across channels, so the dot-product array uses one
multiplier a row on it. This unit gives every (output row, channel) its own accumulator
and reuses each activation word across the kernel window (a ``dw`` step,
:class:`~hwflow.schedule.program.LayerProgram`):

- The controller sweeps, per channel chunk and group of ``rows`` output rows, the input
  columns left to right; in each column it reads the group's ``H = (rows-1)*sh + kh`` input
  rows, one word (``simd`` channels) a cycle, ``t >= max(H, kh*kw)`` cycles a column.
- A column's words go to the column register ``col`` (row ``i`` at its ``i``-th read);
  when the column ends it moves into the window ``win`` (the last ``kw`` columns, a shift).
- When the window holds an output column's inputs (columns ``oc*sw .. oc*sw + kw - 1``), the
  unit computes in the next column's first ``kh*kw`` cycles, the taps in ROM order
  (``kx`` fastest): the first tap reads the window, and a copy ``cur`` moves one column
  left a tap (a rotation) and one row up after a kernel row, so output row ``r`` always
  reads ``cur[0][r*sh]``. The tap's ``simd`` weights come from the weight ROM at the same
  step (the controller's weight address runs over the chunk's taps).
- Operands, the multipliers' first adder level (shift-add trees in LUTs,
  :func:`~hwflow.rtl.mac_array.lut_products`: the unit takes no DSPs), products, then
  accumulators are registered (latency ``4`` from a tap to the accumulator holding it:
  ``LATENCY``); a cycle after the last tap the accumulators
  move to ``obuf``, which hands the group's rows to the back end one a cycle (``out_valid``;
  the last group of a chunk may have fewer rows, ``last_rows``), row 0 first.

A sweep group has one extra column at its end (read, never used) in whose steps the last
output column computes. Products are exact (``abits + wbits``), accumulators ``acc_bits``.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ._lanes import lane
from .mac_array import lut_products

__all__ = ["DwArray"]

#: Cycles from a tap's operands to the accumulator that holds its product.
LATENCY = 4


class DwArray(wiring.Component):
    """The depthwise unit.

    Parameters
    ----------
    rows, simd : int
        Output rows a group and channels (lanes) a word.
    hmax : int
        Most reads a column (the longest ``H`` of any ``dw`` step).
    kw : int
        Kernel width (every ``dw`` step's).
    abits, wbits, acc_bits : int
        Signed activation, weight and accumulator widths.
    strides : tuple of int
        The vertical strides the steps use (1 and/or 2).
    count_bits : int
        Width of the column and group counters.
    """

    def __init__(self, rows: int, simd: int, hmax: int, kw: int, abits: int, wbits: int, acc_bits: int,
                 strides=(1,), count_bits: int = 8):
        for name, v in (("rows", rows), ("simd", simd), ("hmax", hmax), ("kw", kw), ("abits", abits),
                        ("wbits", wbits), ("acc_bits", acc_bits), ("count_bits", count_bits)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not set(strides) <= {1, 2} or not strides:
            raise ValueError(f"strides must be 1 and/or 2, not {strides!r}")
        self._rows, self._simd, self._hmax, self._kw = rows, simd, hmax, kw
        self._abits, self._wbits, self._acc_bits = abits, wbits, acc_bits
        self._strides = tuple(sorted(set(strides)))
        cb = count_bits
        super().__init__({
            "x": In(simd * abits),        # the word read (data stage, padding substituted)
            "w": In(simd * wbits),        # the step's weight word (one tap, lane s = channel s)
            "valid": In(1),               # a read of a dw step arrives
            "first": In(1),               # ... the first of its column
            "last": In(1),                # ... the last of its column
            "chunk": In(1),               # ... the first column of a chunk
            "kh_m1": In(range(max(hmax, 2))),
            "kw_m1": In(range(max(kw, 2))),
            "cols_m1": In(cb),
            "groups_m1": In(cb),
            "rows_n": In(range(rows + 1)),
            "last_rows": In(range(rows + 1)),
            "sh2": In(1),
            "sw2": In(1),
            "out_valid": Out(1),
            "out": Out(simd * acc_bits),  # one output row's ``simd`` channels
        })

    @property
    def latency(self) -> int:
        return LATENCY

    def elaborate(self, platform):
        m = Module()
        R, S, H, KW = self._rows, self._simd, self._hmax, self._kw
        ab, wb, acc_bits = self._abits, self._wbits, self._acc_bits
        word = S * ab
        rl = dict(reset_less=True)

        # ---- the column coming in, the window, the tap copy --------------------------------
        col = [Signal(word, name=f"col_{i}", **rl) for i in range(H)]
        win = [[Signal(word, name=f"win_{c}_{i}", **rl) for i in range(H)] for c in range(KW)]
        cur = [[Signal(word, name=f"cur_{c}_{i}", **rl) for i in range(H)] for c in range(KW)]
        idx = Signal(range(H), **rl)  # the read's row in its column
        at = Mux(self.first, 0, idx)
        with m.If(self.valid):
            m.d.sync += idx.eq(at + 1)
            with m.Switch(at):
                for i in range(H):
                    with m.Case(i):
                        m.d.sync += col[i].eq(self.x)
        # The column with this cycle's word in place (the window takes it on the last read).
        colv = [Mux(self.valid & (at == i), self.x, col[i]) for i in range(H)]

        # ---- sweep position: column in the group, group in the chunk --------------------------
        cb = len(self.cols_m1)
        cx = Signal(cb, **rl)
        grp = Signal(cb, **rl)
        cx_now = Signal(cb)
        grp_now = Signal(cb)
        with m.If(self.chunk):
            m.d.comb += [cx_now.eq(0), grp_now.eq(0)]
        with m.Elif(cx == self.cols_m1):
            m.d.comb += [cx_now.eq(0), grp_now.eq(grp + 1)]
        with m.Else():
            m.d.comb += [cx_now.eq(cx + 1), grp_now.eq(grp)]
        with m.If(self.valid & self.first):
            m.d.sync += [cx.eq(cx_now), grp.eq(grp_now)]
        # An output column's window is in after column kw-1, kw-1+sw, ... (not the extra one).
        odd_ok = Mux(self.sw2, cx[0] == self.kw_m1[0], 1)
        compute_col = (cx >= self.kw_m1) & (cx != self.cols_m1) & odd_ok
        pending = Signal()
        prow = Signal.like(self.rows_n, **rl)
        col_end = self.valid & self.last
        with m.If(col_end):
            for c in range(KW - 1):
                m.d.sync += [win[c][i].eq(win[c + 1][i]) for i in range(H)]
            m.d.sync += [win[KW - 1][i].eq(colv[i]) for i in range(H)]

        # ---- taps ----------------------------------------------------------------------------
        busy = Signal()
        kx = Signal(range(max(KW, 2)), **rl)
        ky = Signal.like(self.kh_m1, **rl)
        start = self.valid & self.first & pending
        tap_on = start | busy
        kx_last = kx == self.kw_m1
        tap_last = tap_on & kx_last & (ky == self.kh_m1)
        trow = Signal.like(self.rows_n, **rl)
        with m.If(start):
            m.d.sync += [pending.eq(0), trow.eq(prow)]
        with m.If(col_end & compute_col):
            m.d.sync += [pending.eq(1), prow.eq(Mux(grp == self.groups_m1, self.last_rows, self.rows_n))]
        src = [[Mux(busy, cur[c][i], win[c][i]) for i in range(H)] for c in range(KW)]
        with m.If(tap_on):
            with m.If(tap_last):
                m.d.sync += [busy.eq(0), kx.eq(0), ky.eq(0)]
            with m.Else():
                m.d.sync += busy.eq(1)
                with m.If(kx_last):
                    m.d.sync += [kx.eq(0), ky.eq(ky + 1)]
                    # Next kernel row: one column left (back to kx = 0) and one row up.
                    m.d.sync += [cur[c][i].eq(src[(c + 1) % KW][i + 1] if i + 1 < H else 0)
                                 for c in range(KW) for i in range(H)]
                with m.Else():
                    m.d.sync += kx.eq(kx + 1)
                    m.d.sync += [cur[c][i].eq(src[(c + 1) % KW][i]) for c in range(KW) for i in range(H)]

        # Output row r reads row r*sh of the tap's column 0.
        def operand(r):
            opts = {s: src[0][r * s] if r * s < H else C(0, word) for s in self._strides}
            if len(opts) == 1:
                return next(iter(opts.values()))
            return Mux(self.sh2, opts[2], opts[1])

        # ---- operands, products, accumulators ------------------------------------------------
        a_r = [Signal(word, name=f"dw_a_{r}", **rl) for r in range(R)]
        w_r = Signal(S * wb, **rl)
        f1, f1b, f2, f3 = (Signal(3, name=f"dw_f{i}") for i in ("1", "1b", "2", "3"))
        r1, r1b, r2, r3 = (Signal.like(self.rows_n, name=f"dw_rows{i}", **rl) for i in ("1", "1b", "2", "3"))
        trow_now = Mux(start, prow, trow)
        m.d.sync += [f1.eq(Cat(tap_on, start, tap_last)), f1b.eq(f1), f2.eq(f1b), f3.eq(f2), r1.eq(trow_now),
                     r1b.eq(r1), r2.eq(r1b), r3.eq(r2)]
        with m.If(tap_on):
            m.d.sync += [a_r[r].eq(operand(r)) for r in range(R)]
            m.d.sync += w_r.eq(self.w)
        pw = ab + wb
        prod = [Signal(S * pw, name=f"dw_prod_{r}", **rl) for r in range(R)]
        for r in range(R):
            prods = lut_products(m, [(lane(a_r[r], s, ab), lane(w_r, s, wb)) for s in range(S)], pw, f"dwmul_{r}")
            m.d.sync += prod[r].eq(Cat(*prods))
        accs = [[Signal(signed(acc_bits), name=f"dw_acc_{r}_{s}", **rl) for s in range(S)] for r in range(R)]
        with m.If(f2[0]):
            for r in range(R):
                for s in range(S):
                    p = prod[r].word_select(s, pw).as_signed()
                    m.d.sync += accs[r][s].eq(Mux(f2[1], 0, accs[r][s]) + p)

        # ---- hand the rows to the back end ----------------------------------------------------
        obuf = [Signal(S * acc_bits, name=f"dw_obuf_{r}", **rl) for r in range(R)]
        left = Signal(range(R + 1))
        with m.If(f3[0] & f3[2]):
            m.d.sync += [obuf[r].eq(Cat(*accs[r])) for r in range(R)]
            m.d.sync += left.eq(r3)
        with m.Elif(left != 0):
            m.d.sync += left.eq(left - 1)
            m.d.sync += [obuf[r].eq(obuf[r + 1]) for r in range(R - 1)]
        m.d.comb += [self.out_valid.eq(left != 0), self.out.eq(obuf[0])]
        return m
