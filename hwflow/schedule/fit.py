"""Will the design fit its target? Memory and DSPs from shapes and options, before any heavy work.

The compile flow runs :func:`fit_check` right after optimizing the graph, before
calibration, quantization and ROM building, so a model far too big for its target is
refused in seconds with the figures and the nearest options that would fit
(``hwflow inspect MODEL --target T`` prints the same verdict).

It sizes the design with the scheduler's own rules, on a QGraph without weights
(:func:`skeleton`: the quantizer's float lowering and tensor widths, zero-cost weight
views): the rewrites and activation layout (:func:`~hwflow.schedule.schedule.arrange`),
each MAC layer's ROM words (:func:`~hwflow.schedule.lower.mac_geometry`), the memories the
RTL builds, their tiling into blocks and the weights' memory kind
(:func:`~hwflow.schedule.estimate.memory_shapes`,
:func:`~hwflow.schedule.estimate.place_memories`) and the DSP rule
(:func:`~hwflow.schedule.estimate.dsp_blocks`).

Exact before quantization: the weight ROM, and the activation RAM's width. Known only
after it, and so bounded here: the activation RAM's depth (the overlaps of a step's output
with an input it reads last depend on the lowered timeline), the per-channel ROM's width (bias range,
multiplier, shifts), the LUT ROM's depth (a clamped code range), whether every codebook
holds 0 (else the ROM keeps plain weights), the requantizer's multiplier. The verdict
is ``"too big"`` only when even the lower bounds exceed the target (then the scheduler's
budget check, :func:`~hwflow.schedule.budget.check_budget`, would refuse too), ``"fits"``
when the upper bounds fit, else ``"tight"`` (decided after quantization). LUTs depend on
the ROM contents and are checked after scheduling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import FitError
from ..quant.qgraph import QGraph, QLayer, QTensor
from .estimate import chan_width, dsp_blocks, memory_shapes, place_memories
from .lower import mac_geometry, weight_pack
from .schedule import _max_lanes, arrange

__all__ = ["FitReport", "fit_check", "check_fit", "skeleton", "hollow", "format_bits"]

#: Constants larger than this become zero-cost views in :func:`hollow` (small ones, such
#: as BatchNorm statistics, keep their values: the lowering folds them).
_HOLLOW_MIN = 4096

#: Widest shift field the per-channel ROM can need (``n`` within int8), and the bias's width.
_N_BITS_MAX, _BIAS_BITS_MAX = 8, 32


def format_bits(n: float) -> str:
    """``1.15 Gbit``, ``3.8 Mbit``, ``512 kbit``, ``96 bit`` (decimal units, as FPGA vendors count)."""
    for unit, scale in (("Gbit", 1e9), ("Mbit", 1e6), ("kbit", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:,.0f} {unit}"
    return f"{int(n)} bit"


@dataclass
class FitReport:
    """What the design needs against what the target has (see the module docstring).

    ``(lo, hi)`` pairs bound what quantization decides; single numbers are exact.
    """

    model: str
    target: str
    pe: int
    simd: int
    wbits: int
    abits: int
    verdict: str
    weight_words: int
    weight_bits: tuple[int, int]
    act_words: int
    act_bits: int
    chan_entries: int
    lut_entries: tuple[int, int]
    other_bits: tuple[int, int]
    blocks: tuple[int, int]
    dsps: tuple[int, int]
    have_blocks: int | None
    have_bits: int | None
    have_dsps: int | None
    have_kinds: dict[str, int] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    nearest: dict[str, Any] | None = None
    smallest: dict[str, Any] | None = None
    act_words_lo: int = 0

    @property
    def need_bits(self) -> tuple[int, int]:
        """Bits of every memory: ``(lo, hi)``."""
        return (self.weight_bits[0] + self.act_bits + self.other_bits[0],
                self.weight_bits[1] + self.act_bits + self.other_bits[1])

    def to_json(self) -> dict:
        d = asdict(self)
        d["need_bits"] = list(self.need_bits)
        d["message"] = self.message()
        return d

    def message(self) -> str:
        """One line: the verdict with the figures (and, when too big, what would fit)."""
        w = _span(self.weight_bits)
        head = (f"{self.model} needs {w} of weights and {format_bits(self.act_bits)} of activations "
                f"(PE {self.pe} x SIMD {self.simd}, {self.wbits}-bit weights, {self.abits}-bit activations")
        if self.have_blocks is None:
            return f"{head}); {self.target} has no limits"
        head += f"; {_span(self.blocks, format_bits=False)} block RAMs)"
        have = (f"{self.target} holds {format_bits(self.have_bits)} ({self.have_blocks} block RAMs"
                + "".join(f", {n} {k}" for k, n in self.have_kinds.items())
                + (f", {self.have_dsps} DSPs" if self.have_dsps is not None else "") + ")")
        if self.verdict == "fits":
            return f"{head}: memory and DSPs fit; {have} (LUTs are checked after scheduling)"
        if self.verdict == "tight":
            return f"{head}: may fit; {have} (decided after quantization)"
        text = f"{head}: does not fit; {have}"
        if self.dsps[0] > (self.have_dsps if self.have_dsps is not None else self.dsps[0]):
            text += f"; it needs at least {self.dsps[0]} DSPs"
        if self.nearest is not None:
            fits = "fits" if self.nearest["verdict"] == "fits" else "may fit"
            text += f"; {self.nearest['flags']} {fits} (needs {format_bits(self.nearest['need_bits'])})"
        elif self.smallest is not None:
            text += (f"; even {self.smallest['flags']} needs {format_bits(self.smallest['need_bits'])}"
                     f"; try --target generic (simulation, no limits)")
        return text


def _span(v: tuple[int, int], format_bits=format_bits) -> str:
    fmt = format_bits or (lambda n: f"{n:,}")
    return fmt(v[0]) if v[0] == v[1] else f"{fmt(v[0])} to {fmt(v[1])}"


def hollow(graph):
    """A copy of ``graph`` whose large constants are zero-cost float64 views of their shape.

    Sizes need shapes, not values: lowering and pruning channels of such a graph cost
    nothing per weight (a model with 10**8 weights is sized in well under a second).
    """
    from ..ir.graph import Graph, Tensor

    g = Graph.__new__(Graph)
    g.__dict__.update(graph.__dict__)
    g.tensors = dict(graph.tensors)
    for name, t in graph.tensors.items():
        if t.data is not None and t.data.size > _HOLLOW_MIN and t.data.dtype.kind == "f":
            g.tensors[name] = Tensor(name, t.shape, np.dtype(np.float64),
                                     np.broadcast_to(np.float64(0.0), t.shape))
    g.meta = dict(graph.meta)
    return g


def _zeros(shape) -> np.ndarray:
    return np.broadcast_to(np.int64(0), tuple(shape))


def skeleton(graph, quant=None, prune=None) -> QGraph:
    """The QGraph quantization would make, without values: every layer, tensor shape and
    code width as :func:`hwflow.quant.quantize` gives them (the same lowering, per-layer
    widths and shared-scale groups), weights as zero-cost views, and ``share_bits`` set as
    weight sharing sets it. Channel pruning (``prune.channels``) is applied first. A QONNX
    model is already quantized: its own QGraph (cheap: no calibration) is the skeleton.
    """
    from ..config import QuantConfig
    from ..quant._lower import lower
    from ..quant.qonnx import is_qonnx, quantize_qonnx
    from ..quant.quantize import _fixed_weight, _union_groups

    if is_qonnx(graph):
        qg = quantize_qonnx(graph)
        qg.attrs["mbits"] = max([l.mbits for l in qg.layers if l.has_requant] + [1])
        return qg

    quant = QuantConfig() if quant is None else quant
    g = hollow(graph)
    if prune is not None and prune.channels:
        from ..prune import prune_channels

        g, _ = prune_channels(g, prune.channels, norm=prune.norm)
    plan = lower(g)
    quant.check_layers([l.name for l in plan.layers])
    fixed = graph.meta.get("fixed_qparams") or {}
    pinned = fixed.get("tensors", {})
    producer = {l.output: l for l in plan.layers}
    abits = {t: quant.bits_of(producer[t].name)[1] if t in producer else quant.abits
             for t in [plan.input] + list(producer)}
    for t, spec in pinned.items():
        if t in abits:
            abits[t] = int(spec[2])
    specs = quant.resolve([l.name for l in plan.layers], [l.name for l in plan.layers if l.op in ("conv", "gemm")])
    rep = _union_groups(plan)
    group_bits: dict[str, int] = {}
    for t, r in rep.items():
        group_bits[r] = max(group_bits.get(r, 0), abits[t])
    tensors = {t: QTensor(t, plan.shapes[t], group_bits[rep[t]], 1.0, 0) for t in rep}
    layers = []
    for fl in plan.layers:
        out = tensors[fl.output]
        lo, hi = out.range
        common = dict(name=fl.name, inputs=list(fl.inputs), output=fl.output, kernel=fl.kernel,
                      strides=fl.strides, pads=fl.pads, groups=fl.groups, lo=lo, hi=hi)
        lut = np.zeros(hi - lo + 1, np.int64) if fl.lut is not None else None
        attrs: dict[str, Any] = {"lut_space": fl.clamp is None}
        if fl.op in ("conv", "gemm"):
            wfix = _fixed_weight(fl, fixed.get("weights", {})) if fixed.get("weights") else None
            spec = specs[fl.name]  # binary (no zero value): sized as its 2-bit ternary code
            wfmt, wbits = ("ternary", 2) if spec.wformat == "binary" else (spec.wformat, spec.wbits)
            if wfix is not None:
                wfmt, wbits = "int", int(wfix["bits"])
            if spec.wformat == "binary" and wfix is None:
                attrs.update(binary=True)  # the ROM may hold its sign alone (RomImages.narrow_lr)
            if prune is not None and prune.share:
                attrs.update(share_bits=prune.share)
            layers.append(QLayer(op=fl.op, weight=_zeros(fl.weight.shape), bias=np.zeros(fl.weight.shape[0], np.int64),
                                 m=[1], n=[0], wbits=wbits, wformat=wfmt, lut=lut, attrs=attrs, **common))
        elif fl.op in ("maxpool", "concat"):
            layers.append(QLayer(op=fl.op, attrs=attrs, **common))
        elif fl.op == "lut":
            tlo, thi = tensors[fl.inputs[0]].range
            layers.append(QLayer(op="lut", m=[1], n=[0], lut=np.zeros(thi - tlo + 1, np.int64),
                                 lut_zero_point=0, attrs=attrs, **{**common, "lo": tlo, "hi": thi}))
        elif fl.op == "avgpool":
            c = plan.shapes[fl.inputs[0]][1]
            layers.append(QLayer(op="avgpool", bias=np.zeros(c, np.int64), m=[1], n=[0], lut=lut, attrs=attrs,
                                 **common))
        elif fl.op == "add":
            layers.append(QLayer(op="add", m=[1], n=[0], add_m=(1, 1), mbits=1, lut=lut, attrs=attrs, **common))
        else:  # pragma: no cover - LAYER_OPS and the lowering agree (tests/quant)
            raise AssertionError(fl.op)
    qg = QGraph(plan.name, tensors, layers, plan.input, plan.output, plan.host_tail, input_layout=plan.input_layout)
    qg.attrs["mbits"] = quant.mbits  # the widest multiplier any scheme may use (pow2: an AveragePool's)
    return qg


def _needs(qg: QGraph, target, pe: int, simd: int, fuse: str) -> dict[str, Any]:
    """Sizes of ``qg`` (a :func:`skeleton`) on a PE x SIMD array: exact ones and bounds."""
    stream, fused, tensors, act_words = arrange(qg, pe, simd, fuse)
    # The scheduler may overlap a step's output with an input it reads last (a residual
    # block holds two maps, not three): with every such overlap at shift 0, a lower bound.
    act_lo = arrange(qg, pe, simd, fuse, shared=True)[3]
    abits = max(t.bits for t in tensors.values())
    macs = [l for l in qg.layers if l.op in ("conv", "gemm")]
    wbits = max([l.wbits for l in macs], default=2)
    share = [l.attrs.get("share_bits") for l in macs]
    # Indices replace weights only if every layer is shared and every codebook holds 0.
    ibits = max(share) if macs and all(share) else 0
    pack = weight_pack(pe, simd, ibits)
    geos = [mac_geometry(l, tensors[l.inputs[0]], pe, simd, stream)[0] for l in macs]
    words = sum(g.rom_words(pack) for g in geos) or 1
    # Lower bound: each layer at its own width, packed into the widest's lanes
    # (:meth:`~hwflow.schedule.lower.RomImages.narrow_lr`; not pot codes or indices).
    narrow = not ibits and not all(l.wformat == "pot" for l in macs)
    words_lo = sum(-(-g.rom_words(pack) // (_slots(wbits, 1 if l.attrs.get("binary") else l.mul_wbits)
                                            if narrow and not g.diagonal else 1))
                   for l, g in zip(macs, geos)) or 1
    widths = sorted({wbits, ibits or wbits})
    books = sum(1 << b for b in share) * wbits if ibits else 0  # the codebooks, at most 2**share each
    skip = {i + 1 for i in fused}
    # One channel-ROM entry per output channel of every step (a fused MaxPool has none).
    chan = sum(tensors[l.output].c if l.output in tensors else qg.tensors[l.output].shape[1]
               for i, l in enumerate(qg.layers) if i not in skip) or 1
    # One LUT entry per code of the requantizer's space; a clamp before the LUT narrows it.
    luts = [l for l in qg.layers if l.lut is not None]
    lut = (max(1, sum(len(l.lut) if l.attrs.get("lut_space") else 1 for l in luts)),
           max(1, sum(len(l.lut) for l in luts)))
    mbits = int(qg.attrs.get("mbits", 1))
    cw = (chan_width(1, 1, 1), chan_width(_BIAS_BITS_MAX, mbits, _N_BITS_MAX))

    def use(wb: int, c: int, nl: int, aw: int, lanes: int = 1, words: int = words,
            banks: str = "high") -> dict[str, int]:
        # With ``lanes`` back-end lanes the channel ROM holds a group of ``lanes`` channels a
        # word, each step's channels padded to a whole group.
        entries = -(-(chan + (len(qg.layers) + 1) * (lanes - 1)) // lanes)
        mems = memory_shapes(pe, simd, abits, wb, act_words=aw, weight_words=words,
                             chan_entries=entries, chan_width=lanes * c, lut_entries=nl)
        return place_memories(mems, target, banks)[1]

    family = target.family
    use_lo = use(widths[0], cw[0], lut[0], act_lo, words=words_lo, banks="low")
    # The scheduler picks 1 .. lanes_max back-end lanes (lanes_max with a depthwise unit).
    hi = [use(widths[-1], cw[1], lut[1], act_words, lanes) for lanes in {1, _max_lanes(qg, pe, simd)}]
    use_hi = {k: max(u[k] for u in hi) for k in hi[0]}

    has_add = any(l.op == "add" for l in qg.layers)
    # MAC lanes past the DSPs multiply in LUTs (mac_dsp_lanes): only the requantizer's
    # multiplier and the Add's two can overflow the DSPs.
    rq_hi = dsp_blocks(64, mbits + 1, family) if mbits > 1 else 0
    return {
        "pe": pe, "simd": simd, "wbits": wbits, "abits": abits, "ibits": ibits,
        "weight_words": words, "act_words": act_words, "act_words_lo": act_lo, "chan_entries": chan,
        "lut_entries": lut,
        "weight_bits": (words_lo * pe * simd * widths[0] + (books if ibits and widths[0] == ibits else 0),
                        words * pe * simd * widths[-1] + books),
        "act_bits": act_words * simd * abits,
        "other_bits": (chan * cw[0] + lut[0] * abits, chan * cw[1] + lut[1] * abits),
        "blocks": (use_lo[target.block_ram.name], use_hi[target.block_ram.name]),
        "use": (use_lo, use_hi),
        "dsps": (2 * has_add, 2 * has_add + rq_hi),
    }


def _slots(big: int, b: int) -> int:
    """Weight words of ``b`` bits a ROM word of ``big``-bit lanes holds (``big >> lr >= b``)."""
    r = 1
    while big % (2 * r) == 0 and big // (2 * r) >= b:
        r *= 2
    return r


def _verdict(n: dict, target) -> str:
    cap_d = target.dsps

    def fits(bound: int) -> bool:
        use = n["use"][bound]
        return (all(k.blocks is None or use[k.name] <= k.blocks for k in target.memory)
                and (cap_d is None or n["dsps"][bound] <= cap_d))

    return "fits" if fits(1) else "tight" if fits(0) else "too big"


def _flags(changes: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changes.items())


def _alternatives(graph, target, quant, prune, pe: int, simd: int, fuse: str):
    """``(nearest, smallest)``: the first option change (fewest bits given up first) whose
    lower bounds fit, and the needs of the smallest configuration tried."""
    tries: list[dict] = []
    for wb in (6, 4, 3, 2):
        if wb < quant.wbits:
            tries.append({"wbits": wb})
    for ab in (6, 4):
        if ab < quant.abits:
            tries.append({"wbits": min(quant.wbits, 4), "abits": ab})
    small = {"wbits": 2, "abits": 2}
    for shape in ((4, 4), (2, 2), (1, 1)):
        if shape[0] * shape[1] < pe * simd:
            tries.append({**small, "pe": shape[0], "simd": shape[1]})
    smallest = None
    cache: dict = {}
    if quant.weights in ("binary", "ternary"):
        # Its int8 first layer (kept at 8 bits unless the user says otherwise) is most of the
        # weights in an MLP on images: 4-bit weights there, its output width kept.
        sk = skeleton(graph, quant, prune)
        first = next((l for l in sk.layers if l.op in ("conv", "gemm")), None)
        if first is not None and first.wformat == "int" and first.wbits > 4 and first.name not in quant.layer_bits:
            tries.insert(0, {"bits": f"{first.name}=4/{sk.tensors[first.output].bits}",
                             "layer_bits": {**quant.layer_bits, first.name: (4, sk.tensors[first.output].bits)}})
    for ch in tries:
        if quant.weights != "int":  # a low-bit format keeps its code width; only int weights narrow
            ch = {k: v for k, v in ch.items() if k != "wbits"}
        lb = ch.pop("layer_bits", {}) if "layer_bits" in ch else {}
        q = quant.with_(wbits=ch.get("wbits", quant.wbits), abits=ch.get("abits", quant.abits), layer_bits=lb)
        key = (q.wbits, q.abits, tuple(sorted(lb.items())))
        if key not in cache:
            cache[key] = skeleton(graph, q, prune)
        n = _needs(cache[key], target, ch.get("pe", pe), ch.get("simd", simd), fuse)
        need = n["weight_bits"][0] + n["act_bits"] + n["other_bits"][0]
        rec = {"changes": ch, "flags": _flags(ch), "need_bits": need, "blocks": n["blocks"][0],
               "verdict": _verdict(n, target)}
        smallest = rec
        if rec["verdict"] != "too big":
            return rec, None
    return None, smallest


def fit_check(graph, target, quant=None, prune=None, schedule=None, *, suggest: bool = True) -> FitReport:
    """Size ``graph`` (optimized, float) for ``target`` with the given options.

    Parameters
    ----------
    graph : hwflow.ir.Graph
        The optimized float graph (:func:`hwflow.flow.load_graph`).
    target : Target or str
    quant : QuantConfig, optional
    prune : PruneConfig, optional
        Channel pruning changes the shapes; weight sharing the ROM's width. Magnitude
        pruning leaves the ROM as large (zeros are stored).
    schedule : ScheduleConfig, optional
        The array shape (default: the target's) and MaxPool fusion.
    suggest : bool
        When too big, look for the nearest options that fit.

    Returns
    -------
    FitReport
    """
    from ..config import QuantConfig, ScheduleConfig
    from ..targets import load_target

    tgt = load_target(target)
    quant = QuantConfig() if quant is None else quant
    schedule = ScheduleConfig() if schedule is None else schedule
    pe, simd = schedule.pe or tgt.pe, schedule.simd or tgt.simd
    n = _needs(skeleton(graph, quant, prune), tgt, pe, simd, schedule.fuse)
    verdict = _verdict(n, tgt)
    nearest = smallest = None
    if verdict == "too big" and suggest:
        nearest, smallest = _alternatives(graph, tgt, quant, prune, pe, simd, schedule.fuse)
    options = {"wbits": quant.wbits, "abits": quant.abits,
               "layer_bits": {k: list(v) for k, v in quant.layer_bits.items()}, "scheme": quant.scheme, "prune": None if prune is None else prune.settings(), "fuse": schedule.fuse}
    return FitReport(
        model=graph.name, target=tgt.name, pe=pe, simd=simd, wbits=n["wbits"], abits=n["abits"], verdict=verdict,
        weight_words=n["weight_words"], weight_bits=n["weight_bits"], act_words=n["act_words"],
        act_bits=n["act_bits"], act_words_lo=n["act_words_lo"], chan_entries=n["chan_entries"],
        lut_entries=n["lut_entries"],
        other_bits=n["other_bits"], blocks=n["blocks"], dsps=n["dsps"], have_blocks=tgt.bram_blocks,
        have_bits=None if tgt.bram_bits is None else sum(k.bits for k in tgt.memory if k.blocks is not None),
        have_dsps=tgt.dsps, have_kinds={k.name: k.blocks for k in tgt.memory[1:] if k.blocks is not None}, options=options, nearest=nearest, smallest=smallest,
    )


def check_fit(graph, target, quant=None, prune=None, schedule=None) -> FitReport:
    """:func:`fit_check`, raising :class:`FitError` (its one-line message) when too big."""
    report = fit_check(graph, target, quant, prune, schedule)
    if report.verdict == "too big":
        raise FitError(report.message())
    return report
