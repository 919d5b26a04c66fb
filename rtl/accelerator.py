"""The accelerator top level: one Program on one PE x SIMD array, with streams and a cycle counter.

Datapath (every block pipelined; latencies are the Program's ``latency`` dict)::

    controller --addr--> act RAM --word--> [pad substitution] --+--> MAC array (PE x SIMD) --> max-merge --+
               --addr--> weight ROM ------------------------------'                                        |
                                                          +--> pool unit (max/sum/add) --------------------+
                                                                                                           v
    act RAM <--write-- LUT <-- requantizer <-- pre-stage (bias, Add mults) <-- channel ROM <-- serializer

The serializer feeds ``rq_lanes`` requantizers (and LUTs), a group of that many channels
of one word per cycle; the controller spends ``t >= nb / (rq_lanes*qh*qw)`` cycles per tile
so the serializer is always free, which makes the cycle count the closed form of
:attr:`hwflow.schedule.Program.cycles`. The max-merge stage holds the PE results over a
fused MaxPool's window (compare, registered, then load: ``MERGE_CYCLES`` stages, the window's
results that far apart; without a fused window in the program it is a one-cycle copy). A streamed first layer
takes its words from the input stream instead of the RAM (lanes in the padding masked to
the pad value); packed depthwise weight words are unpacked onto the diagonal before the
array (:meth:`Accelerator._unpack`). A depthwise ``dw`` step runs on the depthwise unit
(:mod:`hwflow.rtl.dw_array`) beside the array: it takes the same memory words and the
unpacked diagonal (one tap's weights, lane ``s`` for channel ``s``), and hands the back end
one output pixel's ``simd`` channels a load (the serializer's depthwise order; the back end
has ``rq_lanes == simd`` then). An ``xnor`` step runs on the XNOR-popcount unit
(:mod:`hwflow.rtl.xnor_array`) beside the array: it takes the same memory words and a word
of its own weight ROM (``xrows x simd`` sign bits, addressed by the controller's weight
address, its data registered as the weight ROM's), and hands the back end its ``xrows``
accumulators in chunks of the serializer's ``max(pe, simd)`` entries, one every
``entries / rq_lanes`` cycles (the back end counts each as a tile).

Layers overlap: the controller starts the next layer while the previous one's results
are still in flight. Every stage therefore takes its layer's fields from where its data
came from: the units from the descriptor delayed to the data (``da``), the serializer and
everything after it from the back-end descriptor ``bd``, switched when a layer's first
result vector arrives (the serializer takes every vector a cycle later, from a register).

Stalls: in a cycle in which the input stream stalls (``in_ready`` high, ``in_valid`` low;
the controller's ``stall``) every register and memory port of the core holds (Amaranth's
``EnableInserter``; the activation RAM and weight memory, Verilog modules, take the enable
as a port), so the core runs the schedule in lockstep with the stream; only the cycle
counter runs on. See
:mod:`hwflow.rtl.controller` and the cycle model in :mod:`hwflow.schedule.program`.

Ports (Amaranth adds ``clk`` and ``rst``): ``start`` In(1), ``busy`` Out(1), ``done``
Out(1), ``cycles`` Out(32), ``in_valid`` In(1), ``in_ready`` Out(1), ``in_data``
In(simd * in_bits), ``out_valid`` Out(1), ``out_ready`` In(1), ``out_data``
Out(simd * out_bits). Protocol: pulse ``start``; stream ``input_beats`` words in; the core
computes and streams ``output_beats`` words out; ``done`` pulses for one cycle, when
``cycles`` equals the cycles since ``start`` was sampled (stall cycles included). A word is ``simd`` lanes of
two's-complement codes, lane 0 in the low bits, holding the codes the Program's
``stream_maps()`` name (:func:`hwflow.sim.beats.pack` / ``unpack`` convert).

Weight load (only when ``program.weight_load``: the weights are in a memory the
bitstream cannot initialise, :mod:`hwflow.rtl.weight_ram`): ``wload_valid`` In(1),
``wload_ready`` Out(1), ``wload_data`` In(program.weight_word_bits), ``loaded`` Out(1).
After reset stream the ``weight_words`` words of the weight image in, word 0 first
(``BUILD/weights_load.hex``); ``loaded`` rises the cycle after the last one and ``start``
is ignored until it has. The load takes ``program.load_cycles`` cycles with a
never-stalling source; an inference's cycles are unchanged by it.
"""

from __future__ import annotations

from amaranth import *
from amaranth.back import verilog
from amaranth.hdl import EnableInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..schedule.descriptor import BACK_FIELDS, KIND_CODES, UNIT_FIELDS
from ..schedule.estimate import read_banks
from ..schedule.program import MERGE_CYCLES, READ_DATA_REGS, Program
from ..schedule.widths import CYCLE_BITS, addr_bits, bias_bits
from ._lanes import replicate
from .act_buffer import ActBuffer
from .argmax import ArgmaxUnit
from .channel_rom import ChannelRom
from .codebook import attach_codebook
from .controller import Controller, _delay
from .dw_array import DwArray
from .lut import Lut
from .mac_array import MacArray
from .pool import PoolUnit
from .requantizer import Requantizer
from .serializer import Serializer
from ._verilog_text import compress_zero_init
from .weight_ram import WeightRam
from .weight_rom import WeightRom
from .xnor_array import XnorArray

__all__ = ["Accelerator", "to_verilog", "verilog_files"]


class Accelerator(wiring.Component):
    """The generated accelerator for ``program``.

    Parameters
    ----------
    program : hwflow.schedule.Program
    rom_module, act_module, xrom_module : str, optional
        Only for :func:`to_verilog`: the weight ROM (or loaded weight RAM), the activation
        RAM and the XNOR unit's ROM become instances of these Verilog modules (see
        :class:`~hwflow.rtl.weight_rom.WeightRom`, :class:`~hwflow.rtl.act_buffer.ActBuffer`).
    """

    def __init__(self, program, *, rom_module: str | None = None, act_module: str | None = None,
                 xrom_module: str | None = None):
        if not isinstance(program, Program):
            raise TypeError(f"Accelerator needs a hwflow.schedule.Program, not {program!r}")
        self._p = program
        self._rom_module = rom_module
        self._act_module = act_module
        self._xrom_module = xrom_module
        self.wrom = self.act = self.xrom = None
        load = {"wload_valid": In(1), "wload_ready": Out(1), "wload_data": In(program.weight_word_bits),
                "loaded": Out(1)} if program.weight_load else {}
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "cycles": Out(CYCLE_BITS),
            "in_valid": In(1),
            "in_ready": Out(1),
            "in_data": In(program.simd * program.in_bits),
            "out_valid": Out(1),
            "out_ready": In(1),
            "out_data": Out(program.simd * program.out_bits),
            **load,
        })

    @property
    def program(self):
        return self._p

    def elaborate(self, platform):
        m = Module()
        p = self._p
        simd, pe = p.simd, p.pe
        lat = p.latency
        has_add = any(l.kind == "add" for l in p.layers)
        dws = [l for l in p.layers if l.kind == "dw"]
        has_mac = any(l.kind in ("mac", "dw") for l in p.layers)  # dw steps read the weight ROM too

        m.submodules.ctrl = ctrl = Controller(p)
        m.submodules.act = act = ActBuffer(p.act_words, simd, p.abits, verilog_module=self._act_module,
                                           banks=read_banks(p.act_words, simd * p.abits, p.abits, p.act_kind))
        self.act = act
        assert act.write_latency == lat["write"], lat
        d = ctrl.desc
        code_bits = d.lo.shape().width
        aw = act.wr_addr.shape().width

        m.d.comb += [
            self.busy.eq(ctrl.busy), self.done.eq(ctrl.done),
            ctrl.in_valid.eq(self.in_valid), self.in_ready.eq(ctrl.in_ready), ctrl.in_data.eq(self.in_data),
            self.out_valid.eq(ctrl.out_valid), ctrl.out_ready.eq(self.out_ready),
            act.rd_addr.eq(ctrl.rd_addr), act.rd_en.eq(ctrl.rd_en),
        ]
        if not p.argmax:
            m.d.comb += self.out_data.eq(Cat(*(act.rd_data.word_select(i, p.abits)[:p.out_bits] for i in range(simd))))

        # ---- unit inputs: memory word with padding replaced by the pad value ----------------
        # Fields used where the data arrives come from the descriptor as it was when the read
        # was issued (the controller may already be on the next layer).
        da = {f: d[f] for f in UNIT_FIELDS if f in ctrl.fields}
        assert ctrl.latency == lat["issue"], (ctrl.latency, lat)
        for i in range(ctrl.latency):
            nxt = {f: Signal(v.shape(), name=f"da{i}_{f}", reset_less=True) for f, v in da.items()}
            m.d.sync += [nxt[f].eq(v) for f, v in da.items()]
            da = nxt
        x = Signal(simd * p.abits)
        pv = replicate(da["pv"], simd, p.abits)
        # The RAM's data registers (READ_DATA_REGS; the controller's latency counts them): the
        # first is the RAM's rd_q, one per bank before its bank mux (rtl/act_buffer.py), so a
        # block RAM's clock-to-out ends at a register, not in the mux or a unit.
        assert READ_DATA_REGS >= 1, READ_DATA_REGS
        ram = Mux(ctrl.d_inrange, _delay(m, act.rd_q, READ_DATA_REGS - 1, "act_q"), pv)
        if p.input_stream is not None:
            # The streamed first layer reads the input stream; its lanes in the padding take
            # the pad value.
            beat = Cat(*(Mux(ctrl.d_mask[i], ctrl.d_sdata.word_select(i, p.abits), da["pv"][:p.abits])
                         for i in range(simd)))
            m.d.comb += x.eq(Mux(da["stream"], beat, ram))
        else:
            m.d.comb += x.eq(ram)

        vec = max(pe, simd)
        va = Signal(vec * p.acc_bits)
        vb = Signal(vec * p.acc_bits)
        load = Signal()
        is_mac = da["kind"] == KIND_CODES["mac"]
        is_dw = da["kind"] == KIND_CODES["dw"]
        is_xnor = da["kind"] == KIND_CODES["xnor"]

        if p.weight_load:
            # Weights in a memory the bitstream cannot initialise: loaded first, start waits for it.
            m.submodules.wrom = wrom = WeightRam(p.weight_words, p.weight_word_bits,
                                                 ram_style=p.weight_kind.ram_style, verilog_module=self._rom_module)
            m.d.comb += [wrom.load_valid.eq(self.wload_valid), self.wload_ready.eq(wrom.load_ready),
                         wrom.load_data.eq(self.wload_data), self.loaded.eq(wrom.loaded),
                         ctrl.start.eq(self.start & wrom.loaded)]
        else:
            m.d.comb += ctrl.start.eq(self.start)
            if has_mac:
                m.submodules.wrom = wrom = WeightRom(p.weights, p.stored_wbits, verilog_module=self._rom_module,
                                                     banks=p.rom_banks and p.rom_banks.depths,
                                                     cols=p.rom_banks and p.rom_banks.cols)
        self.wrom = wrom if has_mac or p.weight_load else None
        if has_mac:
            m.submodules.mac = mac = MacArray(pe, simd, p.wbits, p.abits, p.acc_bits, dsp_mults=p.dsp_mults,
                                              lane=p.lane, cbits=p.cbits)
            # The ROM's data registers, as the RAM's (READ_DATA_REGS), the first the ROM's own
            # ``q`` (before its banks' multiplexer); a loaded weight RAM is one memory.
            wdata = (_delay(m, wrom.q, READ_DATA_REGS - 1, "wrom_q") if isinstance(wrom, WeightRom)
                     else _delay(m, wrom.data, READ_DATA_REGS, "wrom_q"))
            a, w = x, wdata
            ctl = [ctrl.d_valid & is_mac, ctrl.d_first, ctrl.d_last, ctrl.d_wfirst, ctrl.d_wlast]
            if p.ibits:  # weight sharing: ROM indices -> weights (rtl/codebook.py), the rest delayed to match
                w, (a, *ctl) = attach_codebook(m, p, wdata, _delay(m, ctrl.w_addr, READ_DATA_REGS, "cb_addr"),
                                               [x, *ctl])
            assert mac.latency + lat.get("codebook", 0) == lat["mac"], (mac.latency, lat)
            waddr = ctrl.w_addr
            if p.w_pack > 1:
                waddr, w = self._unpack(m, ctrl, wdata)
            if p.narrow_lrs:
                waddr, w = self._narrow(m, ctrl, waddr, w)
            m.d.comb += [
                wrom.addr.eq(waddr),
                mac.a.eq(a), mac.w.eq(w),
                mac.valid.eq(ctl[0]), mac.first.eq(ctl[1]), mac.last.eq(ctl[2]),
            ]
        m.submodules.pool = pool = PoolUnit(simd, p.abits, p.acc_bits, with_add=has_add)
        assert pool.latency == lat["pool"]
        m.d.comb += [
            pool.x.eq(x), pool.kind.eq(da["kind"]), pool.za.eq(da["za"]), pool.zb.eq(da["zb"]),
            pool.valid.eq(ctrl.d_valid & ~is_mac & ~is_dw & ~is_xnor), pool.first.eq(ctrl.d_first), pool.last.eq(ctrl.d_last),
            pool.sel.eq(ctrl.d_sel),
        ]
        if has_mac:
            # Max-merge over a fused MaxPool's window (a 1 x 1 window just copies): the window
            # flags travel beside the MAC pipeline, delayed by its latency.
            wflags = Cat(ctl[3], ctl[4])
            for i in range(mac.latency):
                nxt = Signal(2, name=f"wflags_{i}")
                m.d.sync += nxt.eq(wflags)
                wflags = nxt
            hold = [Signal(signed(p.acc_bits), name=f"hold_{i}", reset_less=True) for i in range(pe)]
            merged, merged_nx = Signal(), Signal()
            accs = [mac.acc.word_select(i, p.acc_bits).as_signed() for i in range(pe)]
            pooled = any(l.kind == "mac" and l.qh * l.qw > 1 for l in p.layers)
            assert lat["merge"] == (MERGE_CYCLES if pooled else 1) and MERGE_CYCLES == 2, lat  # the stages below
            if pooled:
                # Two stages: the comparison with the held maximum is registered (``take``),
                # then loads the hold register, so the carry chain and the hold registers'
                # enable are not one path. The schedule keeps a window's results MERGE_CYCLES
                # apart (tile_cycles), so each comparison sees the previous result's hold.
                take = Signal(pe)
                acc_r = [Signal.like(a, name=f"acc_r_{i}", reset_less=True) for i, a in enumerate(accs)]
                valid_r, last_r = Signal(), Signal()
                m.d.sync += [valid_r.eq(mac.out_valid), last_r.eq(wflags[1])]
                m.d.sync += [r.eq(a) for r, a in zip(acc_r, accs)]
                m.d.sync += take.eq(Cat(*(wflags[0] | (a > h) for a, h in zip(accs, hold))))
                with m.If(valid_r):
                    for i, h in enumerate(hold):
                        with m.If(take[i]):
                            m.d.sync += h.eq(acc_r[i])
                m.d.comb += merged_nx.eq(valid_r & last_r)
            else:
                # Without a fused window (every MAC step 1 x 1) each result is a window's
                # first: no comparator, which would be the slowest path of a small device.
                with m.If(mac.out_valid):
                    m.d.sync += [h.eq(a) for h, a in zip(hold, accs)]
                m.d.comb += merged_nx.eq(mac.out_valid & wflags[1])
            m.d.sync += merged.eq(merged_nx)
        if dws:
            # The depthwise unit (rtl/dw_array.py): its weights are the tap's diagonal.
            m.submodules.dw = dw = DwArray(max(l.dwr for l in dws), simd, max(l.k for l in dws), dws[0].dkw,
                                           p.abits, p.wbits, p.acc_bits, strides=tuple({l.dsh for l in dws}),
                                           count_bits=max(len(da["dw_cols_m1"]), len(da["dw_groups_m1"])))
            assert dw.latency == lat["dw"] and all(l.dkw == dws[0].dkw for l in dws), lat
            m.d.comb += [
                dw.x.eq(x), dw.w.eq(Cat(*(w.word_select(s * simd + s, p.stored_wbits) for s in range(simd)))),
                dw.valid.eq(ctrl.d_valid & is_dw), dw.first.eq(ctrl.d_first), dw.last.eq(ctrl.d_last),
                dw.chunk.eq(ctrl.d_wfirst), dw.kh_m1.eq(da["dw_kh_m1"]), dw.kw_m1.eq(da["dw_kw_m1"]),
                dw.cols_m1.eq(da["dw_cols_m1"]), dw.groups_m1.eq(da["dw_groups_m1"]), dw.rows_n.eq(da["dw_rows"]),
                dw.last_rows.eq(da["dw_last_rows"]), dw.sh2.eq(da["dw_sh2"]), dw.sw2.eq(da["dw_sw2"]),
            ]
        if p.xrows:
            # The XNOR-popcount unit (rtl/xnor_array.py) and its own ROM, addressed and
            # registered as the weight ROM is.
            m.submodules.xrom = xrom = WeightRom(p.xweights, 1, verilog_module=self._xrom_module)
            self.xrom = xrom
            xch = next(l.xch for l in p.layers if l.kind == "xnor")
            m.submodules.xnor = xnor = XnorArray(p.xrows, simd, p.abits, p.xacc_bits, entries=xch,
                                                 gap=xch // p.rq_lanes)
            assert xnor.latency == lat["xnor"], lat
            m.d.comb += [
                xrom.addr.eq(ctrl.w_addr),
                xnor.a.eq(x), xnor.w.eq(_delay(m, xrom.data, READ_DATA_REGS, "xrom_q")),
                xnor.valid.eq(ctrl.d_valid & is_xnor), xnor.first.eq(ctrl.d_first), xnor.last.eq(ctrl.d_last),
            ]
        # A result vector comes from the array, the depthwise unit, the XNOR unit or the pool
        # unit (one at a time).
        if has_mac:
            m.d.comb += va.eq(Mux(merged, Cat(*hold), pool.a))
        else:
            m.d.comb += va.eq(pool.a)
        if dws:
            with m.If(dw.out_valid):
                m.d.comb += va.eq(dw.out)
        if p.xrows:
            with m.If(xnor.out_valid):  # each accumulator sign-extended to an entry
                xb = p.xacc_bits  # <= acc_bits: the accumulator range counts the xnor steps
                rows = [xnor.out.word_select(r, xb) for r in range(xch)]
                m.d.comb += va.eq(Cat(*(Cat(v, v[-1].replicate(p.acc_bits - xb)) for v in rows)))
        # Every unit that hands the back end a result vector: its valid flag and that flag's next value.
        sources = ([(pool.out_valid, pool.next_valid)] + ([(merged, merged_nx)] if has_mac else [])
                   + ([(dw.out_valid, dw.next_valid)] if dws else [])
                   + ([(xnor.out_valid, xnor.next_valid)] if p.xrows else []))
        m.d.comb += load.eq(Cat(*(v for v, _ in sources)).any())
        load_nx = Cat(*(nx for _, nx in sources)).any()
        if has_add:
            m.d.comb += vb.eq(pool.b)

        # ---- back-end descriptor -------------------------------------------------------------
        # The controller may start the next layer while this one's results are still on the
        # way to the RAM (the schedule shortens ``drain`` to the first safe cycle), so the
        # serializer and everything after it use ``bd``: the fields of the layer whose result
        # vectors are arriving. ``init`` queues the next layer's fields in ``nxt``; its first
        # ``load`` (counted: ``loads_m1`` per layer) moves them to ``bd``. The schedule
        # guarantees one queued layer at most (a layer's first load comes before the next
        # layer's ``init``) and that a layer's first load finds the back end empty.
        back = [f for f in BACK_FIELDS if f in ctrl.fields]
        nxt = {f: Signal(d[f].shape(), name=f"nxt_{f}", reset_less=True) for f in back}
        bd = {f: Signal(d[f].shape(), name=f"bd_{f}", reset_less=True) for f in back}
        left = Signal.like(d.loads_m1)  # loads of the current layer still to come
        fresh = Signal(init=1)          # the next load is a layer's first
        # ``first`` is ``load & fresh`` as a register, from their next values: it enables every
        # ``bd`` register, and from a gate after the units' valid flags that fan-out was the
        # critical path (DS-CNN fpga-medium: dw.busy -> load -> first -> bd_ng, 10.1 ns).
        # Its compares are registers beside the counts (``nxt_one``: nxt's loads_m1 == 0,
        # ``left_one``: left == 1), so its next value is two gates after the units' flags.
        first, fresh_nx = Signal(name="first"), Signal(name="fresh_nx")
        nxt_one, left_one = Signal(name="nxt_one"), Signal(name="left_one")
        m.d.comb += fresh_nx.eq(Mux(first, nxt_one, Mux(load, left_one, fresh)))
        m.d.sync += [fresh.eq(fresh_nx), first.eq(fresh_nx & load_nx)]
        with m.If(ctrl.init):
            m.d.sync += [nxt[f].eq(d[f]) for f in back]
            m.d.sync += nxt_one.eq(d["loads_m1"] == 0)
        # ``bd["kind"] == add`` as its own register, loaded with ``bd``: the pre-stage's operand
        # select (below) then starts at a flip-flop, not at a compare.
        bd_add = Signal(name="bd_add")
        with m.If(first):
            m.d.sync += [bd[f].eq(nxt[f]) for f in back]
            m.d.sync += bd_add.eq(nxt["kind"] == KIND_CODES["add"])
            m.d.sync += [left.eq(nxt["loads_m1"]), left_one.eq(nxt["loads_m1"] == 1)]
        with m.Elif(load):
            m.d.sync += [left.eq(left - 1), left_one.eq(left == 2)]
        # The serializer takes each result vector one cycle after it arrives, from a register:
        # ``bd`` has switched by then, and no path runs from ``load`` through it.
        load_r, first_r = Signal(), Signal()
        va_r, vb_r = Signal.like(va, reset_less=True), Signal.like(vb, reset_less=True)
        m.d.sync += [load_r.eq(load), first_r.eq(first)]
        with m.If(load):
            m.d.sync += va_r.eq(va)
            if has_add:
                m.d.sync += vb_r.eq(vb)

        # ---- serializer ---------------------------------------------------------------------
        L = p.rq_lanes
        dw_bits = max([len(bd[f]) for f in ("dw_ow", "dw_groups") if f in bd] + [1])
        m.submodules.ser = ser = Serializer(vec, simd, L, p.acc_bits, aw, addr_bits(p.bias.shape[0] // L),
                                            max(l.nt * l.nb if l.kind == "xnor" else l.cout for l in p.layers),
                                            with_b=has_add,
                                            dw_rows=max([l.dwr for l in dws] + [0]), dw_bits=dw_bits)
        if dws:
            m.d.comb += [
                ser.dw.eq(bd["kind"] == KIND_CODES["dw"]), ser.dw_rows.eq(bd["dw_rows"]),
                ser.dw_last_rows.eq(bd["dw_last_rows"]), ser.dw_ow.eq(bd["dw_ow"]),
                ser.dw_groups.eq(bd["dw_groups"]), ser.dw_row_step.eq(bd["dw_row_step"]),
                ser.dw_grp_step.eq(bd["dw_grp_step"]),
            ]
        m.d.comb += [
            ser.init.eq(first_r), ser.load.eq(load_r), ser.va.eq(va_r), ser.vb.eq(vb_r),
            ser.ng.eq(bd["ng"]), ser.nt.eq(bd["nt"]), ser.cout.eq(bd["cout"]), ser.ch_base.eq(bd["ch_word"]),
            ser.out_base.eq(bd["out_base"]), ser.och.eq(bd["och"]), ser.coff_chunk.eq(bd["coff_chunk"]),
            ser.coff_lane.eq(bd["coff_lane"]),
        ]

        # ---- pre-stage: channel ROM read, then bias add (or the Add's a*ma + b*mb) -----------
        # ``L`` lanes side by side from here to the write: a group of ``L`` consecutive
        # channels of one word; the write address, the group's first lane and its valid mask
        # travel as lane 0's tag.
        mbits = max(p.mbits, 1)
        tag_bits = aw + ser.lane.shape().width + L
        rqs = [Requantizer(p.post_bits, mbits, p.n_min, p.n_max, code_bits, tag_bits=tag_bits if i == 0 else 1,
                           rounding=p.rounding) for i in range(L)]
        nbits = rqs[0].n.shape().width
        m.submodules.crom = crom = ChannelRom(p.bias, p.m, p.n, bias_bits(p.bias), mbits, nbits, lanes=L)
        m.d.comb += crom.addr.eq(ser.gch)
        # the serializer's outputs wait for the ROM's data (its read and data registers)
        assert 1 + crom.latency + 1 == lat["pre"], (crom.latency, lat)
        # An Add's products are taken one cycle before the bias add (they need no channel ROM
        # data), so that the multipliers and the sum are not one path.
        a0, b0 = _delay(m, ser.a, crom.latency - 1, "pre_a"), _delay(m, ser.b, crom.latency - 1, "pre_b")
        a1 = _delay(m, a0, 1, "pre_a_last")
        v1 = _delay(m, ser.valid, crom.latency, "pre_v", reset_less=False)
        tag1 = _delay(m, Cat(ser.waddr, ser.lane, ser.mask), crom.latency, "pre_tag", reset_less=False)
        valid2, tag2 = Signal(), Signal.like(tag1)
        m.d.sync += [valid2.eq(v1), tag2.eq(tag1)]
        luts = []
        for i, rq in enumerate(rqs):
            ai = a1.word_select(i, p.acc_bits).as_signed()
            ch = crom.data[i]
            v2 = Signal(signed(p.post_bits), name=f"pre_{i}")
            m2, n2 = Signal(mbits, name=f"m_{i}"), Signal(signed(nbits), name=f"n_{i}")
            # the accumulator with the program's fixed fractional bias bits (wiring; none by default)
            acc_i = Cat(C(0, p.acc_shift), ai).as_signed() if p.acc_shift else ai
            if has_add:  # an Add's operands are codes less zero points: p.add_bits wide
                a0i, b0i = (v.word_select(i, p.acc_bits)[:p.add_bits].as_signed() for v in (a0, b0))
                pa = Signal(signed(p.add_bits + len(bd["ma"])), name=f"pa_{i}", reset_less=True)
                pb = Signal(signed(p.add_bits + len(bd["mb"])), name=f"pb_{i}", reset_less=True)
                m.d.sync += [pa.eq(a0i * bd["ma"]), pb.eq(b0i * bd["mb"])]
                m.d.sync += v2.eq(Mux(bd_add, pa + pb, acc_i + ch.bias))
            else:
                m.d.sync += v2.eq(acc_i + ch.bias)
            m.d.sync += [m2.eq(ch.m), n2.eq(ch.n)]

            # ---- requantizer, LUT ----------------------------------------------------------
            m.submodules[f"rq{i}" if L > 1 else "rq"] = rq
            assert rq.latency == lat["requant"], (rq.latency, lat)
            m.d.comb += [
                rq.valid.eq(valid2), rq.v.eq(v2), rq.m.eq(m2), rq.n.eq(n2), rq.tag.eq(tag2 if i == 0 else 0),
                rq.z.eq(bd["z_out"]), rq.lo.eq(bd["lo"]), rq.hi.eq(bd["hi"]),
            ]
            lut = Lut(p.lut, code_bits, tag_bits=tag_bits if i == 0 else 1)
            m.submodules[f"lut{i}" if L > 1 else "lut"] = lut
            m.d.comb += [
                lut.valid.eq(rq.out_valid), lut.q.eq(rq.q), lut.tag.eq(rq.out_tag),
                lut.en.eq(bd["lut_en"]), lut.base.eq(bd["lut_base"]), lut.lo.eq(bd["lo"]),
            ]
            luts.append(lut)

        # ---- write-back: the group's codes into lanes ``lane .. lane + L - 1`` of one word ----
        done = luts[0]
        waddr = done.out_tag[:aw]
        wlane = done.out_tag[aw:aw + ser.lane.shape().width]
        wmask = done.out_tag[aw + ser.lane.shape().width:]
        with m.If(ctrl.wr_en.any()):
            m.d.comb += [act.wr_addr.eq(ctrl.wr_addr), act.wr_en.eq(ctrl.wr_en), act.wr_data.eq(ctrl.wr_data)]
        with m.Elif(done.out_valid):
            # ``wlane`` is a multiple of ``L``: the codes repeated across the word, the
            # enables select the group's lanes.
            m.d.comb += [act.wr_addr.eq(waddr), act.wr_en.eq(wmask << wlane)]
            m.d.comb += act.wr_data.eq(replicate(Cat(*(l.out_q[:p.abits] for l in luts)), simd // L, L * p.abits))
        if p.argmax:  # one back-end lane (the scheduler's rule)
            self._argmax(m, ctrl, first, done, waddr, wlane)

        # ---- stalls hold the whole core; the cycle counter runs on ---------------------------
        top = Module()
        top.submodules.core = EnableInserter(~ctrl.stall)(m)
        # The memories are Verilog modules in to_verilog, outside the inserter: they take the enable.
        m.d.comb += act.en.eq(~ctrl.stall)
        if self.wrom is not None:
            m.d.comb += self.wrom.en.eq(~ctrl.stall)
        if self.xrom is not None:
            m.d.comb += self.xrom.en.eq(~ctrl.stall)
        # Its own run flag, not the core's ``busy``: a simulator's unknown core state before the
        # first start must not keep the count from starting.
        counter = Signal(CYCLE_BITS)
        counting = Signal()
        with top.If(~counting):
            with top.If(ctrl.start):  # the controller's start (after a weight load)
                top.d.sync += [counter.eq(1), counting.eq(1)]
        with top.Elif(ctrl.done):
            top.d.sync += counting.eq(0)
        with top.Else():
            top.d.sync += counter.eq(counter + 1)
        top.d.comb += self.cycles.eq(counter)
        return top


    def _unpack(self, m, ctrl, data):
        """``(rom_address, weights)`` with packed depthwise words (``w_pack`` diagonals a word,
        :meth:`~hwflow.schedule.lower.RomImages.add_weights`): for a ``wpk`` step the ROM word
        is the virtual address ``// w_pack`` and, later with the (registered) data, its slot
        ``% w_pack`` goes on the diagonal, zeros elsewhere; other steps pass through."""
        p = self._p
        pe, bits, lr = p.pe, p.stored_wbits, p.w_pack.bit_length() - 1
        addr = Mux(ctrl.w_pk, ctrl.w_addr >> lr, ctrl.w_addr)
        # The slot and the flag meet the data: the ROM read, then its data registers.
        slot = _delay(m, ctrl.w_addr[:lr], 1 + READ_DATA_REGS, "w_slot")
        pk = _delay(m, ctrl.w_pk, 1 + READ_DATA_REGS, "w_pk_d")
        diag = Signal(pe * bits, name="w_diag")
        with m.Switch(slot):
            for i in range(p.w_pack):
                with m.Case(i):
                    m.d.comb += diag.eq(data[i * pe * bits:(i + 1) * pe * bits])
        lanes = [Mux(pk, diag.word_select(r, bits) if r == c else C(0, bits), data.word_select(r * p.simd + c, bits))
                 for r in range(pe) for c in range(p.simd)]
        return addr, Cat(*lanes)

    def _narrow(self, m, ctrl, addr, data):
        """``(rom_address, weights)`` with narrow steps (``wlr > 0``: ``2**wlr`` words a ROM word
        at ``b = stored_wbits >> wlr`` bits, :meth:`~hwflow.schedule.lower.RomImages.narrow_lr`):
        the ROM word is the address ``>> wlr``; later, with the registered data, slot ``% 2**wlr``
        is sign-extended to the lanes' width (``b = 1``: the sign of ±1, ``{sign, 1}``); other
        steps (``wlr = 0``, a packed depthwise step too) pass through."""
        p = self._p
        n, big, lrs = p.pe * p.simd, p.stored_wbits, p.narrow_lrs
        rom = addr
        for lr in lrs:
            rom = Mux(ctrl.w_lr == lr, addr >> lr, rom)
        # The slot and the class meet the data: the ROM read, then its data registers.
        slot = _delay(m, ctrl.w_addr[:max(lrs)], 1 + READ_DATA_REGS, "w_nslot")
        lr_d = _delay(m, ctrl.w_lr, 1 + READ_DATA_REGS, "w_lr_d")
        out = Signal(n * big, name="w_narrow")
        m.d.comb += out.eq(data)
        with m.Switch(lr_d):
            for lr in lrs:
                b = big >> lr
                with m.Case(lr):
                    part = data.word_select(slot[:lr], n * b)
                    lanes = [Cat(C(1, 1), part[i].replicate(big - 1)) if b == 1 else
                             Cat(part[i * b:(i + 1) * b], part[(i + 1) * b - 1].replicate(big - b))
                             for i in range(n)]
                    m.d.comb += out.eq(Cat(*lanes))
        return rom, out

    def _argmax(self, m, ctrl, first, lut, waddr, wlane) -> None:
        """``--argmax``: a comparator on the last step's writes; the output word is its index.

        The back end knows which step's results it writes (``bd``); a step counter marks the
        last one when the controller initialises it, and the mark moves to the back end with
        the step's first result vector (which also clears the comparator).
        """
        p = self._p
        tout = p.tensors[p.output]
        m.submodules.argmax = am = ArgmaxUnit(lut.out_q.shape().width, max(1, (tout.size - 1).bit_length()))
        steps = Signal(range(len(p.layers) + 1))
        nxt_last, bd_last = Signal(), Signal()
        with m.If(self.start & ~ctrl.busy):
            m.d.sync += steps.eq(0)
        with m.Elif(ctrl.init):
            m.d.sync += [steps.eq(steps + 1), nxt_last.eq(steps == len(p.layers) - 1)]
        with m.If(first):
            m.d.sync += bd_last.eq(nxt_last)
        m.d.comb += [
            am.clear.eq(first & nxt_last),
            am.valid.eq(lut.out_valid & bd_last & ~ctrl.wr_en.any()),
            am.q.eq(lut.out_q),
            am.idx.eq((waddr - tout.base) * p.simd + wlane),
            self.out_data.eq(am.index),
        ]


def to_verilog(program, name: str = "hwflow_top") -> str:
    """Verilog text of the accelerator for ``program``, top module ``name`` (self-contained:
    the weight ROM's contents inline; :func:`verilog_files` puts them in a file)."""
    return _convert(program, name, False)[0]


def verilog_files(program, name: str = "hwflow_top") -> dict[str, str]:
    """The accelerator as files: ``{name}.v``, whose weight ROM reads ``{name}_wrom.hex``
    (``$readmemh``, one word a line; ``{name}_wrom_J.hex`` per bank of a banked ROM,
    :class:`~hwflow.rtl.weight_rom.WeightRom`) from beside it, and those files (none without a
    weight ROM). Simulators read them from their working directory: the runners copy them there."""
    text, top = _convert(program, name, True)
    files = {f"{name}.v": text}
    if isinstance(top.wrom, WeightRom):  # a loaded weight RAM has no contents
        files.update(top.wrom.hex_files(f"{name}_wrom"))
    if top.xrom is not None:
        files.update(top.xrom.hex_files(f"{name}_xrom"))
    return files


def _convert(program, name: str, rom_files: bool):
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"module name must be a Verilog identifier, not {name!r}")
    # The weight ROM and the activation RAM are emitted as their own small Verilog modules
    # (Amaranth would take seconds to turn a large memory's contents into netlist constants).
    top = Accelerator(program, rom_module=f"{name}_wrom", act_module=f"{name}_act", xrom_module=f"{name}_xrom")
    text = verilog.convert(top, name=name, emit_src=False)
    text = text.rstrip("\n") + "\n\n" + top.act.verilog()
    if isinstance(top.wrom, WeightRom):
        text = text.rstrip("\n") + "\n\n" + top.wrom.verilog(f"{name}_wrom" if rom_files else None)
    elif top.wrom is not None:
        text = text.rstrip("\n") + "\n\n" + top.wrom.verilog()
    if top.xrom is not None:
        text = text.rstrip("\n") + "\n\n" + top.xrom.verilog(f"{name}_xrom" if rom_files else None)
    return compress_zero_init(text), top

