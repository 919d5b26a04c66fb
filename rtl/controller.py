"""Controller: walks the Program's loop nests from a descriptor ROM.

There is no per-layer logic: every layer is one word of a descriptor ROM (see
:mod:`hwflow.schedule.descriptor`), and one set of counters walks any of them, so the Verilog does not
grow with the number of layers. States::

    IDLE --start--> WAIT --input_lead beats--> SETUP0 -> SETUP1 -> RUN -> DRAIN --+--> SETUP0 (next layer)
                                                                                 +--> OUTPUT --output_beats--> DONE -> IDLE

- The input writer runs beside the FSM from ``start`` until the last beat: it writes each
  beat (one word of the input tensor's layout, packed by the host, see
  :meth:`~hwflow.schedule.program.TensorMap.index_map`) to the next address. The first
  layer starts after ``input_lead`` beats and reads behind the writer. A streamed input
  (:class:`~hwflow.schedule.program.InputStream`) has no writer: the first layer's reading
  RUN steps take the beats themselves (``in_ready`` high in those steps only).
- Stalls: ``in_ready`` is high from the cycle after ``start`` until the last input beat
  (streamed: in the first layer's reading steps).
  A cycle in which it is high and ``in_valid`` is low is an input stall: ``stall`` is high
  and the accelerator holds every register of the core (a clock enable) except its cycle
  counter, so the core runs in lockstep with the stream, cycle for cycle the schedule's,
  and an input stall costs exactly one cycle. Output stalls (``out_valid`` high,
  ``out_ready`` low) hold the OUTPUT state, which is all that runs then: one cycle each too.
- RUN: for each output pixel ``(oy, ox)``, tile ``g < nt``, fused-pool window position
  ``(wy, wx)`` (1 x 1 unless a MaxPool is fused), step ``j < t``: while ``j < k``
  it reads activation word ``base + (iy*iw + ix)*ich + cs + ci`` (``iy = oy*sh + wy*wsh - pt + ky``,
  ``ix = ox*sw + wx*wsw - pl + kx``; ``ci`` fastest, then ``kx``, then ``ky``) and weight word
  ``w_base + g*wk + j`` (``wk = k`` but for a depthwise ``dw`` step, whose weight words are its
  taps, read while it computes: :class:`~hwflow.schedule.program.LayerProgram`). Every coordinate, and the word offsets of pixel, window and
  kernel (pre-multiplied by ``ich``: no multiply), is kept incrementally; every loop test
  is a register flag set one step ahead. Out-of-range pixels raise no read; the datapath
  substitutes the pad value (``d_inrange`` low).
- DRAIN waits ``drain`` cycles: for the last layer until its last code is written; for
  the others only until the next layer may safely start (its results may still be in the
  back end, which keeps its own copy of the layer's fields; see the accelerator).
- OUTPUT reads the output tensor's words in address order, with valid/ready back-pressure.

Timing: the address is registered twice after the counters (two partial sums, then the
address itself, which drives the RAM), memory data arrives one cycle later and passes
:data:`~hwflow.schedule.program.READ_DATA_REGS` data registers (in the accelerator; the
weight ROM's data too, its address drives it in the same cycle), so the ``d_*`` flags and
the stream beats are delayed by :attr:`latency` = :data:`~hwflow.schedule.program.ISSUE_CYCLES`
cycles to line up with the data.
The accelerator counts the cycles from the cycle ``start`` is sampled (0) to the cycle
``done`` is high (``busy`` and ``done`` say when).
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..schedule.descriptor import KIND_CODES, LOOPS, descriptor_fields, descriptor_values
from ..schedule.program import ISSUE_CYCLES, READ_DATA_REGS
from ..quant.arith import bits_for_range
from ..schedule.widths import STEP_FLAGS, addr_bits, coord_bits

__all__ = ["Controller", "descriptor_layout"]


def descriptor_layout(program) -> data.StructLayout:
    """The descriptor ROM's word: the fields of :func:`~hwflow.schedule.descriptor.descriptor_fields`."""
    return data.StructLayout({f: signed(w) if s else unsigned(w) for f, (w, s) in descriptor_fields(program).items()})


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
        self._fields = descriptor_fields(program)
        simd = program.simd
        self._aw = addr_bits(program.act_words)
        # Weight addresses are virtual words: a packed depthwise step's are ``w_pack`` a ROM word.
        # (An ``xnor`` step's are words of the XNOR unit's own ROM.)
        self._ww = addr_bits(max([program.weights.shape[0]]
                                 + [l.w_base + l.w_words for l in program.layers if l.kind in ("mac", "dw", "xnor")]))
        word = simd * program.abits  # packed lanes
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "in_valid": In(1),
            "in_ready": Out(1),
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
            "d_sdata": Out(word),
            "w_pk": Out(1),
            "w_lr": Out(max(1, max(program.narrow_lrs, default=0).bit_length())),
            "desc": Out(self._desc),
            "init": Out(1),
            "running": Out(1),
            "stall": Out(1),
        })

    @property
    def fields(self) -> dict:
        """The descriptor's fields, ``{name: (width, signed)}`` (the depthwise ones only with ``dw`` steps)."""
        return self._fields

    @property
    def latency(self) -> int:
        """Cycles from a RUN step to its data at the datapath (two address registers, the
        synchronous read, the data registers): the schedule's ``latency["issue"]``."""
        return ISSUE_CYCLES

    def _stream(self, m, st, in_lanes, ready_nx, ci, wiy, wix, d):
        """The streamed first layer (:class:`~hwflow.schedule.program.InputStream`).

        Its RUN steps that read take a beat instead (``in_ready``; a missing beat is a stall,
        ``stall``: the accelerator holds the whole core); the beat travels :attr:`latency`
        registers to meet its flags at the data stage (``d_sdata``). The lanes outside the image are padding (``d_mask`` low): from
        the window origin (the receptive field's output position ``cy, cx``) stage A forms
        the field's first input row and column, stage B compares each kernel row and column
        with the image, stage C picks the chunk's lanes (constants of the first layer).
        """
        simd = self._p.simd
        # ``in_ready`` is a register (its next value from the step's): the stall, which holds
        # every register of the core, is then one gate from a register and ``in_valid``.
        ready = Signal(name="in_ready_r")
        m.d.sync += ready.eq(ready_nx)
        m.d.comb += [self.in_ready.eq(ready), self.stall.eq(ready & ~self.in_valid)]
        rl = dict(reset_less=True)
        s_a, s_b = (Signal.like(self.d_sdata, name=n, **rl) for n in ("sdata_a", "sdata_b"))
        m.d.sync += [s_a.eq(Cat(*in_lanes)), s_b.eq(s_a), self.d_sdata.eq(_delay(m, s_b, READ_DATA_REGS, "sdata"))]
        cw = bits_for_range(-max(st.pt, st.pl) - 1, max(st.oh * st.sh, st.ow * st.sw) + max(st.kh, st.kw)) + 1
        a_y0, a_x0 = Signal(signed(cw), name="sy0", **rl), Signal(signed(cw), name="sx0", **rl)
        a_q, b_q = Signal.like(ci, name="sq_a", **rl), Signal.like(ci, name="sq_b", **rl)
        m.d.sync += [a_y0.eq(wiy * st.sh - st.pt), a_x0.eq(wix * st.sw - st.pl), a_q.eq(ci), b_q.eq(a_q)]
        row_ok = Signal(st.kh, name="row_ok", **rl)
        col_ok = Signal(st.kw, name="col_ok", **rl)
        m.d.sync += [row_ok.eq(Cat(*((a_y0 + ky >= 0) & (a_y0 + ky < st.h) for ky in range(st.kh)))),
                     col_ok.eq(Cat(*((a_x0 + kx >= 0) & (a_x0 + kx < st.w) for kx in range(st.kw))))]
        pos = st.tap_positions(simd)
        mask = Signal.like(self.d_mask, name="smask", **rl)
        m.d.comb += self.d_mask.eq(_delay(m, mask, READ_DATA_REGS, "smask"))
        with m.Switch(b_q):
            for q in range(st.chunks):
                with m.Case(q):
                    m.d.sync += mask.eq(Cat(*((row_ok[ky] & col_ok[kx]) if ch >= 0 else C(0, 1)
                                                     for ch, ky, kx in pos[q].tolist())))

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

        # ---- stream counters: the streams move whole words, in address order --------------
        tin, tout = p.input_map, p.output_map
        istream = p.input_stream
        out_addr = Signal(self._aw, reset_less=True)
        out_last = out_addr == tout.base + tout.words - 1
        issued = Signal()  # output: every read has been issued

        # Input lanes sign-extended to the RAM's lane width.
        in_lanes = [Signal(signed(p.abits), name=f"in_lane{i}") for i in range(simd)]
        m.d.comb += [v.eq(self.in_data[i * p.in_bits:(i + 1) * p.in_bits].as_signed()) for i, v in enumerate(in_lanes)]
        lead = p.input_lead
        in_active = Signal()
        to_lead = Signal(range(lead + 1))  # beats until WAIT may end (no adder on that path)
        take = Signal()
        if istream is None:
            # ---- input writer: runs beside the FSM, so the first layer can start early --------
            # It takes beats from ``start`` on (one word per beat, in address order). The FSM
            # leaves WAIT after ``input_lead`` beats; the schedule keeps the first layer's reads
            # behind the writes and its first result after the last beat (the write port is free
            # for the input), and a stall holds the whole core, so both hold whatever the
            # partner does.
            in_addr = Signal(self._aw, reset_less=True)
            in_last = in_addr == tin.base + tin.words - 1
            m.d.comb += [self.in_ready.eq(in_active), take.eq(self.in_valid & in_active),
                         self.stall.eq(in_active & ~self.in_valid)]
            with m.If(take):
                m.d.comb += [self.wr_addr.eq(in_addr), self.wr_en.eq(-1), self.wr_data.eq(Cat(*in_lanes))]
                m.d.sync += in_addr.eq(in_addr + 1)
                with m.If(to_lead != 0):
                    m.d.sync += to_lead.eq(to_lead - 1)
                with m.If(in_last):
                    m.d.sync += in_active.eq(0)

        # ---- RUN counters --------------------------------------------------------------------
        cw = coord_bits(p.layers)
        # Loop counters are loaded in SETUP1 before use: no reset needed.
        rl = dict(reset_less=True)

        def looped(name, width):
            # A loop counter and its wrap flag (``last``): one register, one Verilog block.
            r = Signal(data.StructLayout({"n": unsigned(width), "last": 1}), name=name, **rl)
            return r.n, r.last

        # Every loop test is a register bit, set one step ahead: ``ci_l == (ci == cis - 1)``
        # (from the ``_m2`` fields) for the loops the address needs; the others (pixel, tile,
        # window) count down to 0 (``ox_l == (ox == 0)``) and compare with 1. The output
        # rows need no counter: the layer ends on ``nwin`` (below).
        ox, ox_l = looped("ox", len(d.ow_m1))
        g, g_l = looped("g", len(d.nt_m1))
        gi, gi_l = looped("gi", len(d.tpg_m1))
        cs = Signal(range(max(l.ich for l in p.layers) + 1), **rl)
        # step and its flags: last (``t - 1``), act (``< k``), klast (``k - 1``), first, one
        # (second); w_first: first window position (wx == wy == 0).
        st = Signal(data.StructLayout({"n": unsigned(len(d.t)), "last": 1, "act": 1, "klast": 1, "first": 1,
                                       "one": 1, "w_first": 1}), name="step", **rl)
        step, s_last, s_act, s_klast, s_first, s_one, w_first = (
            st.n, st.last, st.act, st.klast, st.first, st.one, st.w_first)
        ky, ky_l = looped("ky", len(d.kh))
        kx, kx_l = looped("kx", len(d.kw))
        ci, ci_l = looped("ci", len(d.cis))
        # Output pixel origin (oy*sh - pt, ox*sw - pl).
        iy0, ix0 = Signal(signed(cw), **rl), Signal(signed(cw), **rl)
        wg = Signal(self._ww + 1, **rl)
        drain = Signal.like(d.drain, **rl)
        # Fused MaxPool window position, and the window's origin: the pixel origin plus
        # (wy*wsh, wx*wsw).
        wy, wy_l = looped("wy", len(d.qh_m1))
        wx, wx_l = looped("wx", len(d.qw_m1))
        wiy, wix = Signal(signed(cw + 1), **rl), Signal(signed(cw + 1), **rl)
        # Window positions left in the layer, and its flag (0 left): the layer's end is one
        # flag, not an AND of every loop's.
        nwin, nwin_l = looped("nwin", len(d.nwin_m1))
        # Word offsets, kept pre-multiplied by ich so there is no multiply (modulo 2**aw:
        # exact for every address read): output pixel origin ``p0``, window origin ``wa``,
        # kernel offset ``ka`` (with ci). Each moves by a descriptor step (``a_*``).
        p0, wa, ka = (Signal(self._aw, name=n, **rl) for n in ("p0", "wa", "ka"))

        running, running_nx = Signal(), Signal()
        s_act_nx = Signal()
        m.d.comb += self.running.eq(running)
        active = running & s_act
        iy = Signal(signed(cw + 1))
        ix = Signal(signed(cw + 1))
        m.d.comb += [iy.eq(wiy + ky), ix.eq(wix + kx)]
        inrange = (iy >= 0) & (iy < d.ih) & (ix >= 0) & (ix < d.iw)
        sel = (d.kind == KIND_CODES["add"]) & s_one
        # Address stages: two adds, then the sum; the address register drives the RAM.
        a_pix = Signal(self._aw, **rl)
        a_c = Signal(self._aw, **rl)
        a_flags = Signal(STEP_FLAGS)
        a_addr = Signal(self._aw, **rl)
        a_w = Signal.like(self.w_addr, **rl)
        a_pk = Signal(**rl)
        b_flags = Signal(STEP_FLAGS)
        m.d.sync += [
            a_pix.eq(wa + ka),
            a_c.eq(Mux(sel, d.in2_base, d.in_base) + cs),
            a_flags.eq(Cat(active, s_first, s_klast, inrange, sel, w_first, wx_l & wy_l)),
            a_w.eq(wg + step),
        ]
        # The weight address drives the ROM beside the RAM's; the accelerator registers the
        # ROM's data as it does the RAM's.
        m.d.sync += [a_addr.eq(a_pix + a_c), self.w_addr.eq(a_w), b_flags.eq(a_flags)]
        # The step reads the RAM: active, in range, not a streamed layer (registered as the flags).
        a_rd, b_rd = Signal(), Signal()
        m.d.sync += [a_rd.eq(active & inrange & ~d.stream) if istream is not None else a_rd.eq(active & inrange),
                     b_rd.eq(a_rd)]
        if p.w_pack > 1:  # the weight word is packed (beside w_addr: the ROM address stage)
            m.d.sync += [a_pk.eq(d.wpk), self.w_pk.eq(a_pk)]
        if p.narrow_lrs:  # the step's weights are stored narrow (beside w_addr, as w_pk)
            a_lr = Signal.like(self.w_lr, **rl)
            m.d.sync += [a_lr.eq(d.wlr), self.w_lr.eq(a_lr)]
        # Data stage: flags line up with the memory output after its data registers.
        m.d.sync += Cat(self.d_valid, self.d_first, self.d_last, self.d_inrange, self.d_sel,
                        self.d_wfirst, self.d_wlast).eq(_delay(m, b_flags, READ_DATA_REGS, "c_flags", reset_less=False))
        if istream is not None:
            # RUN steps that read take a beat: ``running & stream & s_act``, a cycle ahead (the
            # descriptor does not change while a layer runs, nor from SETUP0 on).
            self._stream(m, istream, in_lanes, running_nx & d.stream & s_act_nx, ci, wiy, wix, d)
        else:
            m.d.comb += self.d_mask.eq(-1)

        # ---- read port mux: RUN reads from the address register, OUTPUT from the gather ---------
        out_issue = Signal()
        with m.If(out_issue):
            m.d.comb += [self.rd_addr.eq(out_addr), self.rd_en.eq(1)]
        with m.Else():
            # Only a step that reads a word in range reads the RAM (its flags are registered
            # beside the address): the schedule keeps those apart from any write of the word,
            # and the RAM's Verilog relies on it (no read-write collision, rtl/act_buffer.py).
            m.d.comb += [self.rd_addr.eq(a_addr), self.rd_en.eq(b_rd)]

        # Advance enables: ANDs of registered flags (no compare in between).
        en_ci, en_kx, en_ky, en_wx, en_wy, en_g, en_ox, en_oy, run_last = (
            Signal(name=n) for n in ("en_ci", "en_kx", "en_ky", "en_wx", "en_wy", "en_g", "en_ox", "en_oy",
                                     "run_last"))
        m.d.comb += [en_ci.eq(running & s_act), en_kx.eq(en_ci & ci_l), en_ky.eq(en_kx & kx_l),
                     en_wx.eq(running & s_last), en_wy.eq(en_wx & wx_l), en_g.eq(en_wy & wy_l),
                     en_ox.eq(en_g & g_l), en_oy.eq(en_ox & ox_l), run_last.eq(en_wx & nwin_l)]

        def loop(c, last, f, en, clear=0, down=False):
            """Loop ``c`` over ``f`` values, restarting on ``init`` or when ``en`` on ``last`` or ``clear``."""
            with m.If(self.init | (en & (last | clear))):
                m.d.sync += [c.eq(d[f + "_m1"] if down else 0), last.eq(d.is1[LOOPS.index(f)])]
            with m.Elif(en):
                m.d.sync += ([c.eq(c - 1), last.eq(c == 1)] if down else
                             [c.eq(c + 1), last.eq(c == d[f + "_m2"])])

        # Loop counters live outside the FSM (initialised by ``init``, advanced while
        # ``running``): flatter logic, shorter Verilog, shorter paths.
        # Kernel walk: ci fastest, then kx, then ky; wraps to zero after k steps.
        loop(ci, ci_l, "cis", en_ci)
        loop(kx, kx_l, "kw", en_kx)
        loop(ky, ky_l, "kh", en_ky)
        # Window position (fused MaxPool), then tile, then pixel.
        loop(wx, wx_l, "qw", en_wx, down=True)
        loop(wy, wy_l, "qh", en_wy, down=True)
        loop(g, g_l, "nt", en_g, down=True)
        loop(gi, gi_l, "tpg", en_g, clear=g_l, down=True)
        loop(ox, ox_l, "ow", en_ox, down=True)
        with m.If(self.init):
            m.d.sync += [nwin.eq(d.nwin_m1), nwin_l.eq(d.nwin_m1 == 0)]
        with m.Elif(en_wx):
            m.d.sync += [nwin.eq(nwin - 1), nwin_l.eq(nwin == 1)]
        # step: s_klast is set from k - 2 unless already set (a one-step kernel).
        with m.If(self.init | en_wx):
            m.d.sync += [step.eq(0), s_last.eq(d.is1[LOOPS.index("t")]),
                         s_klast.eq(d.is1[LOOPS.index("k")]), s_first.eq(1), s_one.eq(0)]
        with m.Elif(running):
            m.d.sync += [step.eq(step + 1), s_last.eq(step == d.t_m2),
                         s_klast.eq(~s_klast & (step == d.k_m2)), s_first.eq(0), s_one.eq(s_first)]
        # ``running`` and ``s_act`` from their next values (the stream's ``in_ready`` reads them).
        m.d.comb += [s_act_nx.eq(Mux(self.init | en_wx, 1, Mux(running, s_act & ~s_klast, s_act))),
                     running_nx.eq(Mux(self.init, 1, Mux(run_last, 0, running)))]
        m.d.sync += [s_act.eq(s_act_nx), running.eq(running_nx)]
        with m.If(en_ci):
            m.d.sync += ka.eq(Mux(en_ky & ky_l, 0, ka + Mux(ci_l, Mux(kx_l, d.a_krow, d.a_kx), 1)))
        # The window origin restarts from the pixel origin's next value.
        ix0_next = Mux(en_ox, Mux(ox_l, d.pl_neg, ix0 + d.sw), ix0)
        p0_next = Mux(en_ox, p0 + Mux(ox_l, d.a_orow, d.a_sw), p0)
        with m.If(en_wx):
            m.d.sync += [wix.eq(Mux(wx_l, ix0_next, wix + d.wsw)),
                         wa.eq(Mux(wx_l & wy_l, p0_next, wa + Mux(wx_l, d.a_wrow, d.a_wsw))),
                         w_first.eq(wx_l & wy_l)]
        with m.If(en_wy):
            m.d.sync += wiy.eq(Mux(wy_l, Mux(en_oy, iy0 + d.sh, iy0), wiy + d.wsh))
        with m.If(en_g):
            m.d.sync += [wg.eq(Mux(g_l, d.w_base, wg + (d.wk if "wk" in self._fields else d.k))), cs.eq(Mux(g_l, 0, Mux(gi_l, cs + d.cis, cs)))]
        with m.If(en_ox):
            m.d.sync += [ix0.eq(ix0_next), p0.eq(p0_next)]
        with m.If(en_oy):
            m.d.sync += iy0.eq(iy0 + d.sh)
        with m.If(self.init):  # after the advances: init wins
            m.d.sync += [
                cs.eq(0), iy0.eq(d.pt_neg), ix0.eq(d.pl_neg), wg.eq(d.w_base), wiy.eq(d.pt_neg),
                wix.eq(d.pl_neg), p0.eq(d.a_org), wa.eq(d.a_org), ka.eq(0), w_first.eq(1),
            ]

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [layer.eq(0), issued.eq(0), self.out_valid.eq(0)]
                    m.d.sync += out_addr.eq(tout.base)
                    if istream is None:
                        m.d.sync += [in_addr.eq(tin.base), in_active.eq(1), to_lead.eq(lead)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                # Until the first ``input_lead`` beats are in (counting this cycle's).
                with m.If((to_lead == 0) | (take & (to_lead == 1))):
                    m.next = "SETUP0"
            with m.State("SETUP0"):
                m.next = "SETUP1"
            with m.State("SETUP1"):
                # Descriptor word is valid now: initialise the loop counters.
                m.d.comb += self.init.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(run_last):
                    m.d.sync += drain.eq(d.drain)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(drain == 1):
                    with m.If(layer == n_layers - 1):
                        m.next = "OUTPUT"
                    with m.Else():
                        m.d.sync += layer.eq(layer + 1)
                        m.next = "SETUP0"
                with m.Else():
                    m.d.sync += drain.eq(drain - 1)
            with m.State("OUTPUT"):
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
                m.next = "IDLE"
        # Decoded outside the FSM: plain assignments, defined from time 0 in every simulator
        # (the accelerator's cycle counter reads them).
        m.d.comb += [self.busy.eq(~fsm.ongoing("IDLE")), self.done.eq(fsm.ongoing("DONE"))]
        return m


def _delay(m: Module, v: Value, n: int, name: str, reset_less: bool = True) -> Value:
    """``v`` through ``n`` registers (``v`` itself when ``n`` is 0)."""
    for i in range(n):
        r = Signal(len(v), name=f"{name}_{i}", reset_less=reset_less)
        m.d.sync += r.eq(v)
        v = r
    return v
