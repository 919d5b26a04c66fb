"""Map a QGraph onto the PE x SIMD array: tiling, loop nests, memory map, exact cycles.

:func:`schedule` is a small driver: it picks the rewrites below, lays the activation
tensors out in the RAM (:mod:`.memory`), lowers every QLayer to one or more hardware steps
(:class:`LayerProgram`; one function per layer kind, :mod:`.lower`: ``conv``/``gemm`` ->
``mac``, ``maxpool``/``avgpool``/``lut`` -> ``max``/``sum``, ``add`` -> ``add``, ``concat``
-> a ``max`` copy per input) while the ROM images are built beside them, sizes the shared
datapath from the value ranges the lowered layers report, and sets each step's ``drain``.

Two rewrites save cycles where the array would idle (each chosen only if it is faster):

- a MaxPool right after a convolution is *fused* into it: per pooled pixel the array runs
  the conv at each window position and max-merges the accumulators (exact, the requantizer
  is monotonic); the conv output is never stored and the pool step disappears;
- a first convolution with few input channels takes a *streamed* input
  (:class:`~hwflow.schedule.program.InputStream`): the host sends its receptive fields
  im2col'd, ``simd`` taps a word, so a tile takes ``ceil(kh*kw*cin / simd)`` cycles instead
  of ``kh*kw*ceil(cin / simd)``, and the input is never stored.

Consecutive steps overlap: a step starts while the previous one's results are still in
the back end, as early as its reads allow (:func:`overlap_drains`). A step's output may
overwrite, a few rows behind, an input it is the last to read (:func:`_shares`): a residual
block then holds two feature maps, not three.

Each tile takes exactly ``t = max(k, ceil(nb / (lanes*qh*qw)))`` cycles (``nb`` = PE for
``mac``, SIMD otherwise; ``qh x qw`` the fused pool window, which makes ``t`` at least
``MERGE_CYCLES``: :func:`~hwflow.schedule.program.tile_cycles`; ``lanes`` = ``rq_lanes``): a
pixel's ``nb`` results are serialized through ``rq_lanes`` requantizers while the next tile
accumulates, so nothing ever stalls and the cycle count is a closed form
(:attr:`Program.cycles`). The scheduler picks the fewest lanes within 1 % of the most's
cycles: each lane costs a requantizer's DSPs. Where those overflow the target's DSPs (a
QONNX model's wide exact requantizers and two-scale Adds) it halves the lanes until they fit.

The weight memory goes in the first of the target's memory kinds where the design fits
(:func:`~hwflow.schedule.estimate.place_weights`): the block RAM as a ROM, else (iCE40
SPRAM) a RAM loaded once through the weight-load port.
"""

from __future__ import annotations

import numpy as np

from ..errors import FitError, OptionError, UnsupportedOpError
from ..prune.sharing import codebook_bits
from ..quant.arith import bits_for_range
from ..quant.qgraph import QGraph, QLayer
from ..quant.wformat import WeightFormat
from ..targets import load_target
from .budget import check_budget
from .estimate import (backend_lane_dsps, dsp_blocks, estimate, lane_costs, lut_mult_cost, place_weights,
                       pot_lane_cost, rom_banks)
from .lower import LOWERINGS, LowerContext, Lowered, RomImages, weight_pack, xnor_ok
from .memory import allocate, chunks
from .program import ISSUE_CYCLES, MERGE_CYCLES, SETUP_CYCLES, InputStream, LayerProgram, Program, TensorMap, tile_cycles
from .widths import tree_levels

__all__ = ["schedule", "arrange", "latencies", "drain_cycles", "overlap_drains", "mac_dsp_lanes", "ECP5_DSP_SHARE"]


def latencies(simd: int, mbits: int) -> dict[str, int]:
    """Pipeline latencies of the datapath blocks (the RTL asserts it matches them).

    ``mac``: array input to accumulator; ``pool``: lane unit (input register, lane op); ``pre``: the result vector's register
    in front of the serializer, per-channel ROM read and its data register, bias add;
    ``merge``: the max-merge stage every MAC result passes (one register; ``MERGE_CYCLES``
    in a program with a fused MaxPool window: :func:`schedule` sets it);
    ``requant``: requantizer (partial products and their sum, or, without a multiplier, neither;
    a coarse and a fine shift; round; the clamp's decisions, then its select:
    rtl/requantizer.py); ``lut``: LUT ROM read; ``write``: the activation RAM's write port
    register (rtl/act_buffer.py), before every write, the input stream's and the back end's;
    ``issue``: controller state to memory data at the datapath (address registers, synchronous
    read, data register: :data:`~hwflow.schedule.program.ISSUE_CYCLES`);
    ``dw``: the depthwise unit, a tap's inputs to the accumulator holding it (input register,
    operand registers, the LUT multipliers' first level, product, accumulator; rtl/dw_array.py).
    ``xnor``: the XNOR-popcount unit, its inputs to a tile's first result chunk (input
    register, popcount, accumulator, output buffer; rtl/xnor_array.py).
    ``mac`` = input register + two multiplier stages + ``ceil(log2(simd))`` tree registers +
    accumulator (the input register keeps block-RAM clock-to-out away from the multiplier;
    the DSP lanes' second input register sits beside the DSP, the LUT lanes' shift-add
    trees register their first level: rtl/mac_array.py).
    """
    return {
        "issue": ISSUE_CYCLES,
        "mac": 4 + tree_levels(simd),
        "merge": 1,
        "pool": 2,
        "pre": 4,
        "requant": 7 if mbits > 1 else 5,
        "lut": 1,
        "write": 1,
        "dw": 5,
        "xnor": 4,
    }


#: When the MAC lanes overflow an ECP5's DSPs, the share of its DSPs the design keeps
#: using (the rest of the lanes go to LUTs). Yosys does not pack registers into
#: MULT18X18D, and nextpnr keeps the fabric registers around a DSP by the logic: a DSP
#: across the chip then costs two long routes plus its 3.9 ns in one cycle. Measured
#: (digits784 MLP, PE 8 x SIMD 8, LFE5U-25F): 28 of 28 DSPs 84.9 MHz and 19 of 28
#: 99.6 MHz (critical path FF -> far MULT18X18D -> FF), 20 of 28 100.3 MHz, 3 of 28
#: (all lanes in LUTs) 105.8 MHz. Measured before ``hwflow synth`` packed those registers
#: into the blocks (:mod:`hwflow.synth.ecp5_dsp`, wave 7); not measured since, so kept.
ECP5_DSP_SHARE = 0.5


def mac_dsp_lanes(prog: Program, target) -> int:
    """MAC lanes that multiply on DSPs (``Program.dsp_mults``); the others use LUTs.

    All ``pe * simd`` lanes when the target has no DSP limit or they fit in the DSPs the
    requantizer and control leave; else as many as fit. On ECP5 the DSPs used stay within
    :data:`ECP5_DSP_SHARE` of the device's: with the registers around a MULT18X18D in the
    fabric, a DSP far from its registers cost ~3 ns of routing each way (the default 4x4
    CNN on the LFE5U-25F: 18 DSPs 95-105 MHz, 14 DSPs + 4 LUT lanes 113 MHz; measured before
    :mod:`hwflow.synth.ecp5_dsp` packed them into the blocks).
    ``prog.estimate`` must count all lanes.
    """
    nmul = prog.pe * prog.simd
    per = dsp_blocks(prog.wbits, prog.abits, target.family)
    budget = int(target.dsps * ECP5_DSP_SHARE) if target.dsps is not None and target.family == "ecp5" \
        else target.dsps
    if budget is None or not per or prog.estimate["dsps"] <= budget:
        return nmul
    left = max(0, budget - (prog.estimate["dsps"] - nmul * per))
    return min(nmul, left // per)


def drain_cycles(lat: dict[str, int], kind: str, ng: int, t: int, k: int) -> int:
    """Cycles after a step's last tile until its last code is written and readable.

    The last read is issued ``t - k`` cycles before the tile ends; its data arrives ``issue``
    cycles later, its results leave the unit, are serialized (``ng`` groups of codes) and
    pass pre-stage, requantizer, LUT and the write register. One more cycle covers the write
    (the output stream reads straight from its counters, so it is the tightest reader).
    """
    unit = _unit_latency(lat, kind)
    return max(1, unit + ng + _back(lat) + lat["issue"] - (t - k))


def _back(lat: dict[str, int]) -> int:
    """Cycles from a result vector's load into the back end to its first code's write."""
    return 1 + lat["pre"] + lat["requant"] + lat["lut"] + lat["write"]


def _unit_latency(lat: dict[str, int], kind: str) -> int:
    """Cycles from memory data to a result vector: the array and max-merge, the XNOR unit, or
    the pool unit."""
    if kind == "xnor":
        return lat["xnor"]
    return lat["mac"] + lat["merge"] if kind == "mac" else lat["pool"]


def _dw_loads(lat: dict[str, int], l: LayerProgram) -> tuple[np.ndarray, np.ndarray]:
    """``(cycle, address)`` of each result vector of a ``dw`` step, in order (RUN cycles from
    its first; the word it is written to).

    Per chunk ``g``, row group ``r0``, output column ``oc``: the unit computes when input
    column ``oc*dsw + dkw - 1`` is in, during the next column's first ``dkh*dkw`` steps (from
    its first data, ``issue`` after the step), and hands the group's rows to the back end one
    a cycle, ``dw`` + 1 cycles after the last tap (rtl/dw_array.py).
    """
    g, grp, oc, r = np.meshgrid(np.arange(l.nt), np.arange(l.qh), np.arange(l.dow), np.arange(l.dwr), indexing="ij")
    ok = grp * l.dwr + r < l.doh
    col = (g * l.qh + grp) * l.qw + oc * l.dsw + l.dkw - 1
    when = (col + 1) * l.t + lat["issue"] + l.dkh * l.dkw + lat["dw"] + r
    addr = l.out_base + ((grp * l.dwr + r) * l.dow + oc) * l.och + g
    return when[ok].astype(np.int64), addr[ok].astype(np.int64)


def _load_times(lat: dict[str, int], l: LayerProgram) -> np.ndarray:
    """RUN cycle (from the layer's first) in which each result vector reaches the back end:
    one per pixel and tile, after the last read of its last window position (a ``dw`` step:
    :func:`_dw_loads`)."""
    if l.kind == "dw":
        return _dw_loads(lat, l)[0]
    win = l.qh * l.qw
    last_read = (np.arange(l.oh * l.ow * l.nt) * win + win - 1) * l.t + l.k - 1
    done = last_read + lat["issue"] + _unit_latency(lat, l.kind)
    if l.kind == "xnor":  # a tile's chunks, ``xch / lanes`` (= ng * xch / nb) cycles apart
        gap = l.ng * l.xch // l.nb
        return (done[:, None] + np.arange(l.nb // l.xch)[None, :] * gap).reshape(-1)
    return done


def _write_trace(lat: dict[str, int], l: LayerProgram, simd: int, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(cycle, address)`` of every activation write of ``l`` (RUN cycles from its first):
    each load's ``nb`` codes leave the back end ``lanes`` a cycle (a ``dw`` step's load is one
    word)."""
    back = _back(lat)
    if l.kind == "dw":
        when, addr = _dw_loads(lat, l)
        return when + back, addr
    t_load = _load_times(lat, l)
    loads = len(t_load)
    ne = l.xch if l.kind == "xnor" else l.nb  # results a load (an XNOR tile's in chunks)
    per_pix = l.nt * (l.nb // ne)
    co = (np.arange(loads) % per_pix)[:, None] * ne + np.arange(ne)[None, :]
    pix = (np.arange(loads) // per_pix)[:, None]
    ok = co < l.cout
    addr = (l.out_base + pix * l.och + (l.coff + co) // simd)[ok]
    when = (t_load[:, None] + back + (np.arange(ne) // lanes)[None, :])[ok]
    return when, addr


def _trace(layer: LayerProgram) -> tuple[np.ndarray, np.ndarray]:
    """``(cycle, address)`` of every activation read of ``layer``'s RUN (padding, and a
    streamed layer, read none)."""
    if layer.stream:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return layer.read_trace()


def overlap_drains(layers: list[LayerProgram], lat: dict[str, int], simd: int, act_words: int,
                   tin: TensorMap, lanes: int = 1) -> int:
    """Overlap the input stream with the first layer and each layer with the next; returns ``input_lead``.

    The first layer starts after ``input_lead`` input beats (cycle ``R0 = input_lead + 3``;
    beat ``i`` arrives in cycle ``i``): as few as keep each of its reads behind the
    stream, and the whole input in before its first result is written (one write port) and
    before the second layer starts.

    A layer's results keep flowing through serializer, requantizer and LUT for about
    ``drain`` cycles after its last read; the next layer need not wait for all of them.
    On a timeline (``R`` = a layer's first RUN cycle, the next one's is
    ``R' = R + tiles*t + drain + SETUP``) the next layer starts at the smallest ``R'`` with

    - the controller's descriptor changing (cycle ``R' - 1``) only after its address stages
      used it for this layer's last read (the datapath keeps its own delayed copy);
    - the next layer's first result vector arriving only after this layer's last code is
      written, and this layer's first result vector before the next layer's ``init``
      (the back end holds one layer's fields and queues one more, :mod:`hwflow.rtl.accelerator`);
    - every read of the next layer issued after the last write of the word it reads, by
      any earlier layer (read-after-write through the activation RAM).

    Each bound keeps one cycle of margin; ``drain`` never grows.
    """
    last_write = np.full(max(act_words, 1), np.iinfo(np.int64).min // 2, dtype=np.int64)
    back = _back(lat)

    # Input: word w is written in cycle w + 1 + write; a read in RUN cycle j of the first
    # layer (absolute R0 + j) must come at least one cycle after it. A streamed input is read
    # from the stream itself: the first layer starts after the one WAIT cycle.
    l0, wr = layers[0], lat["write"]
    if l0.stream:
        lead = 1
    else:
        offs, addrs = _trace(l0)
        w = addrs - tin.base
        mine = (w >= 0) & (w < tin.words)
        lead_raw = int((w[mine] - offs[mine]).max()) + wr if mine.any() else 0
        first_write = int(_load_times(lat, l0)[0]) + back
        lead = min(tin.words, max(1, lead_raw, tin.words + wr - 1 - first_write))
        r0 = lead + 3
        last_write[tin.base:tin.base + tin.words] = np.arange(tin.words) + 1 + wr - r0  # on the layers' clock
    r = 0
    for idx, l in enumerate(layers):
        t_load = r + _load_times(lat, l)
        when, addr = _write_trace(lat, l, simd, lanes)
        when = when + r
        np.maximum.at(last_write, addr, when)
        end = r + l.tiles * l.t
        if idx + 1 == len(layers):
            break
        nxt = layers[idx + 1]
        offs, addrs = _trace(nxt)
        first_load = int(_load_times(lat, nxt)[0])
        start = max(
            end + SETUP_CYCLES + 1,                           # drain >= 1: address stages done
            tin.words + wr + 3 - r0 if idx == 0 and not l0.stream else 0,  # the input is all in
            int(t_load[0]) + 3,                               # init after this layer's first load
            int(when.max()) + 2 - first_load,                 # back end empty before the next load
            int((last_write[addrs] + 2 - offs).max()) if len(offs) else 0,  # read after write
        )
        l.drain = min(l.drain, start - end - SETUP_CYCLES)
        r = end + l.drain + SETUP_CYCLES
    return lead


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 4:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2:
        return shape[1], 1, 1
    raise UnsupportedOpError(f"tensor shape {shape!r}: hardware supports (1, C, H, W) and (1, F)")


def _check_int(name: str, v, lo: int = 1) -> int:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise OptionError(f"{name} must be an integer >= {lo}, not {v!r}")
    return int(v)


def _stream_input(qgraph: QGraph, pe: int, simd: int, lanes: int, fuse: str = "auto") -> InputStream | None:
    """The :class:`InputStream` of the first convolution if streaming its input is faster, else None.

    A first convolution with few input channels wastes most SIMD lanes on a stored input:
    it reads one pixel (``cin`` lanes) per kernel position. Streamed, each word holds
    ``simd`` taps of a receptive field (the host im2cols the input), a tile takes
    ``ceil(kh*kw*cin / simd)`` cycles instead of ``kh*kw*ceil(cin / simd)``, and the input
    phase disappears (the layer reads the stream). The stream carries every field once per
    tile, so it is longer than the input; chosen only when packing taps shortens the tile
    (the stored input leaves lanes empty) and the cycles are fewer.
    """
    if not qgraph.layers or qgraph.output == qgraph.input:
        return None
    l0 = qgraph.layers[0]
    if l0.op != "conv" or l0.inputs[0] != qgraph.input or l0.groups != 1:
        return None
    if any(qgraph.input in l.inputs for l in qgraph.layers[1:]):
        return None
    t = qgraph.tensors[qgraph.input]
    if len(t.shape) != 4:
        return None
    _, cin, h, w = t.shape
    (kh, kw), (sh, sw), p = l0.kernel, l0.strides, l0.pads
    oh, ow = qgraph.tensors[l0.output].shape[2:]
    nt = chunks(l0.out_channels, pe)
    npx, qk = oh * ow, 1
    nxt = qgraph.layers[1] if len(qgraph.layers) > 1 else None
    if (fuse != "never" and nxt is not None and nxt.op == "maxpool" and nxt.inputs[0] == l0.output
            and not any(nxt.pads)):
        # Likely fused: the serializer bound becomes its groups / window.
        qk = nxt.kernel[0] * nxt.kernel[1]
        npx = int(np.prod(qgraph.tensors[nxt.output].shape[2:])) * qk
    ser = -(-(pe // lanes) // qk)
    fields = chunks(kh * kw * cin, simd)
    stored = h * w * chunks(cin, simd) + npx * nt * max(kh * kw * chunks(cin, simd), ser)
    streamed = npx * nt * max(fields, ser)
    if fields >= kh * kw * chunks(cin, simd) or streamed >= stored:
        return None
    return InputStream(c=cin, h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw, pt=p[0], pl=p[1], oh=oh, ow=ow, chunks=fields)


def _fusions(qgraph: QGraph, pe: int, simd: int, stream: InputStream | None,
             always: bool = False) -> dict[int, QLayer]:
    """Conv layers (by index) into which the following MaxPool is fused.

    ``maxpool(requantize(acc))`` equals ``requantize(max(acc))`` per channel because the
    requantizer is monotonic (``m >= 0``, rounding shift, clamp), so the array can max-merge
    the accumulators of the pool window's conv outputs and requantize once: the conv's
    output is never stored and the MaxPool step disappears. Fused when the conv has no LUT,
    the pool has no padding and reads only this conv, and it saves cycles (overlapping
    windows recompute conv outputs).
    """
    out: dict[int, QLayer] = {}
    layers = qgraph.layers
    for i, (conv, pool) in enumerate(zip(layers, layers[1:])):
        if conv.op != "conv" or pool.op != "maxpool" or pool.inputs[0] != conv.output:
            continue
        if conv.lut is not None or any(pool.pads) or conv.output == qgraph.output:
            continue
        if sum(conv.output in l.inputs for l in layers) != 1:
            continue
        x = qgraph.tensors[conv.inputs[0]].shape
        c_out = qgraph.tensors[conv.output].shape
        p_out = qgraph.tensors[pool.output].shape
        if len(x) != 4:
            continue
        # upper bound of the tile length (dense groups)
        k = stream.chunks if (i == 0 and stream) else conv.kernel[0] * conv.kernel[1] * chunks(x[1], simd)
        nt = chunks(conv.out_channels, pe)
        qk = pool.kernel[0] * pool.kernel[1]
        plain = c_out[2] * c_out[3] * nt * max(k, pe) + p_out[2] * p_out[3] * chunks(c_out[1], simd) * max(qk, simd)
        fused = p_out[2] * p_out[3] * nt * qk * tile_cycles(k, pe, qk)
        if always or fused <= plain:
            out[i] = pool
    return out


def _pow2_part(n: int) -> int:
    """The largest power of two dividing ``n`` (``n >= 1``)."""
    return n & -n


def _max_lanes(qgraph: QGraph, pe: int, simd: int) -> int:
    """The most back-end lanes the program could use: the largest power of two dividing
    SIMD, PE and every Concat input's channel offset (a group of lanes never crosses an
    activation word, :mod:`hwflow.rtl.serializer`); 1 with an argmax output (its comparator
    takes one code a cycle)."""
    if qgraph.argmax:
        return 1
    lanes = min(_pow2_part(simd), _pow2_part(pe))
    for layer in qgraph.layers:
        if layer.op == "concat":
            coff = 0
            for t in layer.inputs[:-1]:
                coff += _chw(qgraph.tensors[t].shape)[0]
                lanes = min(lanes, _pow2_part(coff))
    return lanes


def _set_lanes(l: LayerProgram, lanes: int) -> None:
    """A step's ``ng = nb / lanes`` groups a load and its ``t``: ``max(k, ceil(ng / (qh*qw)))``,
    so the serializer is free for every load, at least ``MERGE_CYCLES`` with a fused window
    (:func:`~hwflow.schedule.program.tile_cycles`; a ``dw`` step keeps its ``t``: one group a
    load, ``lanes == simd``)."""
    l.ng = l.nb // lanes
    if l.kind == "dw":
        return
    l.t = tile_cycles(l.k, l.ng, l.qh * l.qw)


def _choose_lanes(layers: list[LayerProgram], lanes_max: int) -> int:
    """Back-end lanes: the fewest (each costs a requantizer) whose tile cycles are within 1 %
    of the most's."""
    def run(lanes):
        return sum(l.tiles * tile_cycles(l.k, l.nb // lanes, l.qh * l.qw) for l in layers)

    best = run(lanes_max)
    lanes = 1
    while run(lanes) > 1.01 * best:
        lanes *= 2
    return lanes


def _dw_kw(qgraph: QGraph, pe: int, simd: int, lanes_max: int, pack: int) -> int:
    """The depthwise unit's kernel width (0: no unit): the most common kernel width of the
    depthwise convolutions, on a square array whose ROM packs depthwise words and whose back
    end can take a word a cycle (``lanes_max == simd``)."""
    if not (pe == simd > 1 and pack > 1 and lanes_max == simd):
        return 0
    kws = [l.kernel[1] for l in qgraph.layers
           if l.op == "conv" and l.groups > 1 and l.groups == l.out_channels == l.weight.shape[0]
           and l.weight.shape[1] == 1]
    return max(set(kws), key=kws.count) if kws else 0


def _rounding(qgraph: QGraph) -> str:
    """The requantizer's rounding: the one every layer that rounds (some ``n >= 1``) asks for."""
    modes = {l.rounding for l in qgraph.layers if l.has_requant and int(l.n.max()) > 0 or l.acc_shift}
    if len(modes) > 1:
        names = {m: next(l.name for l in qgraph.layers if l.rounding == m) for m in modes}
        raise UnsupportedOpError(f"layers {names!r} round ties differently; the hardware's requantizer rounds one way")
    return modes.pop() if modes else "half_up"


def _check_layers(qgraph: QGraph) -> None:
    for layer in qgraph.layers:
        if layer.op in ("conv", "maxpool", "avgpool") and len(qgraph.tensors[layer.inputs[0]].shape) != 4:
            raise UnsupportedOpError(f"layer {layer.name!r}: {layer.op} needs a 4-D input")


def _lifetimes(qgraph: QGraph, fused: dict[int, QLayer]) -> dict[str, tuple[int, int]]:
    """Each stored tensor's inclusive ``(first, last)`` layer index (the output: to the end)."""
    skip = {i + 1 for i in fused}
    live = {qgraph.input: [0, 0]}
    for i, layer in enumerate(qgraph.layers):
        if i in skip:
            continue
        live[fused[i].output if i in fused else layer.output] = [i, i]
        for t in layer.inputs:
            live[t][1] = max(live[t][1], i)
    live[qgraph.output][1] = len(qgraph.layers)
    return {k: tuple(v) for k, v in live.items()}


def _layout(qgraph: QGraph, simd: int, stream: InputStream | None, fused: dict[int, QLayer],
            shares: dict[str, tuple[str, int]] | None = None) -> tuple[dict[str, TensorMap], int]:
    """``(tensors, act_words)``: every stored tensor's place in the activation RAM.

    Tensors whose lifetimes (first write to last read, in layer order) do not overlap
    share words; a fused convolution's output is never stored; ``shares`` lets a step's
    output overlap an input it reads last (:func:`_shares`, :func:`~hwflow.schedule.memory.allocate`).
    """
    order = [qgraph.input] + [l.output for i, l in enumerate(qgraph.layers) if i not in fused]
    maps: dict[str, dict] = {}
    for name in order:
        t = qgraph.tensors[name]
        c, h, w = _chw(t.shape)
        maps[name] = dict(name=name, shape=t.shape, bits=t.value_bits, zero_point=t.zero_point,
                          c=c, h=h, w=w, chunks=chunks(c, simd))
    if stream is not None:
        maps[qgraph.input]["in_ram"] = False
    live = _lifetimes(qgraph, fused)
    sizes = {n: d["h"] * d["w"] * d["chunks"] for n, d in maps.items() if d.get("in_ram", True)}
    bases, act_words = allocate(sizes, {k: v for k, v in live.items() if k in sizes}, shares)
    return {n: TensorMap(base=bases.get(n, 0), **d) for n, d in maps.items()}, act_words


#: Cycles a write of a shared word comes after the step's last read of it, at least: the read
#: samples the RAM two cycles after its issue (the address registers), with one of margin.
_SHARE_MARGIN = 4


def _share_candidates(qgraph: QGraph, fused: dict[int, QLayer],
                      tensors: dict[str, TensorMap]) -> dict[str, list[str]]:
    """``{out: donors}``: the stored inputs each single-step layer is the last to read (not
    the network input, which the input phase writes, nor the output)."""
    live = _lifetimes(qgraph, fused)
    skip = {i + 1 for i in fused}
    cands = {}
    for i, layer in enumerate(qgraph.layers):
        if i in skip or layer.op == "concat":  # a concat writes its output in several steps
            continue
        out = fused[i].output if i in fused else layer.output
        donors = [n for n in dict.fromkeys(layer.inputs) if n not in (qgraph.input, qgraph.output)
                  and tensors[n].in_ram and live[n][1] == i]
        if donors:
            cands[out] = donors
    return cands


def _shares(layers: list[LayerProgram], tensors: dict[str, TensorMap], cands: dict[str, list[str]],
            lat: dict[str, int], simd: int, lanes: int, pools: dict[str, QLayer]) -> dict[str, tuple[str, int]]:
    """Outputs that may overlap an input their step reads last: ``{out: (donor, d)}``.

    A residual block otherwise holds three feature maps (the skip input, the block's
    intermediate and its output); writing the output over the intermediate it consumes
    needs two. For each of the ``cands`` (:func:`_share_candidates`), ``d`` is the
    smallest shift (donor base = output base + d) for which every overlapped word is
    written, on the step's exact timeline
    (:meth:`~hwflow.schedule.program.LayerProgram.read_trace`, :func:`_write_trace`), at
    least ``_SHARE_MARGIN`` cycles after the step's last read of it. The core runs in lockstep
    (a stall holds every register), so the timeline holds under stalls too. No entry if
    only disjoint placement works.
    """
    shares = {}
    for l in layers:
        out = pools[l.output].output if l.output in pools else l.output
        if out not in cands:
            continue
        o = tensors[out]
        when, waddr = _write_trace(lat, l, simd, lanes)
        wfirst = np.full(o.words, np.iinfo(np.int64).max // 2, dtype=np.int64)
        np.minimum.at(wfirst, waddr - o.base, when)
        cyc, raddr = _trace(l)
        best = None
        for name in cands[out]:
            t = tensors[name]
            mine = (raddr >= t.base) & (raddr < t.base + t.words)
            rlast = np.full(t.words, np.iinfo(np.int64).min // 2, dtype=np.int64)
            np.maximum.at(rlast, raddr[mine] - t.base, cyc[mine] + _SHARE_MARGIN)
            d = None
            for a in range(min(t.words, o.words)):
                d = next((d for d in ((a, -a) if a else (0,)) if _share_ok(rlast, wfirst, d)), None)
                if d is not None:
                    break
            if d is not None and (best is None or abs(d) < abs(best[1])):
                best = (name, d)
        if best is not None:
            shares[out] = best
    return shares


def _rebase(layers: list[LayerProgram], old: dict[str, TensorMap], new: dict[str, TensorMap],
            pools: dict[str, QLayer]) -> None:
    """Move each step's tensor bases from layout ``old`` to ``new`` (a step's inputs, live
    together, have distinct old bases)."""
    for l in layers:
        out = pools[l.output].output if l.output in pools else l.output
        l.out_base = new[out].base
        if l.stream:
            continue
        ins = {old[n].base: new[n].base for n in l.inputs}
        l.in_base = ins[l.in_base]
        if l.kind == "add":
            l.in2_base = ins[l.in2_base]


def _share_ok(rlast: np.ndarray, wfirst: np.ndarray, d: int) -> bool:
    """Every word ``j`` of the donor that lands on output word ``d + j`` is read for the last
    time before that word's first write."""
    j0, j1 = max(0, -d), min(len(rlast), len(wfirst) - d)
    return j1 <= j0 or bool((rlast[j0:j1] <= wfirst[j0 + d:j1 + d]).all())


def _datapath_widths(lowered: list[Lowered], abits: int) -> dict[str, int]:
    """``acc_bits``, ``post_bits``, ``n_min``, ``n_max``, ``addm_bits``, ``add_bits``: the
    shared datapath sized for every lowered layer (each range widened to include 0)."""
    def span(ranges):
        ranges = [r for r in ranges if r is not None]
        return min([0] + [r[0] for r in ranges]), max([0] + [r[1] for r in ranges])

    acc_lo, acc_hi = span(l.acc for l in lowered)
    post_lo, post_hi = span(l.post for l in lowered)
    n_min, n_max = span(l.shift for l in lowered)
    acc_bits = max(bits_for_range(acc_lo, acc_hi), abits + 1)
    adds = [l for l in lowered if any(s.kind == "add" for s in l.steps)]
    add_lo, add_hi = span(l.acc for l in adds)
    return {
        "acc_bits": acc_bits,
        "post_bits": max(bits_for_range(min(post_lo, acc_lo), max(post_hi, acc_hi)), acc_bits + 1),
        "n_min": n_min,
        "n_max": n_max,
        "addm_bits": max([1] + [l.addm for l in lowered]).bit_length() if adds else 0,
        "add_bits": bits_for_range(add_lo, add_hi) if adds else 0,
    }


def arrange(qgraph: QGraph, pe: int, simd: int, fuse: str = "auto", shared: bool = False
            ) -> tuple[InputStream | None, dict[int, QLayer], dict[str, TensorMap], int]:
    """``(stream, fused, tensors, act_words)``: the rewrites :func:`schedule` chooses (streamed
    input, fused MaxPools) and the activation RAM's layout before the overlaps it finds after
    lowering (:func:`_shares`). Shapes and widths only: the fit check
    (:mod:`hwflow.schedule.fit`) calls it on a QGraph without weights.

    ``shared``: lay out every permitted overlap at shift 0 instead, the fit check's lower
    bound (the scheduler's shifts are the few rows its timeline needs).
    """
    _check_layers(qgraph)
    stream = _stream_input(qgraph, pe, simd, _max_lanes(qgraph, pe, simd), fuse)
    fused = {} if fuse == "never" else _fusions(qgraph, pe, simd, stream, always=fuse == "always")
    tensors, act_words = _layout(qgraph, simd, stream, fused)
    if shared:
        cands = _share_candidates(qgraph, fused, tensors)
        shared = _layout(qgraph, simd, stream, fused, {o: (d[0], 0) for o, d in cands.items()})
        if shared[1] < act_words:
            tensors, act_words = shared
    return stream, fused, tensors, act_words


def _lane_code(qgraph: QGraph) -> WeightFormat | None:
    """The code format the array's lanes decode, or None (multiplying lanes).

    ``pot`` when every MAC layer has pot weights of one code width (shift lanes); ternary
    when every MAC layer has binary or ternary weights (add/subtract lanes, 2-bit ternary
    codes; a binary layer without input padding is stored as its signs, 1 bit a weight:
    :meth:`~.lower.RomImages.narrow_lr`). One lane type
    for the whole array, not one a layer: an array switching datapath per step would pay
    for both. With weight sharing the ROM holds codebook indices: multipliers.
    """
    fmts = {(l.wformat, l.wbits) for l in qgraph.layers if l.op in ("conv", "gemm")}
    if not fmts or codebook_bits(qgraph):
        return None
    if {f for f, _ in fmts} <= {"binary", "ternary"}:
        return WeightFormat("ternary", 2)
    if len(fmts) != 1 or next(iter(fmts))[0] != "pot":
        return None
    return WeightFormat(*fmts.pop())


def _pot_shape(qgraph: QGraph, tgt, code: WeightFormat) -> tuple[int, int]:
    """The default ``(pe, simd)`` of a pot or add/subtract build: the target's shape, doubled (the
    smaller of the two first, SIMD on a tie) while its lanes cost no more LUTs than the target's
    shape would in LUT multipliers (:func:`~.estimate.pot_lane_cost`, :func:`~.estimate.lut_mult_cost`)."""
    abits = max(t.bits for t in qgraph.tensors.values())
    fam = getattr(tgt, "family", "generic")
    budget = tgt.pe * tgt.simd * lut_mult_cost(code.value_bits, abits, fam)[0]
    per = pot_lane_cost(code.wbits, abits, fam)[0]
    pe, simd = tgt.pe, tgt.simd
    while True:
        nxt = (pe * 2, simd) if pe < simd else (pe, simd * 2)
        if nxt[0] * nxt[1] * per > budget:
            return pe, simd
        pe, simd = nxt


def schedule(qgraph: QGraph, target=None, pe: int | None = None, simd: int | None = None, *,
             fuse: str = "auto", dw: bool = True, xnor: bool = True) -> Program:
    """Schedule ``qgraph`` onto the target's MAC array.

    Parameters
    ----------
    qgraph : QGraph
    target : Target, str or None
        A :class:`~hwflow.targets.Target` or its name (``None``: ``generic``). Gives the
        default array shape and the resource budget.
    pe, simd : int, optional
        Override the target's array shape. When neither is given and every MAC layer has
        pot weights, the array is as wide as the target's shape would be in LUT
        multipliers (shift lanes cost less; the target's shape if that does not fit).
    fuse : {"auto", "always", "never"}
        Fuse a MaxPool into the convolution before it when that saves cycles (``auto``),
        whenever legal (``always``), or not at all (``never``).
    dw : bool
        Run depthwise convolutions on the depthwise unit where that is faster
        (:func:`~hwflow.schedule.lower.dw_plan`) and the unit fits the target (else as
        with False); False: all on the array.
    xnor : bool
        Run binary-weight layers on a bipolar input on the XNOR-popcount unit
        (:func:`~hwflow.schedule.lower.xnor_ok`), as wide as the target allows
        (:func:`xnor_widths`); False, or when no width fits: on the array.

    Returns
    -------
    Program

    Raises
    ------
    UnsupportedOpError
        A layer the hardware cannot run (named, with its op).
    FitError
        The design exceeds the target's resources (see :func:`~hwflow.schedule.budget.check_budget`).
    """
    tgt = load_target(target if target is not None else "generic")
    names = [l.name for l in qgraph.layers if xnor_ok(l, qgraph, simd or tgt.simd)] if xnor else []
    # All the layers the unit can run, as wide as fits; else the first n of them (its ROM holds
    # fewer weights: a small part's block RAM may take one hidden layer, not two).
    for n in range(len(names), 0, -1):
        for xrows in xnor_widths(qgraph, tgt, pe, simd, names[:n]):
            try:
                prog = _schedule_dw(qgraph, tgt, pe, simd, fuse, dw, xrows, frozenset(names[:n]))
            except FitError:  # too wide for the target's memory or logic: narrower
                continue
            if tgt.luts is None or prog.estimate["luts"] <= XNOR_LUT_SHARE * tgt.luts:
                return prog
    return _schedule_dw(qgraph, tgt, pe, simd, fuse, dw, 0)


#: The share of the target's LUTs a design with the XNOR unit may take (the scheduler narrows
#: the unit past it): the rest is routing headroom.
XNOR_LUT_SHARE = 0.75


def xnor_widths(qgraph: QGraph, target, pe: int | None = None, simd: int | None = None,
                names=None) -> list[int]:
    """The XNOR unit's widths to try, widest first: ``xrows`` output channels a cycle, powers of
    two from the widest that can pay (the most output channels of a layer it runs, and
    ``k * lanes``: a tile's reads ``k`` while its ``xrows`` results leave the back end at most
    ``lanes`` a cycle) down to 2. Empty when no layer qualifies
    (:func:`~hwflow.schedule.lower.xnor_ok`: binary weights, bipolar input, whole words);
    ``names``: only these layers (default: all)."""
    pe, simd = pe or target.pe, simd or target.simd
    best = 0
    lanes = _max_lanes(qgraph, pe, simd)
    for l in qgraph.layers:
        if names is not None and l.name not in names or not xnor_ok(l, qgraph, simd):
            continue
        c, h, w = _chw(qgraph.tensors[l.inputs[0]].shape)
        k = h * w * (c // simd)
        best = max(best, min(1 << (l.out_channels - 1).bit_length(), k * lanes))
    out = []
    while best >= 2:
        out.append(best)
        best //= 2
    return out


def _schedule_dw(qgraph: QGraph, tgt, pe, simd, fuse: str, dw: bool, xrows: int, xnames=None) -> Program:
    """:func:`_schedule` with the depthwise unit where it fits (else without it)."""
    if dw and _wants_dw(qgraph):
        try:
            return _schedule(qgraph, tgt, pe, simd, fuse, True, xrows, xnames)
        except FitError:  # the unit's logic does not fit: the array runs the depthwise layers
            pass
    return _schedule(qgraph, tgt, pe, simd, fuse, False, xrows, xnames)


def _wants_dw(qgraph: QGraph) -> bool:
    """The graph has a depthwise convolution (the unit may run it)."""
    return any(l.op == "conv" and l.groups > 1 and l.groups == l.out_channels and l.weight.shape[1] == 1
               for l in qgraph.layers)


def _schedule(qgraph: QGraph, target, pe, simd, fuse: str, dw: bool, xrows: int = 0, xnames=None) -> Program:
    """:func:`schedule` with the depthwise unit allowed or not, and the XNOR unit ``xrows`` wide
    (0: none) for the layers ``xnames`` (``None``: every one it can run)."""
    tgt = load_target(target if target is not None else "generic")
    if fuse not in ("auto", "always", "never"):
        raise OptionError(f"fuse must be 'auto', 'always' or 'never', not {fuse!r}")
    code = _lane_code(qgraph)
    if code is not None and pe is None and simd is None:
        wide = _pot_shape(qgraph, tgt, code)
        if wide != (tgt.pe, tgt.simd):
            try:
                return schedule(qgraph, tgt, *wide, fuse=fuse, dw=dw, xnor=bool(xrows))
            except FitError:
                pass  # the wider array does not fit this part: the target's own shape
    pe = _check_int("pe", pe) or tgt.pe
    simd = _check_int("simd", simd) or tgt.simd
    stream, fused, tensors, act_words = arrange(qgraph, pe, simd, fuse)
    lanes_max = _max_lanes(qgraph, pe, simd)
    abits = max(t.bits for t in tensors.values())
    # the MAC array multiplies weight values (a pot4 code holds values up to ±64: 8 bits)
    wbits = max([l.mul_wbits for l in qgraph.layers if l.op in ("conv", "gemm")], default=2)
    mbits = max([l.mbits for l in qgraph.layers if l.has_requant] + [1])
    if any(int(l.m.max()) > 1 for l in qgraph.layers if l.has_requant):
        mbits = max(mbits, 2)
    lat = latencies(simd, mbits)
    ibits = codebook_bits(qgraph)  # weight sharing: the ROM holds codebook indices
    # Each layer's weights at their own width, packed into the ROM's lanes (not pot codes).
    narrow = 0 if ibits or code is not None and code.name == "pot" else (code.wbits if code is not None else wbits)
    roms = RomImages(ibits, lanes_max, weight_pack(pe, simd, ibits), code=code, narrow=narrow)
    if roms.ibits:
        lat["codebook"] = 1  # rtl/codebook.py: registered lookup between ROM and MAC array
        lat["mac"] += lat["codebook"]

    acc_shift = max([l.acc_shift for l in qgraph.layers] + [0])
    # The depthwise unit multiplies weight values: only beside multiplying lanes.
    dw_kw = _dw_kw(qgraph, pe, simd, lanes_max, roms.pack) if dw and code is None else 0
    ctx = LowerContext(qgraph, tensors, pe, simd, roms, {qgraph.layers[i].output: p for i, p in fused.items()},
                       acc_shift, stream, dw_kw, xrows, xnames)
    # A fused MaxPool (the layer after a key of ``fused``) is lowered with its convolution.
    lowered = [LOWERINGS[l.op](l, ctx) for i, l in enumerate(qgraph.layers) if i - 1 not in fused]
    layers = [step for low in lowered for step in low.steps]
    if any(l.kind == "mac" and l.qh * l.qw > 1 for l in layers):
        lat["merge"] = MERGE_CYCLES  # a fused window's max-merge: compare, then load the hold
    widths = _datapath_widths(lowered, abits)
    # The depthwise unit's loads are a word each: it takes a lane per channel of a word.
    if any(l.kind == "dw" for l in layers):
        lanes = lanes_max
    else:  # MAC lanes can multiply in LUTs (mac_dsp_lanes), back-end lanes cannot: fewer of them
        lanes = _choose_lanes(layers, lanes_max)
        per = backend_lane_dsps({**widths, "mbits": mbits}, getattr(tgt, "family", "generic"))
        while lanes > 1 and tgt.dsps is not None and lanes * per > tgt.dsps:
            lanes //= 2
    for lp in layers:
        _set_lanes(lp, lanes)
        lp.drain = drain_cycles(lat, lp.kind, lp.ng, lp.t, lp.k)
        if lp.kind in ("dw", "xnor"):  # two cycles after the last write, as drain_cycles counts it
            lp.drain = int(_write_trace(lat, lp, simd, lanes)[0].max()) - lp.tiles * lp.t + 2
    shares = _shares(layers, tensors, _share_candidates(qgraph, fused, tensors), lat, simd, lanes, ctx.pools)
    if shares:
        shared, shared_words = _layout(qgraph, simd, stream, fused, shares)
        if shared_words < act_words:  # chains placed as one block may pack worse
            _rebase(layers, tensors, shared, ctx.pools)
            tensors, act_words = shared, shared_words
    input_lead = overlap_drains(layers, lat, simd, act_words, tensors[qgraph.input], lanes)

    prog = Program(
        name=qgraph.name, pe=pe, simd=simd, abits=abits, wbits=wbits, mbits=mbits,
        **widths, **roms.images(pe, simd),
        layers=layers, tensors=tensors, input=qgraph.input, output=qgraph.output, act_words=act_words,
        latency=lat, host_tail=qgraph.host_tail.ops, target=tgt.name, ibits=roms.ibits,
        lane=("pot" if code.name == "pot" else "addsub") if code is not None else "mul", cbits=code.wbits if code is not None else 0,
        formats={l.name: f"{l.wformat}{l.wbits}" for l in qgraph.layers if l.op in ("conv", "gemm")},
        input_lead=input_lead, dsp_mults=pe * simd, rq_lanes=lanes, input_stream=stream,
        w_pack=roms.pack if any(l.wpk for l in layers) else 1,
        input_index=qgraph.input_index() if qgraph.input_layout is not None else None,
        rounding=_rounding(qgraph), acc_shift=acc_shift, argmax=qgraph.argmax,
        xrows=xrows if any(l.kind == "xnor" for l in layers) else 0,
    )
    prog.weight_kind, prog.act_kind = place_weights(prog, tgt), tgt.block_ram
    prog.rom_banks = rom_banks(prog, tgt)
    prog.estimate = estimate(prog, tgt)
    prog.dsp_mults = mac_dsp_lanes(prog, tgt) if prog.lane == "mul" else 0
    if prog.dsp_mults < pe * simd:
        prog.estimate = estimate(prog, tgt)
    prog.lane_costs = lane_costs(prog, getattr(tgt, "family", "generic"))
    check_budget(prog, tgt)
    return prog
