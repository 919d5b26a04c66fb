"""Map a QGraph onto the PE x SIMD array: tiling, loop nests, memory map, exact cycles.

Every QLayer becomes one or more hardware steps (:class:`LayerProgram`):

- ``conv`` / ``gemm`` -> ``mac``. A Gemm reading a 4-D tensor is a convolution whose
  kernel covers the whole input (the NCHW flattening becomes the weight's layout, so no
  data moves). Per output pixel, ``nt = ceil(cout / pe)`` tiles of ``k = kh*kw*cis``
  cycles each read one activation word (SIMD channels of one pixel) and one weight word
  (PE x SIMD). Grouped convolutions use the largest super-group whose channel counts
  divide SIMD and PE (block-diagonal weights inside it); depthwise is the extreme case.
- ``maxpool`` -> ``max``; ``avgpool`` -> ``sum`` (bias ``-k*z_in`` and ``m``/``n`` requantize);
  ``lut`` -> ``sum`` over a 1x1 window; these run one SIMD chunk per tile.
- ``add`` -> ``add``: two reads per chunk, ``(qa-za)*ma + (qb-zb)*mb`` per lane.
- ``concat`` -> one ``max`` step over a 1x1 window per input (a copy through the identity
  requantizer) into the output's channel slice.

Two rewrites save cycles where the array would idle (each chosen only if it is faster):

- a MaxPool right after a convolution is *fused* into it: per pooled pixel the array runs
  the conv at each window position and max-merges the accumulators (exact, the requantizer
  is monotonic); the conv output is never stored and the pool step disappears;
- a first convolution with few input channels (``cin * kh <= simd``) reads a *row-stacked*
  input: each input word holds a pixel column's ``kh`` rows (the host packs it so), so one
  read feeds ``kh`` rows and a tile takes ``kw`` instead of ``kh * kw`` cycles.

Consecutive steps overlap: a step starts while the previous one's results are still in
the back end, as early as its reads allow (:func:`overlap_drains`).

Each tile takes exactly ``t = max(k, ceil(nb / (qh*qw)))`` cycles (``nb`` = PE for ``mac``,
SIMD otherwise; ``qh x qw`` the fused pool window): a pixel's ``nb`` results are serialized
through ONE shared requantizer while the next tile accumulates, so nothing ever stalls and
the cycle count is a closed form (:attr:`Program.cycles`). One requantizer instead of PE
saves DSPs; its price is that layers with ``k < pe`` are bound by one output per cycle.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import OptionError, UnsupportedOpError
from ..quant.arith import bits_for_range, int_range
from ..quant.qgraph import QGraph, QLayer
from ..prune.sharing import codebook_bits, codebook_indices
from ..quant.reference import acc_bounds
from .memory import allocate, chunks, weight_words
from .program import SETUP_CYCLES, LayerProgram, Program, TensorMap

__all__ = ["schedule", "latencies", "drain_cycles", "overlap_drains", "mac_dsp_lanes", "SUPPORTED_OPS",
           "ECP5_DSP_SHARE"]

#: QLayer ops the hardware runs.
SUPPORTED_OPS = ("conv", "gemm", "maxpool", "avgpool", "add", "concat", "lut")


def latencies(simd: int, mbits: int) -> dict[str, int]:
    """Pipeline latencies of the datapath blocks (the RTL asserts it matches them).

    ``mac``: array input to accumulator; ``pool``: lane unit; ``pre``: the result vector's register
    in front of the serializer, per-channel ROM read and bias add;
    ``merge``: max-merge of a fused MaxPool's window (every MAC result passes it);
    ``requant``: requantizer (one stage fewer without a multiplier); ``lut``: LUT ROM read;
    ``issue``: controller state to memory data (address register, synchronous read).
    ``mac`` = input register + two multiplier stages + ``ceil(log2(simd))`` tree registers +
    accumulator (the input register keeps block-RAM clock-to-out away from the multiplier;
    the DSP lanes' second input register sits beside the DSP, the LUT lanes' shift-add
    trees register their first level: rtl/mac_array.py).
    """
    return {
        "issue": 3,
        "mac": 4 + (math.ceil(math.log2(simd)) if simd > 1 else 0),
        "merge": 1,
        "pool": 1,
        "pre": 3,
        "requant": 4 if mbits > 1 else 3,
        "lut": 1,
    }


#: When the MAC lanes overflow an ECP5's DSPs, the share of its DSPs the design keeps
#: using (the rest of the lanes go to LUTs). Yosys does not pack registers into
#: MULT18X18D, and nextpnr keeps the fabric registers around a DSP by the logic: a DSP
#: across the chip then costs two long routes plus its 3.9 ns in one cycle. Measured
#: (digits784 MLP, PE 8 x SIMD 8, LFE5U-25F): 28 of 28 DSPs 84.9 MHz and 19 of 28
#: 99.6 MHz (critical path FF -> far MULT18X18D -> FF), 20 of 28 100.3 MHz, 3 of 28
#: (all lanes in LUTs) 105.8 MHz.
ECP5_DSP_SHARE = 0.5


def mac_dsp_lanes(prog: Program, target) -> int:
    """MAC lanes that multiply on DSPs (``Program.dsp_mults``); the others use LUTs.

    All ``pe * simd`` lanes when the target has no DSP limit or they fit in the DSPs the
    requantizer and control leave; else as many as fit. On ECP5 the DSPs used stay within
    :data:`ECP5_DSP_SHARE` of the device's: Yosys keeps the registers around a MULT18X18D
    in the fabric, so a DSP far from its registers costs ~3 ns of routing each way (the
    default 4x4 CNN on the LFE5U-25F: 18 DSPs 95-105 MHz, 14 DSPs + 4 LUT lanes 113 MHz).
    ``prog.estimate`` must count all lanes.
    """
    from .estimate import dsp_blocks

    nmul = prog.pe * prog.simd
    per = dsp_blocks(prog.wbits, prog.abits, target.family)
    budget = int(target.dsps * ECP5_DSP_SHARE) if target.dsps is not None and target.family == "ecp5" \
        else target.dsps
    if budget is None or not per or prog.estimate["dsps"] <= budget:
        return nmul
    left = max(0, budget - (prog.estimate["dsps"] - nmul * per))
    return min(nmul, left // per)


def drain_cycles(lat: dict[str, int], kind: str, nb: int, t: int, k: int) -> int:
    """Cycles after a step's last tile until its last code is written and readable.

    The last read is issued ``t - k`` cycles before the tile ends; its data arrives ``issue``
    cycles later, its results leave the unit, are serialized (``nb`` codes) and pass
    pre-stage, requantizer and LUT. One more cycle covers the write (the output stream reads
    straight from its counters, so it is the tightest reader).
    """
    unit = _unit_latency(lat, kind)
    return max(1, unit + nb + lat["pre"] + lat["requant"] + lat["lut"] + lat["issue"] + 1 - (t - k))


def _unit_latency(lat: dict[str, int], kind: str) -> int:
    """Cycles from memory data to a result vector: the array and max-merge, or the pool unit."""
    return lat["mac"] + lat["merge"] if kind == "mac" else lat["pool"]


def _load_times(lat: dict[str, int], l: LayerProgram) -> np.ndarray:
    """RUN cycle (from the layer's first) in which each result vector reaches the back end:
    one per pixel and tile, after the last read of its last window position."""
    win = l.qh * l.qw
    last_read = (np.arange(l.oh * l.ow * l.nt) * win + win - 1) * l.t + l.k - 1
    return last_read + lat["issue"] + _unit_latency(lat, l.kind)


def _trace(layer: LayerProgram) -> tuple[np.ndarray, np.ndarray]:
    """``(cycle, address)`` of every activation read of ``layer``'s RUN (padding reads none)."""
    pairs = [(j, a[0]) for j, a in enumerate(layer.reads()) if a is not None and a[0] is not None]
    return (np.array([j for j, _ in pairs], dtype=np.int64).reshape(-1),
            np.array([a for _, a in pairs], dtype=np.int64).reshape(-1))


def overlap_drains(layers: list[LayerProgram], lat: dict[str, int], simd: int, act_words: int,
                   tin: TensorMap) -> int:
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
    back = 1 + lat["pre"] + lat["requant"] + lat["lut"]  # load -> first code written

    # Input: word w is written in cycle w + 1; a read in RUN cycle j of the first layer
    # (absolute R0 + j) must come at least one cycle after it.
    l0 = layers[0]
    offs, addrs = _trace(l0)
    w = addrs - tin.base
    mine = (w >= 0) & (w < tin.words)
    lead_raw = int((w[mine] - offs[mine]).max()) if mine.any() else 0
    first_write = int(_load_times(lat, l0)[0]) + back
    lead = min(tin.words, max(1, lead_raw, tin.words - 1 - first_write))
    r0 = lead + 3
    last_write[tin.base:tin.base + tin.words] = np.arange(tin.words) + 1 - r0  # on the layers' clock
    r = 0
    for idx, l in enumerate(layers):
        t_load = r + _load_times(lat, l)
        loads = len(t_load)
        co = (np.arange(loads) % l.nt)[:, None] * l.nb + np.arange(l.nb)[None, :]
        pix = (np.arange(loads) // l.nt)[:, None]
        ok = co < l.cout
        addr = (l.out_base + pix * l.och + (l.coff + co) // simd)[ok]
        when = (t_load[:, None] + back + np.arange(l.nb)[None, :])[ok]
        np.maximum.at(last_write, addr, when)
        end = r + l.tiles * l.t
        if idx + 1 == len(layers):
            break
        nxt = layers[idx + 1]
        offs, addrs = _trace(nxt)
        first_load = int(_load_times(lat, nxt)[0])
        start = max(
            end + SETUP_CYCLES + 1,                           # drain >= 1: address stages done
            tin.words + 3 - r0 if idx == 0 else 0,            # the input is all in
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


def _supergroup(groups: int, cin: int, cout: int, pe: int, simd: int) -> int:
    """Largest divisor of ``groups`` whose channel counts per group divide SIMD and PE (1 = dense)."""
    for g in sorted((d for d in range(1, groups + 1) if groups % d == 0), reverse=True):
        if (cin // g) % simd == 0 and (cout // g) % pe == 0 and g > 1:
            return g
    return 1


def _stack_rows(qgraph: QGraph, pe: int, simd: int, fuse: str = "auto") -> int:
    """``kh`` if the first layer should read a row-stacked input, else 1.

    A first convolution with few input channels (``cin * kh <= simd``) wastes most SIMD
    lanes: it reads one pixel (``cin`` lanes) per cycle. If each input word holds the
    ``kh`` rows of a kernel column (the host packs the stream so), one read feeds ``kh`` rows,
    and a tile takes ``kw`` cycles instead of ``kh * kw``. The input stream then carries
    ``(h + pad) * w`` stacked words instead of ``h * w * chunks``, so this is chosen only
    when the total is smaller.
    """
    if not qgraph.layers:
        return 1
    l0 = qgraph.layers[0]
    if l0.op != "conv" or l0.inputs[0] != qgraph.input or l0.groups != 1 or qgraph.output == qgraph.input:
        return 1
    if any(qgraph.input in l.inputs for l in qgraph.layers[1:]):
        return 1
    t = qgraph.tensors[qgraph.input]
    if len(t.shape) != 4:
        return 1
    _, cin, h, w = t.shape
    kh, kw = l0.kernel
    oh = qgraph.tensors[l0.output].shape[2]
    ow = qgraph.tensors[l0.output].shape[3]
    if kh < 2 or cin * kh > simd or (oh - 1) * l0.strides[0] - l0.pads[0] > h - 1:
        return 1
    nt = chunks(l0.out_channels, pe)
    npx, qk = oh * ow, 1
    nxt = qgraph.layers[1] if len(qgraph.layers) > 1 else None
    if (fuse != "never" and nxt is not None and nxt.op == "maxpool" and nxt.inputs[0] == l0.output
            and not any(nxt.pads)):
        # Likely fused: the serializer bound becomes pe / window.
        qk = nxt.kernel[0] * nxt.kernel[1]
        npx = int(np.prod(qgraph.tensors[nxt.output].shape[2:])) * qk
    pe_eff = -(-pe // qk)
    plain = h * w * chunks(cin, simd) + npx * nt * max(kh * kw * chunks(cin, simd), pe_eff)
    stacked = (h + l0.pads[0]) * w + npx * nt * max(kw, pe_eff)
    return kh if stacked < plain else 1


def _fusions(qgraph: QGraph, pe: int, simd: int, stack: int, always: bool = False) -> dict[int, QLayer]:
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
        kh = 1 if (i == 0 and stack > 1) else conv.kernel[0]
        cis = 1 if (i == 0 and stack > 1) else chunks(x[1], simd)
        k = kh * conv.kernel[1] * cis  # upper bound of the tile length (dense groups)
        nt = chunks(conv.out_channels, pe)
        qk = pool.kernel[0] * pool.kernel[1]
        plain = c_out[2] * c_out[3] * nt * max(k, pe) + p_out[2] * p_out[3] * chunks(c_out[1], simd) * max(qk, simd)
        fused = p_out[2] * p_out[3] * nt * qk * max(k, -(-pe // qk))
        if always or fused <= plain:
            out[i] = pool
    return out


def _dense_weight(layer: QLayer, cin: int) -> np.ndarray:
    """``(cout, cin, kh, kw)`` with zeros between convolution groups."""
    w = layer.weight
    cout = w.shape[0]
    g = layer.groups
    cin_g, cout_g = cin // g, cout // g
    wd = np.zeros((cout, cin) + w.shape[2:], dtype=np.int64)
    for i in range(g):
        wd[i * cout_g:(i + 1) * cout_g, i * cin_g:(i + 1) * cin_g] = w[i * cout_g:(i + 1) * cout_g]
    return wd


def schedule(qgraph: QGraph, target=None, pe: int | None = None, simd: int | None = None, *,
             fuse: str = "auto") -> Program:
    """Schedule ``qgraph`` onto the target's MAC array.

    Parameters
    ----------
    qgraph : QGraph
    target : Target, str or None
        A :class:`~hwflow.targets.Target` or its name (``None``: ``generic``). Gives the
        default array shape and the resource budget.
    pe, simd : int, optional
        Override the target's array shape.
    fuse : {"auto", "always", "never"}
        Fuse a MaxPool into the convolution before it when that saves cycles (``auto``),
        whenever legal (``always``), or not at all (``never``).

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
    from ..targets import load_target
    from .budget import check_budget
    from .estimate import estimate

    tgt = load_target(target if target is not None else "generic")
    if fuse not in ("auto", "always", "never"):
        raise OptionError(f"fuse must be 'auto', 'always' or 'never', not {fuse!r}")
    pe = _check_int("pe", pe) or tgt.pe
    simd = _check_int("simd", simd) or tgt.simd

    for layer in qgraph.layers:
        if layer.op not in SUPPORTED_OPS:
            raise UnsupportedOpError(f"layer {layer.name!r}: op {layer.op!r} is not supported in hardware")
        if layer.op in ("conv", "maxpool", "avgpool") and len(qgraph.tensors[layer.inputs[0]].shape) != 4:
            raise UnsupportedOpError(f"layer {layer.name!r}: {layer.op} needs a 4-D input")

    # ---- tensors: layout and liveness ----------------------------------------------------
    stack = _stack_rows(qgraph, pe, simd, fuse)
    tmaps: dict[str, dict] = {}
    fused = {} if fuse == "never" else _fusions(qgraph, pe, simd, stack, always=fuse == "always")
    skip = {i + 1 for i in fused}
    order = [qgraph.input] + [l.output for i, l in enumerate(qgraph.layers) if i not in fused]
    for name in order:
        t = qgraph.tensors[name]
        c, h, w = _chw(t.shape)
        tmaps[name] = dict(name=name, shape=t.shape, bits=t.bits, zero_point=t.zero_point,
                           c=c, h=h, w=w, chunks=chunks(c, simd))
    if stack > 1:
        tmaps[qgraph.input].update(chunks=1, stack=stack, stack_pad=qgraph.layers[0].pads[0])
    live = {qgraph.input: [0, 0]}
    for i, layer in enumerate(qgraph.layers):
        if i in skip:
            continue
        live[fused[i].output if i in fused else layer.output] = [i, i]
        for t in layer.inputs:
            live[t][1] = max(live[t][1], i)
    live[qgraph.output][1] = len(qgraph.layers)
    sizes = {n: (d["h"] + d.get("stack_pad", 0)) * d["w"] * d["chunks"] for n, d in tmaps.items()}
    bases, act_words = allocate(sizes, {k: tuple(v) for k, v in live.items()})
    tensors = {n: TensorMap(base=bases[n], **d) for n, d in tmaps.items()}

    # ---- datapath widths -------------------------------------------------------------------
    abits = max(t.bits for t in tensors.values())
    wbits = max([l.wbits for l in qgraph.layers if l.op in ("conv", "gemm")], default=2)
    mbits = max([l.mbits for l in qgraph.layers if l.has_requant] + [1])
    if any(int(l.m.max()) > 1 for l in qgraph.layers if l.has_requant):
        mbits = max(mbits, 2)
    lat = latencies(simd, mbits)
    ibits = codebook_bits(qgraph)  # weight sharing: the ROM holds codebook indices
    books: list[np.ndarray] = []
    cb_bases: list[int] = []
    if ibits:
        lat["codebook"] = 1  # rtl/codebook.py: registered lookup between ROM and MAC array
        lat["mac"] += lat["codebook"]

    acc_lo, acc_hi, post_lo, post_hi = 0, 0, 0, 0
    n_min, n_max = 0, 0
    addm = 0
    layers: list[LayerProgram] = []
    wimages: list[np.ndarray] = []
    w_next = 0
    ch_bias: list[np.ndarray] = []
    ch_m: list[np.ndarray] = []
    ch_n: list[np.ndarray] = []
    ch_next = 0
    luts: list[np.ndarray] = []
    lut_next = 0

    def channels(bias, m, n, c):
        nonlocal ch_next
        base = ch_next
        ch_bias.append(np.broadcast_to(np.asarray(bias, np.int64).reshape(-1), (c,)).copy())
        ch_m.append(np.broadcast_to(np.asarray(m, np.int64).reshape(-1), (c,)).copy())
        ch_n.append(np.broadcast_to(np.asarray(n, np.int64).reshape(-1), (c,)).copy())
        ch_next += c
        return base

    for i, layer in enumerate(qgraph.layers):
        if i in skip:
            continue
        pool = fused.get(i)
        ins = [tensors[t] for t in layer.inputs]
        out = tensors[pool.output if pool else layer.output]
        x = ins[0]
        qin = [qgraph.tensors[t] for t in layer.inputs]
        if layer.has_requant:
            blo, bhi = acc_bounds(layer, qin)
            post_lo, post_hi = min(post_lo, blo), max(post_hi, bhi)
            n_min, n_max = min(n_min, int(layer.n.min())), max(n_max, int(layer.n.max()))
        z_out = layer.lut_zero_point if layer.lut is not None else qgraph.tensors[layer.output].zero_point
        lut_en, lut_base = 0, 0
        if layer.lut is not None:
            lut_en, lut_base = 1, lut_next
            luts.append(layer.lut.astype(np.int64))
            lut_next += layer.lut.shape[0]
        common = dict(name=layer.name, op=layer.op, inputs=tuple(layer.inputs), output=layer.output,
                      ih=x.h, iw=x.w, ich=x.chunks, oh=out.h, ow=out.w, och=out.chunks,
                      in_base=x.base, out_base=out.base, z_out=z_out, lo=layer.lo, hi=layer.hi,
                      lut_en=lut_en, lut_base=lut_base)
        xlo, xhi = qin[0].range

        if layer.op in ("conv", "gemm"):
            if layer.op == "gemm" and len(x.shape) == 4:
                wd = layer.weight.reshape(layer.out_channels, x.c, x.h, x.w)
                kh, kw, sh, sw, pads, cin = x.h, x.w, 1, 1, (0, 0, 0, 0), x.c
            elif layer.op == "gemm":
                wd = layer.weight.reshape(layer.out_channels, x.c, 1, 1)
                kh, kw, sh, sw, pads, cin = 1, 1, 1, 1, (0, 0, 0, 0), x.c
            elif x.stack > 1:
                # Row-stacked input: one read holds the kernel's kh rows (lane ky*cin + c).
                cin = x.c * layer.kernel[0]
                w = layer.weight
                wd = w.transpose(0, 2, 1, 3).reshape(w.shape[0], cin, 1, w.shape[3])
                kh, kw = 1, layer.kernel[1]
                (sh, sw), p = layer.strides, layer.pads
                pads = (0, p[1], 0, p[3])
                common.update(ih=x.h + x.stack_pad, ich=1)
            else:
                cin = x.c
                wd = _dense_weight(layer, cin)
                (kh, kw), (sh, sw), pads = layer.kernel, layer.strides, layer.pads
            cout = layer.out_channels
            if wd.shape[1] != cin:
                raise UnsupportedOpError(f"layer {layer.name!r}: weight {layer.weight.shape!r} does not match input {x.shape!r}")
            nt = chunks(cout, pe)
            sg = _supergroup(layer.groups, cin, cout, pe, simd) if layer.op == "conv" else 1
            if sg > 1:
                cis, tpg = cin // sg // simd, cout // sg // pe
            else:
                cis, tpg = x.chunks, nt
            k = kh * kw * cis
            qh = qw = 1
            if pool is not None:
                # Fused MaxPool: each pooled pixel runs the conv at its qh x qw window positions.
                (qh, qw), (qsh, qsw) = pool.kernel, pool.strides
                sh, sw, wsh, wsw = sh * qsh, sw * qsw, sh, sw
                common["name"] = f"{layer.name}+{pool.name}"
            else:
                wsh, wsw = sh, sw
            t = max(k, -(-pe // (qh * qw)))
            conv_hw = int(np.prod(qgraph.tensors[layer.output].shape[2:]))
            words = weight_words(wd, pe, simd, nt, cis, tpg)
            if ibits:
                books.append(np.asarray(layer.attrs["codebook"], dtype=np.int64))
                cb_bases.append(w_next)
                words = codebook_indices(words, books[-1], ibits)
            # Sums without bias, per channel, over all inputs in range.
            flat = layer.weight.reshape(cout, -1)
            pos = np.where(flat > 0, flat, 0).sum(axis=1)
            neg = np.where(flat < 0, flat, 0).sum(axis=1)
            acc_lo = min(acc_lo, int((pos * xlo + neg * xhi).min()))
            acc_hi = max(acc_hi, int((pos * xhi + neg * xlo).max()))
            lp = LayerProgram(**common, kind="mac", kh=kh, kw=kw, sh=sh, sw=sw, pt=pads[0], pl=pads[1],
                              qh=qh, qw=qw, wsh=wsh, wsw=wsw,
                              nt=nt, cis=cis, tpg=tpg, k=k, t=t, nb=pe, cout=cout,
                              w_base=w_next, w_words=words.shape[0],
                              ch_base=channels(layer.bias, layer.m, layer.n, cout),
                              pv=x.zero_point, macs=int(layer.weight.size) * conv_hw)
            wimages.append(words)
            w_next += words.shape[0]
            layers.append(lp)
        elif layer.op in ("maxpool", "avgpool", "lut"):
            if layer.op == "lut":
                kh = kw = sh = sw = 1
                pads = (0, 0, 0, 0)
            else:
                (kh, kw), (sh, sw), pads = layer.kernel, layer.strides, layer.pads
            kind = "max" if layer.op == "maxpool" else "sum"
            c = x.c
            if kind == "max":
                bias, m, n = 0, 1, 0
                pv = xlo
                zo, lo, hi = 0, *qgraph.tensors[layer.output].range
                acc_lo, acc_hi = min(acc_lo, xlo), max(acc_hi, xhi)
            else:
                bias = 0 if layer.bias is None else layer.bias
                m, n = layer.m, layer.n
                pv = x.zero_point
                zo, lo, hi = z_out, layer.lo, layer.hi
                acc_lo, acc_hi = min(acc_lo, kh * kw * xlo), max(acc_hi, kh * kw * xhi)
            k = kh * kw
            lp = LayerProgram(**{**common, "z_out": zo, "lo": lo, "hi": hi}, kind=kind, kh=kh, kw=kw,
                              sh=sh, sw=sw, pt=pads[0], pl=pads[1], nt=x.chunks, cis=1, tpg=1, k=k,
                              t=max(k, simd), nb=simd, cout=c, ch_base=channels(bias, m, n, c), pv=pv)
            layers.append(lp)
        elif layer.op == "add":
            b = ins[1]
            if (b.c, b.h, b.w) != (x.c, x.h, x.w) or (out.c, out.h, out.w) != (x.c, x.h, x.w):
                raise UnsupportedOpError(f"layer {layer.name!r}: add needs equal input and output shapes (no broadcasting)")
            ma, mb = (int(v) for v in layer.add_m)
            za, zb = qin[0].zero_point, qin[1].zero_point
            ylo, yhi = qin[1].range
            acc_lo = min(acc_lo, xlo - za, ylo - zb)
            acc_hi = max(acc_hi, xhi - za, yhi - zb)
            addm = max(addm, abs(ma), abs(mb))
            lp = LayerProgram(**common, kind="add", nt=x.chunks, k=2, t=max(2, simd), nb=simd, cout=x.c,
                              in2_base=b.base, za=za, zb=zb, ma=ma, mb=mb,
                              ch_base=channels(0, layer.m, layer.n, x.c))
            layers.append(lp)
        elif layer.op == "concat":
            coff = 0
            olo, ohi = qgraph.tensors[layer.output].range
            for i, src in enumerate(ins):
                if (src.h, src.w) != (out.h, out.w):
                    raise UnsupportedOpError(f"layer {layer.name!r}: concat is only supported along channels")
                lp = LayerProgram(**{**common, "name": f"{layer.name}[{i}]", "ih": src.h, "iw": src.w,
                                     "ich": src.chunks, "in_base": src.base, "z_out": 0, "lo": olo, "hi": ohi,
                                     "lut_en": 0, "lut_base": 0},
                                  kind="max", nt=src.chunks, k=1, t=simd, nb=simd, cout=src.c, coff=coff,
                                  ch_base=channels(0, 1, 0, src.c), pv=int_range(src.bits)[0])
                layers.append(lp)
                lo_, hi_ = qin[i].range
                acc_lo, acc_hi = min(acc_lo, lo_), max(acc_hi, hi_)
                coff += src.c
        else:  # pragma: no cover - guarded above
            raise UnsupportedOpError(f"layer {layer.name!r}: op {layer.op!r} is not supported in hardware")

    for lp in layers:
        lp.drain = drain_cycles(lat, lp.kind, lp.nb, lp.t, lp.k)
    input_lead = overlap_drains(layers, lat, simd, act_words, tensors[qgraph.input])

    acc_bits = max(bits_for_range(acc_lo, acc_hi), abits + 1)
    post_bits = max(bits_for_range(min(post_lo, acc_lo), max(post_hi, acc_hi)), acc_bits + 1)
    weights = np.concatenate(wimages) if wimages else np.zeros((1, pe, simd), np.int64)
    bias = np.concatenate(ch_bias) if ch_bias else np.zeros(1, np.int64)
    m = np.concatenate(ch_m) if ch_m else np.ones(1, np.int64)
    n = np.concatenate(ch_n) if ch_n else np.zeros(1, np.int64)
    lut = np.concatenate(luts) if luts else np.zeros(1, np.int64)
    prog = Program(
        name=qgraph.name, pe=pe, simd=simd, abits=abits, wbits=wbits, acc_bits=acc_bits,
        post_bits=post_bits, mbits=mbits, n_min=n_min, n_max=n_max,
        addm_bits=(max(addm, 1).bit_length() if any(l.kind == "add" for l in layers) else 0),
        layers=layers, tensors=tensors, input=qgraph.input, output=qgraph.output,
        act_words=act_words, weights=weights, bias=bias, m=m, n=n, lut=lut, latency=lat,
        host_tail=list(qgraph.host_tail), target=tgt.name, ibits=ibits, codebooks=books, cb_bases=cb_bases,
        input_lead=input_lead, dsp_mults=pe * simd,
    )
    prog.estimate = estimate(prog, tgt)
    prog.dsp_mults = mac_dsp_lanes(prog, tgt)
    if prog.dsp_mults < pe * simd:
        prog.estimate = estimate(prog, tgt)
    check_budget(prog, tgt)
    return prog
