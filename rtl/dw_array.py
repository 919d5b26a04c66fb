"""Depthwise unit: ``rows x simd`` multiply-accumulators, lanes across channels, taps in time.

A depthwise convolution has no sum across channels, so the dot-product array uses one
multiplier a row on it. This unit gives every (output row, channel) its own accumulator
and reuses each activation word across the kernel window (a ``dw`` step,
:class:`~hwflow.schedule.program.LayerProgram`):

- The controller sweeps, per channel chunk and group of ``rows`` output rows, the input
  columns left to right; in each column it reads the group's ``H = (rows-1)*sh + kh`` input
  rows, one word (``simd`` channels) a cycle, ``t >= max(H, kh*kw)`` cycles a column.
- A column's word for row ``i`` (its ``i``-th read) enters the window ``win`` (the last
  ``kw`` columns) at once: row ``i`` of the window shifts one column left at that read. The
  window is read only at a column's first read, before any of its rows moves, so it then
  holds the last ``kw`` whole columns; each row's shift enable is a register of its own
  (``hot``), not one enable for the whole window (timing, issue 13).
- When the window holds an output column's inputs (columns ``oc*sw .. oc*sw + kw - 1``), the
  unit computes in the next column's first ``kh*kw`` cycles, the taps in ROM order
  (``kx`` fastest): the first tap reads the window, and a copy ``cur`` moves one column
  left a tap (a rotation) and one row up after a kernel row, so output row ``r`` always
  reads ``cur[0][r*sh]``. The tap's ``simd`` weights come from the weight ROM at the same
  step (the controller's weight address runs over the chunk's taps).
- Every input is registered first (``*_i``: data, flags, descriptor fields). The tap
  control that drives the window copy's and the operands' enables (``tap_on``, a shift or a
  rotation, the last tap) is then computed a cycle ahead from the unregistered inputs and
  registered, so those wide enables are a register and the core's stall, not a chain of
  compares (timing, issue 13).
- Operands, the multipliers' first adder level (shift-add trees in LUTs,
  :func:`~hwflow.rtl.mac_array.lut_products`: the unit takes no DSPs), products, then
  accumulators are registered (latency ``5`` from a tap's inputs to the accumulator holding
  it, the input register included: ``LATENCY``); a cycle after the last tap the accumulators
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

#: Cycles from a tap's inputs to the accumulator that holds its product: the input register,
#: operands, the multipliers' first level, product, accumulator.
LATENCY = 5


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
            "next_valid": Out(1),  # out_valid of the next cycle (unless the core stalls)
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

        # ---- the input register: the unit runs a cycle behind its ports -----------------------
        ports = ("x", "w", "valid", "first", "last", "chunk", "kh_m1", "kw_m1", "cols_m1", "groups_m1",
                 "rows_n", "last_rows", "sh2", "sw2")
        reg = {n: Signal.like(getattr(self, n), name=f"{n}_i", reset_less=n not in ("valid",)) for n in ports}
        m.d.sync += [reg[n].eq(getattr(self, n)) for n in ports]
        x, w, valid, first, last, chunk = (reg[n] for n in ("x", "w", "valid", "first", "last", "chunk"))
        kh_m1, kw_m1, cols_m1, groups_m1 = (reg[n] for n in ("kh_m1", "kw_m1", "cols_m1", "groups_m1"))
        rows_n, last_rows, sh2, sw2 = (reg[n] for n in ("rows_n", "last_rows", "sh2", "sw2"))

        # ---- the window, the tap copy --------------------------------------------------------
        # Row i of the window moves one column left when row i of a column is read, the word
        # entering its last column: after a column's last read the window holds the last kw
        # columns, and the window is read only at a column's first read (the first tap), before
        # any of its rows moves. Each row's enable is a register of its own (``hot``, one-hot of
        # the read's row, computed a cycle ahead from the ports), fanning out to ``kw`` words.
        win = [[Signal(word, name=f"win_{c}_{i}", **rl) for i in range(H)] for c in range(KW)]
        cur = [[Signal(word, name=f"cur_{c}_{i}", **rl) for i in range(H)] for c in range(KW)]
        pos = Signal(H, **rl)  # one-hot: the row of the column's next read (unless it is a first)
        pos_nx = Mux(valid, (Mux(first, 1, pos) << 1)[:H], pos)
        hot = Signal(H)
        m.d.sync += [pos.eq(pos_nx), hot.eq(Mux(self.valid, Mux(self.first, 1, pos_nx), 0))]
        for i in range(H):
            with m.If(hot[i]):
                m.d.sync += [win[c][i].eq(win[c + 1][i]) for c in range(KW - 1)]
                m.d.sync += win[KW - 1][i].eq(x)

        # ---- sweep position: column in the group, group in the chunk --------------------------
        cb = len(cols_m1)
        cx = Signal(cb, **rl)
        grp = Signal(cb, **rl)
        cx_now = Signal(cb)
        grp_now = Signal(cb)
        with m.If(chunk):
            m.d.comb += [cx_now.eq(0), grp_now.eq(0)]
        with m.Elif(cx == cols_m1):
            m.d.comb += [cx_now.eq(0), grp_now.eq(grp + 1)]
        with m.Else():
            m.d.comb += [cx_now.eq(cx + 1), grp_now.eq(grp)]
        with m.If(valid & first):
            m.d.sync += [cx.eq(cx_now), grp.eq(grp_now)]
        # An output column's window is in after column kw-1, kw-1+sw, ... (not the extra one).
        odd_ok = Mux(sw2, cx[0] == kw_m1[0], 1)
        compute_col = (cx >= kw_m1) & (cx != cols_m1) & odd_ok
        pending = Signal()
        prow = Signal.like(rows_n, **rl)
        col_end = valid & last

        # ---- taps ----------------------------------------------------------------------------
        # The tap state's next values (``*_nx``) give the registered tap control a cycle ahead:
        # ``tap_on``, ``kx_last``, ``tap_last`` and the copy's move (up a row / rotate) are
        # registers, equal to what they would be as logic of this cycle's state.
        busy = Signal()
        kx = Signal(range(max(KW, 2)), **rl)
        ky = Signal.like(kh_m1, **rl)
        tap_on, kx_last, tap_last, up, rot = (Signal(name=n) for n in ("tap_on", "kx_last", "tap_last", "up", "rot"))
        start = valid & first & pending
        trow = Signal.like(rows_n, **rl)
        pending_nx, busy_nx = Signal(), Signal()
        kx_nx, ky_nx = Signal.like(kx), Signal.like(ky)
        m.d.comb += [
            pending_nx.eq(Mux(col_end & compute_col, 1, pending & ~start)),
            busy_nx.eq(Mux(tap_on, ~tap_last, busy)),
            kx_nx.eq(Mux(tap_on, Mux(kx_last, 0, kx + 1), kx)),
            ky_nx.eq(Mux(tap_on, Mux(tap_last, 0, Mux(kx_last, ky + 1, ky)), ky)),
        ]
        tap_nx = (self.valid & self.first & pending_nx) | busy_nx
        kxl_nx = kx_nx == self.kw_m1
        last_nx = tap_nx & kxl_nx & (ky_nx == self.kh_m1)
        m.d.sync += [pending.eq(pending_nx), busy.eq(busy_nx), kx.eq(kx_nx), ky.eq(ky_nx),
                     tap_on.eq(tap_nx), kx_last.eq(kxl_nx), tap_last.eq(last_nx),
                     up.eq(tap_nx & kxl_nx & ~last_nx), rot.eq(tap_nx & ~kxl_nx & ~last_nx)]
        with m.If(start):
            m.d.sync += trow.eq(prow)
        with m.If(col_end & compute_col):
            m.d.sync += prow.eq(Mux(grp == groups_m1, last_rows, rows_n))
        src = [[Mux(busy, cur[c][i], win[c][i]) for i in range(H)] for c in range(KW)]
        with m.If(up):
            # Next kernel row: one column left (back to kx = 0) and one row up.
            m.d.sync += [cur[c][i].eq(src[(c + 1) % KW][i + 1] if i + 1 < H else 0)
                         for c in range(KW) for i in range(H)]
        with m.Elif(rot):
            m.d.sync += [cur[c][i].eq(src[(c + 1) % KW][i]) for c in range(KW) for i in range(H)]

        # Output row r reads row r*sh of the tap's column 0.
        def operand(r):
            opts = {s: src[0][r * s] if r * s < H else C(0, word) for s in self._strides}
            if len(opts) == 1:
                return next(iter(opts.values()))
            return Mux(sh2, opts[2], opts[1])

        # ---- operands, products, accumulators ------------------------------------------------
        a_r = [Signal(word, name=f"dw_a_{r}", **rl) for r in range(R)]
        w_r = Signal(S * wb, **rl)
        f1, f1b, f2, f3 = (Signal(3, name=f"dw_f{i}") for i in ("1", "1b", "2", "3"))
        r1, r1b, r2, r3 = (Signal.like(rows_n, name=f"dw_rows{i}", **rl) for i in ("1", "1b", "2", "3"))
        trow_now = Mux(start, prow, trow)
        m.d.sync += [f1.eq(Cat(tap_on, start, tap_last)), f1b.eq(f1), f2.eq(f1b), f3.eq(f2), r1.eq(trow_now),
                     r1b.eq(r1), r2.eq(r1b), r3.eq(r2)]
        with m.If(tap_on):
            m.d.sync += [a_r[r].eq(operand(r)) for r in range(R)]
            m.d.sync += w_r.eq(w)
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
        # ``busy`` is ``left != 0`` as a register (set a cycle ahead), so ``out_valid``, which
        # the back end's load enables fan out from, starts at a flip-flop, not at a compare.
        left = Signal(range(R + 1))
        busy = Signal()
        with m.If(f3[0] & f3[2]):
            m.d.sync += [obuf[r].eq(Cat(*accs[r])) for r in range(R)]
            m.d.sync += left.eq(r3)
            m.d.comb += self.next_valid.eq(r3 != 0)
        with m.Elif(busy):
            m.d.sync += left.eq(left - 1)
            m.d.comb += self.next_valid.eq(left != 1)
            m.d.sync += [obuf[r].eq(obuf[r + 1]) for r in range(R - 1)]
        m.d.sync += busy.eq(self.next_valid)
        m.d.comb += [self.out_valid.eq(busy), self.out.eq(obuf[0])]
        return m
