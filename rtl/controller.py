"""Controller: walks the Program's loop nests from a descriptor ROM.

There is no per-layer logic: every layer is one word of a descriptor ROM (see
:mod:`._descriptor`), and one set of counters walks any of them, so the Verilog does not
grow with the number of layers. States::

    IDLE --start--> WAIT --input_lead beats--> SETUP0 -> SETUP1 -> RUN -> DRAIN --+--> SETUP0 (next layer)
                                                                                 +--> OUTPUT --output_beats--> DONE -> IDLE

- The input writer runs beside the FSM from ``start`` until the last beat: it writes each
  beat (one word of the input tensor's layout, packed by the host, see
  :meth:`~hwflow.schedule.program.TensorMap.index_map`) to the next address. The first
  layer starts after ``input_lead`` beats and steps only while it stays behind the writer.
- RUN: for each output pixel ``(oy, ox)``, tile ``g < nt``, fused-pool window position
  ``(wy, wx)`` (1 x 1 unless a MaxPool is fused), step ``j < t``: while ``j < k``
  it reads activation word ``base + (iy*iw + ix)*ich + cs + ci`` (``iy = oy*sh + wy*wsh - pt + ky``,
  ``ix = ox*sw + wx*wsw - pl + kx``; ``ci`` fastest, then ``kx``, then ``ky``) and weight word
  ``w_base + g*k + j``. Every coordinate is kept incrementally; the single multiply
  ``pix * ich`` sits in a register stage. Out-of-range pixels raise no read; the datapath
  substitutes the pad value (``d_inrange`` low).
- DRAIN waits ``drain`` cycles: for the last layer until its last code is written; for
  the others only until the next layer may safely start (its results may still be in the
  back end, which keeps its own copy of the layer's fields; see the accelerator).
- OUTPUT reads the output tensor's words in address order, with valid/ready back-pressure.

Timing: the address is registered twice after the counters (the second register holds the
product ``pix * ich``), memory data arrives one cycle later, so the ``d_*`` flags are
delayed by :attr:`latency` = 3 cycles to line up with memory data.
``cycles`` counts from the cycle ``start`` is sampled (0) to the cycle ``done`` is high.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ._descriptor import KIND_CODES, descriptor_layout, descriptor_values

__all__ = ["Controller"]


def _ubits(v: int) -> int:
    return max(1, int(v).bit_length())


def _sbits(lim: int) -> int:
    return _ubits(abs(int(lim))) + 2


class Controller(wiring.Component):
    """Sequencer and address generator for one :class:`~hwflow.schedule.Program`.

    Parameters
    ----------
    program : Program
    """

    def __init__(self, program):
        if not program.layers:
            raise ValueError("program has no layers")
        self._p = program
        self._desc = descriptor_layout(program)
        simd = program.simd
        self._aw = max(1, (program.act_words - 1).bit_length())
        self._ww = max(1, (int(program.weights.shape[0]) - 1).bit_length())
        word = simd * program.abits  # packed lanes
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(32),
            "in_valid": In(1),
            "in_ready": Out(1),
            "wr_busy": In(1),
            "in_data": In(simd * program.in_bits),
            "out_ready": In(1),
            "out_valid": Out(1),
            "rd_addr": Out(self._aw),
            "rd_en": Out(1),
            "wr_addr": Out(self._aw),
            "wr_en": Out(simd),
            "wr_data": Out(word),
            "w_addr": Out(self._ww),
            "d_valid": Out(1),
            "d_first": Out(1),
            "d_last": Out(1),
            "d_inrange": Out(1),
            "d_sel": Out(1),
            "d_wfirst": Out(1),
            "d_wlast": Out(1),
            "d_mask": Out(simd),
            "desc": Out(self._desc),
            "init": Out(1),
            "running": Out(1),
        })

    @property
    def latency(self) -> int:
        """Cycles from a RUN step to its memory data (two address registers + synchronous read)."""
        return 3

    def elaborate(self, platform):
        m = Module()
        p = self._p
        simd = p.simd
        n_layers = len(p.layers)

        # ---- descriptor ROM ----------------------------------------------------------------
        m.submodules.desc_rom = rom = memory.Memory(shape=self._desc, depth=n_layers,
                                                    init=descriptor_values(p))
        drd = rom.read_port()
        layer = Signal(range(max(n_layers, 2)))
        m.d.comb += [drd.addr.eq(layer), self.desc.eq(drd.data)]
        d = self.desc

        # ---- cycle counter -----------------------------------------------------------------
        counter = Signal(32)
        m.d.comb += self.cycles.eq(counter)

        # ---- stream counters: the streams move whole words, in address order --------------
        tin, tout = p.input_map, p.output_map
        in_addr = Signal(self._aw, reset_less=True)
        out_addr = Signal(self._aw, reset_less=True)
        in_last = in_addr == tin.base + tin.words - 1
        out_last = out_addr == tout.base + tout.words - 1
        issued = Signal()  # output: every read has been issued

        # Input lanes sign-extended to the RAM's lane width.
        in_lanes = [Signal(signed(p.abits), name=f"in_lane{i}") for i in range(simd)]
        m.d.comb += [v.eq(self.in_data[i * p.in_bits:(i + 1) * p.in_bits].as_signed()) for i, v in enumerate(in_lanes)]
        # ---- input writer: runs beside the FSM, so the first layer can start early ------------
        # It takes beats from ``start`` on (one word per beat, in address order) and yields the
        # write port to the back end (``wr_busy``). The FSM leaves WAIT after ``input_lead``
        # beats; RUN steps only while ``in_cnt - steps > input_lead`` (or the input is all in),
        # so reads never overtake writes, whatever the partner does; with a partner that never
        # stalls that always holds and the cycle count is the schedule's.
        lead = p.input_lead
        in_active = Signal()
        in_cnt = Signal(range(tin.words + 2))
        steps = Signal(range(tin.words + 2))
        take = Signal()
        m.d.comb += [self.in_ready.eq(in_active & ~self.wr_busy), take.eq(self.in_valid & self.in_ready)]
        with m.If(take):
            m.d.comb += [self.wr_addr.eq(in_addr), self.wr_en.eq(-1), self.wr_data.eq(Cat(*in_lanes))]
            m.d.sync += [in_addr.eq(in_addr + 1), in_cnt.eq(in_cnt + 1)]
            with m.If(in_last):
                m.d.sync += in_active.eq(0)
        go = Signal()
        m.d.comb += go.eq(~in_active | (in_cnt > steps + lead))

        # ---- RUN counters --------------------------------------------------------------------
        lims = [max(l.ih, l.iw, l.oh * l.sh, l.ow * l.sw) + max(l.kh, l.kw) + max(l.pt, l.pl) for l in p.layers]
        cw = _sbits(max(lims))
        pixlim = max((l.ih + l.kh + l.pt + 1) * (l.iw + l.kw + l.pl + 1) for l in p.layers)
        pw = _sbits(pixlim)
        # Loop counters are loaded in SETUP1 before use: no reset needed.
        rl = dict(reset_less=True)
        oy = Signal(range(max(l.oh for l in p.layers) + 1), **rl)
        ox = Signal(range(max(l.ow for l in p.layers) + 1), **rl)
        g, gi = Signal.like(d.nt, **rl), Signal.like(d.tpg, **rl)
        cs = Signal(range(max(l.ich for l in p.layers) + 1), **rl)
        step = Signal.like(d.t, **rl)
        ky, kx, ci = Signal.like(d.kh, **rl), Signal.like(d.kw, **rl), Signal.like(d.cis, **rl)
        iy0, ix0 = Signal(signed(cw), **rl), Signal(signed(cw), **rl)
        iyw0 = Signal(signed(pw), **rl)
        kyw = Signal(signed(pw), **rl)
        wg = Signal(self._ww + 1, **rl)
        drain = Signal.like(d.drain, **rl)
        # Fused MaxPool window position and its offsets (wy*wsh, wx*wsw, wy*wsh*iw).
        wy, wx = Signal.like(d.qh, **rl), Signal.like(d.qw, **rl)
        wyo, wxo = Signal(signed(cw), **rl), Signal(signed(cw), **rl)
        wyw = Signal(signed(pw), **rl)

        running = Signal()
        m.d.comb += self.running.eq(running)
        active = running & go & (step < d.k)
        iy = Signal(signed(cw + 1))
        ix = Signal(signed(cw + 1))
        m.d.comb += [iy.eq(iy0 + wyo + ky), ix.eq(ix0 + wxo + kx)]
        inrange = (iy >= 0) & (iy < d.ih) & (ix >= 0) & (ix < d.iw)
        sel = (d.kind == KIND_CODES["add"]) & (step == 1)
        pix = Signal(signed(pw + 1))
        m.d.comb += pix.eq(iyw0 + wyw + kyw + ix)
        # Address register stage (the one multiply).
        a_pix, a_c = Signal(signed(pw + 1), **rl), Signal(self._aw + 1, **rl)
        a_flags = Signal(7)
        a_addr = Signal(self._aw)
        b_prod, b_c = Signal(self._aw, **rl), Signal(self._aw, **rl)
        a_w = Signal.like(self.w_addr, **rl)
        b_flags = Signal(7)
        m.d.sync += [
            a_pix.eq(pix),
            a_c.eq(Mux(sel, d.in2_base, d.in_base) + cs + ci),
            a_flags.eq(Cat(active, step == 0, step == d.k_m1, inrange, sel,
                           (wy == 0) & (wx == 0), (wy == d.qh_m1) & (wx == d.qw_m1))),
            a_w.eq(wg + step),
        ]
        # Second stage: the one multiply, registered alone (DSP then adder was the critical
        # path); the address add is after it, before the RAM (low bits: wrap-around is exact).
        m.d.sync += [b_prod.eq(a_pix * d.ich), b_c.eq(a_c), self.w_addr.eq(a_w), b_flags.eq(a_flags)]
        m.d.comb += a_addr.eq(b_prod + b_c)
        # Data stage: flags line up with the memory output.
        m.d.sync += Cat(self.d_valid, self.d_first, self.d_last, self.d_inrange, self.d_sel,
                        self.d_wfirst, self.d_wlast).eq(b_flags)
        # Row-stacked first layer: lane s holds input row y0 + s // cin; rows outside the
        # image are padding. Every other layer uses all lanes.
        stack = tin.stack
        if stack > 1:
            # Stage A registers the row, stage B compares it (short paths), stage C is data.
            a_y0 = Signal(signed(cw + 2), **rl)
            a_l0 = Signal(**rl)
            b_mask = Signal(simd, **rl)
            m.d.sync += [a_y0.eq(iy - tin.stack_pad), a_l0.eq(layer == 0)]
            m.d.sync += b_mask.eq(Cat(*(
                ~a_l0 | ((a_y0 + s // tin.c >= 0) & (a_y0 + s // tin.c < tin.h)) for s in range(simd))))
            m.d.sync += self.d_mask.eq(b_mask)
        else:
            m.d.comb += self.d_mask.eq(-1)

        # ---- read port mux: RUN reads from the address register, OUTPUT from the gather ---------
        out_issue = Signal()
        with m.If(out_issue):
            m.d.comb += [self.rd_addr.eq(out_addr), self.rd_en.eq(1)]
        with m.Else():
            m.d.comb += [self.rd_addr.eq(a_addr), self.rd_en.eq(1)]

        run_last = ((step == d.t_m1) & (wy == d.qh_m1) & (wx == d.qw_m1) & (g == d.nt_m1)
                    & (ox == d.ow_m1) & (oy == d.oh_m1))

        # Loop counters live outside the FSM (initialised by ``init``, advanced while
        # ``running``): flatter logic, shorter Verilog, shorter paths.
        with m.If(self.init):
            m.d.sync += [
                oy.eq(0), ox.eq(0), g.eq(0), gi.eq(0), cs.eq(0), step.eq(0), ky.eq(0), kx.eq(0), ci.eq(0),
                iy0.eq(d.pt_neg), ix0.eq(d.pl_neg), iyw0.eq(d.iyw_init), kyw.eq(0), wg.eq(d.w_base),
                wy.eq(0), wx.eq(0), wyo.eq(0), wxo.eq(0), wyw.eq(0),
                running.eq(1),
            ]
        with m.If(running & go):
            with m.If(in_active):
                m.d.sync += steps.eq(steps + 1)
            # Kernel walk: ci fastest, then kx, then ky; wraps to zero after k steps.
            with m.If(step < d.k):
                with m.If(ci == d.cis_m1):
                    m.d.sync += ci.eq(0)
                    with m.If(kx == d.kw_m1):
                        m.d.sync += kx.eq(0)
                        with m.If(ky == d.kh_m1):
                            m.d.sync += [ky.eq(0), kyw.eq(0)]
                        with m.Else():
                            m.d.sync += [ky.eq(ky + 1), kyw.eq(kyw + d.iw)]
                    with m.Else():
                        m.d.sync += kx.eq(kx + 1)
                with m.Else():
                    m.d.sync += ci.eq(ci + 1)
            last_win = (wy == d.qh_m1) & (wx == d.qw_m1)
            with m.If(step == d.t_m1):
                m.d.sync += step.eq(0)
                # Window position (fused MaxPool), then tile, then pixel.
                with m.If(wx == d.qw_m1):
                    m.d.sync += [wx.eq(0), wxo.eq(0)]
                    with m.If(wy == d.qh_m1):
                        m.d.sync += [wy.eq(0), wyo.eq(0), wyw.eq(0)]
                    with m.Else():
                        m.d.sync += [wy.eq(wy + 1), wyo.eq(wyo + d.wsh), wyw.eq(wyw + d.wshiw)]
                with m.Else():
                    m.d.sync += [wx.eq(wx + 1), wxo.eq(wxo + d.wsw)]
                with m.If(last_win):
                    with m.If(g == d.nt_m1):
                        m.d.sync += [g.eq(0), gi.eq(0), cs.eq(0), wg.eq(d.w_base)]
                        with m.If(ox == d.ow_m1):
                            m.d.sync += [ox.eq(0), ix0.eq(d.pl_neg)]
                            with m.If(oy == d.oh_m1):
                                m.d.sync += running.eq(0)
                            with m.Else():
                                m.d.sync += [oy.eq(oy + 1), iy0.eq(iy0 + d.sh), iyw0.eq(iyw0 + d.shiw)]
                        with m.Else():
                            m.d.sync += [ox.eq(ox + 1), ix0.eq(ix0 + d.sw)]
                    with m.Else():
                        m.d.sync += [g.eq(g + 1), wg.eq(wg + d.k)]
                        with m.If(gi == d.tpg_m1):
                            m.d.sync += [gi.eq(0), cs.eq(cs + d.cis)]
                        with m.Else():
                            m.d.sync += gi.eq(gi + 1)
            with m.Else():
                m.d.sync += step.eq(step + 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [counter.eq(1), layer.eq(0), issued.eq(0), self.out_valid.eq(0)]
                    m.d.sync += [in_addr.eq(tin.base), out_addr.eq(tout.base), in_active.eq(1),
                                 in_cnt.eq(0), steps.eq(0)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                # Until the first ``input_lead`` beats are in (counting this cycle's).
                m.d.comb += self.busy.eq(1)
                m.d.sync += counter.eq(counter + 1)
                with m.If(in_cnt + take >= lead):
                    m.next = "SETUP0"
            with m.State("SETUP0"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += counter.eq(counter + 1)
                m.next = "SETUP1"
            with m.State("SETUP1"):
                # Descriptor word is valid now: initialise the loop counters.
                m.d.comb += [self.busy.eq(1), self.init.eq(1)]
                m.d.sync += counter.eq(counter + 1)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += counter.eq(counter + 1)
                with m.If(run_last & go):
                    m.d.sync += drain.eq(d.drain)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += counter.eq(counter + 1)
                with m.If(drain == 1):
                    with m.If(layer == n_layers - 1):
                        m.next = "OUTPUT"
                    with m.Else():
                        m.d.sync += layer.eq(layer + 1)
                        m.next = "SETUP0"
                with m.Else():
                    m.d.sync += drain.eq(drain - 1)
            with m.State("OUTPUT"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += counter.eq(counter + 1)
                free = ~self.out_valid | self.out_ready
                with m.If(free):
                    with m.If(~issued):
                        m.d.comb += out_issue.eq(1)
                        m.d.sync += [self.out_valid.eq(1), out_addr.eq(out_addr + 1)]
                        with m.If(out_last):
                            m.d.sync += issued.eq(1)
                    with m.Else():
                        m.d.sync += self.out_valid.eq(0)
                        with m.If(self.out_valid):
                            m.next = "DONE"
                with m.Else():
                    # Stalled: hold the read data (read enable low).
                    m.d.comb += [out_issue.eq(1), self.rd_en.eq(0)]
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m
