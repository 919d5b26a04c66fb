"""The Program: a QGraph mapped onto the PE x SIMD array, ready for the RTL generator.

A :class:`Program` is everything the hardware needs and nothing it must guess: one
:class:`LayerProgram` (a loop-nest descriptor) per hardware step, the activation memory
map, the ROM images (weights, per-channel bias/m/n, LUTs), the datapath widths, the
pipeline latencies, and the exact cycle count the simulation must reproduce.

Cycle model (start sampled at cycle 0, ``done`` high at cycle ``cycles``)::

    cycles = input_lead + sum(layer.cycles) + output_beats + 2
    layer.cycles = SETUP + tiles * t + drain,   tiles = oh * ow * nt * qh * qw

``t`` is the number of cycles spent per tile (``max(k, nb)``, at least
:data:`MERGE_CYCLES` with a fused pool window: :func:`tile_cycles`; a depthwise ``dw`` step's tile
is one input column of a row group, ``t = max(reads, kh*kw)``, see :class:`LayerProgram`),
``drain`` the number of
cycles before the next step may start: for the last step, until its last result is
written; for the others as few as the next step's reads and the back end allow (layers
overlap, see :func:`~hwflow.schedule.schedule.overlap_drains`).

That is the count with stream partners that never stall. With partners that do, every
inference takes exactly ``cycles + stall_cycles``, where a *stall cycle* is one in which a
partner refuses a beat the core is ready for: an input stall (``in_ready`` high, ``in_valid``
low) or an output stall (``out_valid`` high, ``out_ready`` low). The core runs the schedule
in lockstep with the input stream (an input stall holds every register and memory port,
:mod:`hwflow.rtl.accelerator`), and an output stall holds the output phase, so each stall
cycle delays ``done`` by exactly one cycle and the no-stall schedule is unchanged, cycle for
cycle (``hwflow simulate --stall P`` checks it).

The streams carry words, not single codes: one beat is ``simd`` lanes, as FINN's folded
streams do. The host packs and unpacks with the Program's maps (:meth:`Program.stream_maps`,
:func:`hwflow.sim.beats.pack` / :func:`~hwflow.sim.beats.unpack`). The input comes one of
two ways:

- *stored*: one beat is one activation-RAM word of the input tensor's layout
  (:meth:`TensorMap.index_map`); the first layer starts after ``input_lead`` of the
  ``input_beats`` beats and reads behind the stream (``input_lead`` up to the whole input
  when the first layer would write before the input is in: one write port);
- *streamed* (:class:`InputStream`, a first convolution with few input channels): the
  host sends the first layer's receptive fields, im2col'd, in the order it reads them,
  and the layer takes them straight from the stream (no activation RAM, no input phase:
  ``input_lead`` is the one WAIT cycle).

Weight load: when the weight memory is in a kind the bitstream cannot initialise
(``weight_kind.init`` false: iCE40 SPRAM), the core takes its ``weight_words`` words once
after reset through the weight-load stream, one word per cycle, before the first
``start`` (:attr:`Program.load_cycles`); the per-inference cycle count does not include
it and does not change.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["KINDS", "SETUP_CYCLES", "TensorMap", "LayerProgram", "Program"]

#: Hardware step kinds (the order is the code in the descriptor ROM).
KINDS = ("mac", "max", "sum", "add", "dw", "xnor")

#: Cycles a layer spends loading its descriptor before its first tile.
SETUP_CYCLES = 2

#: Registers between the activation RAM's synchronous read and the datapath (pad
#: substitution, MAC array, pool unit): they keep the block RAMs' clock-to-out and the
#: output mux of a RAM built from several blocks off the datapath's paths. The controller
#: delays its step flags, the weight address and the stream beats by as many cycles.
READ_DATA_REGS = 1

#: Cycles from a controller step to its data at the datapath (``latency["issue"]``): two
#: address registers, the synchronous read, then :data:`READ_DATA_REGS`.
ISSUE_CYCLES = 2 + 1 + READ_DATA_REGS

#: Stages of the max-merge of a fused MaxPool's window (``latency["merge"]`` in a program with
#: one; rtl/accelerator.py): a result's comparison with the held maximum is registered, then
#: loads the hold register. Consecutive results of a window must therefore come at least this
#: many cycles apart: a pooled step's ``t`` is at least this (:func:`tile_cycles`).
MERGE_CYCLES = 2


def tile_cycles(k: int, ng: int, win: int) -> int:
    """Cycles of a ``mac`` step's tile: ``max(k, ceil(ng / win))``, at least
    :data:`MERGE_CYCLES` with a fused pool window (``win = qh * qw > 1``).

    ``k`` reads accumulate a result; the serializer takes a pixel's ``ng`` groups while the
    ``win`` tiles of its window run; the max-merge needs its results that far apart (it
    costs cycles only where ``k == 1``).
    """
    return max(k, -(-ng // win), MERGE_CYCLES if win > 1 else 1)


#: The requantizer's multiply is split into partial products of operands of at most this many
#: unsigned bits (with a sign bit, one 18 x 18 ECP5 DSP each), registered before their sum
#: (rtl/requantizer.py).
RQ_PIECE = 17

#: Low bits of the requantizer's shift amount that its second shift stage takes (the first
#: shifts by the rest, a multiple of 2**RQ_FINE).
RQ_FINE = 2


@dataclass(frozen=True)
class TensorMap:
    """Where and how one activation tensor lives in the activation RAM.

    The layout is HWC: word ``base + (y * w + x) * chunks + c // simd``, lane ``c % simd``.
    ``bits`` is the signed width of the codes (``QTensor.value_bits``: 2 for bipolar tensors).
    A streamed network input (:class:`InputStream`) is not in the RAM (``in_ram`` False,
    no words).
    """

    name: str
    shape: tuple[int, ...]
    bits: int
    zero_point: int
    c: int
    h: int
    w: int
    chunks: int
    base: int
    in_ram: bool = True

    @property
    def words(self) -> int:
        """RAM words the tensor occupies."""
        return self.h * self.w * self.chunks if self.in_ram else 0

    @property
    def size(self) -> int:
        """Number of codes (the NCHW size)."""
        return self.c * self.h * self.w

    def index_map(self, simd: int) -> np.ndarray:
        """``(words, simd)`` NCHW index of the code each lane of each word holds (-1: none).

        Word ``i`` is RAM word ``base + i``; lanes past the channels hold no code.
        """
        m = np.full((self.words, simd), -1, dtype=np.int64)
        hw = self.h * self.w
        pix, ch = np.meshgrid(np.arange(hw), np.arange(self.c), indexing="ij")
        m[pix * self.chunks + ch // simd, ch % simd] = ch * hw + pix
        return m


@dataclass(frozen=True)
class InputStream:
    """The network input streamed into the first convolution, im2col'd by the host.

    The first layer runs as a 1 x 1 convolution over the ``oh x ow`` grid of its outputs
    (before a fused MaxPool), each "pixel" a receptive field of ``kh*kw*c`` codes in
    ``chunks`` words: lane ``s`` of chunk ``q`` holds tap ``i = q*simd + s = (ky*kw + kx)*c
    + ch``, the code ``(ch, oy*sh - pt + ky, ox*sw - pl + kx)`` of the ``c x h x w`` input,
    or nothing where that lies in the padding (the datapath substitutes the zero point,
    :mod:`hwflow.rtl.controller`) or past the taps. The beats follow the layer's reads, so a
    field is sent once per tile (``nt``) and per fused pooling window it is part of.
    """

    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pl: int
    oh: int
    ow: int
    chunks: int

    @property
    def taps(self) -> int:
        """Codes of a receptive field (``kh*kw*c``)."""
        return self.kh * self.kw * self.c

    def tap_positions(self, simd: int) -> np.ndarray:
        """``(chunks, simd, 3)``: each lane's ``(ch, ky, kx)``, ``-1`` past the taps."""
        i = np.arange(self.chunks * simd).reshape(self.chunks, simd)
        tap, ch = np.divmod(i, self.c)
        ky, kx = np.divmod(tap, self.kw)
        pos = np.stack([ch, ky, kx], axis=-1)
        pos[i >= self.taps] = -1
        return pos

    def index_map(self, simd: int, words) -> np.ndarray:
        """``(len(words), simd)`` NCHW index of each lane's code (-1: none) for the beats that
        carry the virtual words ``words`` (``pixel*chunks + q``, ``pixel = oy*ow + ox``)."""
        words = np.asarray(words, dtype=np.int64)
        pix, q = np.divmod(words, self.chunks)
        oy, ox = np.divmod(pix, self.ow)
        pos = self.tap_positions(simd)[q]  # (beats, simd, 3)
        iy = (oy * self.sh - self.pt)[:, None] + pos[..., 1]
        ix = (ox * self.sw - self.pl)[:, None] + pos[..., 2]
        inside = (pos[..., 0] >= 0) & (iy >= 0) & (iy < self.h) & (ix >= 0) & (ix < self.w)
        return np.where(inside, (pos[..., 0] * self.h + iy) * self.w + ix, -1)


@dataclass
class LayerProgram:
    """Loop-nest descriptor of one hardware step (a QLayer, or one input of a Concat).

    For each output pixel ``(oy, ox)``, each tile ``g < nt`` and each pooling-window
    position ``(wy, wx)`` (``qh x qw``; 1 x 1 unless a MaxPool is fused into this ``mac``
    step) the controller spends exactly ``t`` cycles; in the first ``k`` of them it reads
    one activation word (and, for ``mac``, one weight word). The input window's origin is
    ``(oy*sh + wy*wsh - pt, ox*sw + wx*wsw - pl)``. Step ``j`` reads kernel offset ``(ky, kx)`` and input
    chunk ``cs + ci`` (``ci`` fastest, then ``kx``, then ``ky``), where ``cs`` advances by
    ``cis`` every ``tpg`` tiles (grouped convolution). A tile's ``nb`` results are
    serialized through the requantizer into output channels ``g * nb ...`` (only those
    below ``cout``), written at channel offset ``coff``. With a fused MaxPool the tile's
    accumulators are max-merged over the window first (exact: the requantizer is
    monotonic, ``m >= 0``). Step ``j`` of tile ``g`` reads weight word ``w_base + g*k + j``;
    with ``wpk`` (a depthwise step) that is a virtual word: ROM word ``// w_pack``, diagonal
    slot ``% w_pack`` (:meth:`~hwflow.schedule.lower.RomImages.add_weights`); with ``wlr > 0``
    (weights stored narrower than the ROM's lanes) it is ROM word ``>> wlr``, slot
    ``% 2**wlr`` (:meth:`~hwflow.schedule.lower.RomImages.narrow_lr`). ``wk`` (0: ``k``)
    is the weight words a tile advances by when it differs from its reads.

    A ``dw`` step (a depthwise convolution on the depthwise unit, :mod:`hwflow.rtl.dw_array`)
    walks the same loop nest with its own meaning: one pixel (``oh = ow = 1``), tile ``g`` is
    channel chunk ``g`` (``nt`` chunks), window position ``(wy, wx)`` is row group ``wy``
    (``qh`` groups of ``dwr`` output rows, ``wsh = dwr*dsh``) and input column ``wx``
    (``qw = (dow - 1)*dsw + dkw + 1`` columns: the window's plus one in which the last output
    column computes), and its ``k = kh = (dwr - 1)*dsh + dkh`` reads are the group's input rows
    in that column. ``dkh x dkw``, ``dsh x dsw`` and ``doh x dow`` are the convolution's
    kernel, strides and output; ``wk = dkh*dkw`` weight words a chunk (one tap each, read
    while the unit computes: word ``w_base + g*wk + j`` at step ``j``).

    An ``xnor`` step (a binary-weight layer on a bipolar input, on the XNOR-popcount unit,
    :mod:`hwflow.rtl.xnor_array`) walks a ``mac`` step's loop nest with ``nb = xrows`` output
    channels a tile (:attr:`Program.xrows`) and reads its weight words from the unit's own ROM
    (:attr:`Program.xweights`, one sign bit a weight): ``xrows x simd`` binary MACs a cycle.
    A tile's ``nb = xrows`` results reach the back end in ``nb / xch`` chunks of ``xch`` (the
    serializer's entries), one every ``xch / lanes`` cycles; the back end counts each chunk as
    a tile of ``xch`` outputs (its descriptor's ``ng`` and ``nt`` say so,
    :func:`~hwflow.schedule.descriptor.descriptor_values`).
    """

    name: str
    op: str
    kind: str
    ih: int
    iw: int
    ich: int
    oh: int
    ow: int
    och: int
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    qh: int = 1
    qw: int = 1
    wsh: int = 1
    wsw: int = 1
    pt: int = 0
    pl: int = 0
    nt: int = 1
    cis: int = 1
    tpg: int = 1
    k: int = 1
    t: int = 1
    nb: int = 1
    ng: int = 1
    cout: int = 1
    coff: int = 0
    in_base: int = 0
    in2_base: int = 0
    out_base: int = 0
    w_base: int = 0
    w_words: int = 0
    ch_base: int = 0
    lut_base: int = 0
    lut_en: int = 0
    pv: int = 0
    za: int = 0
    zb: int = 0
    ma: int = 1
    mb: int = 0
    z_out: int = 0
    lo: int = 0
    hi: int = 0
    drain: int = 0
    macs: int = 0
    stream: int = 0
    wpk: int = 0
    wlr: int = 0
    wk: int = 0
    dwr: int = 0
    dkh: int = 1
    dkw: int = 1
    dsh: int = 1
    dsw: int = 1
    doh: int = 1
    dow: int = 1
    xch: int = 0
    inputs: tuple[str, ...] = ()
    output: str = ""

    @property
    def tiles(self) -> int:
        """Tiles the layer runs (pixels x tiles per pixel x pooling-window positions)."""
        return self.oh * self.ow * self.nt * self.qh * self.qw

    @property
    def cycles(self) -> int:
        """Exact cycles of the layer, setup and drain included."""
        return SETUP_CYCLES + self.tiles * self.t + self.drain

    def reads(self):
        """The loop nest, executable: one tuple per RUN cycle, in order.

        Yields ``(act_addr, w_addr, first, last, sel, wfirst, wlast)`` for a cycle that reads (``act_addr``
        is ``None`` where the window lies in the padding) and ``None`` for an idle cycle
        (``k <= j < t``). This is the reference the controller's address trace is tested against.
        """
        for oy, ox, g, wy, wx, j in itertools.product(range(self.oh), range(self.ow), range(self.nt),
                                                      range(self.qh), range(self.qw), range(self.t)):
            if j >= self.k:
                yield None
                continue
            cs = (g // self.tpg) * self.cis if self.kind in ("mac", "xnor") else g
            if self.kind == "add":
                ky = kx = ci = 0
            else:
                ci = j % self.cis
                kx = (j // self.cis) % self.kw
                ky = j // (self.cis * self.kw)
            iy = oy * self.sh + wy * self.wsh - self.pt + ky
            ix = ox * self.sw + wx * self.wsw - self.pl + kx
            base = self.in2_base if (self.kind == "add" and j == 1) else self.in_base
            inside = 0 <= iy < self.ih and 0 <= ix < self.iw
            addr = base + (iy * self.iw + ix) * self.ich + cs + ci if inside else None
            yield (addr, self.w_base + g * (self.wk or self.k) + j, j == 0, j == self.k - 1,
                   self.kind == "add" and j == 1, wy == 0 and wx == 0,
                   wy == self.qh - 1 and wx == self.qw - 1)

    def read_trace(self) -> tuple[np.ndarray, np.ndarray]:
        """``(cycle, address)`` of every activation read of the RUN (padding reads none), in order.

        The activation addresses of :meth:`reads`, computed as arrays (the scheduler traces
        every read of every layer: linear in cycles, without a Python step per cycle).
        """
        k = self.k
        j = np.arange(k)
        if self.kind == "add":
            ky = kx = ci = np.zeros(k, dtype=np.int64)
        else:
            ci, kx, ky = j % self.cis, (j // self.cis) % self.kw, j // (self.cis * self.kw)
        g = np.arange(self.nt)
        cs = (g // self.tpg) * self.cis if self.kind in ("mac", "xnor") else g
        oy, ox = np.arange(self.oh), np.arange(self.ow)
        wy, wx = np.arange(self.qh), np.arange(self.qw)
        # Axes: oy, ox, g, wy, wx, j.
        sh = (-1, 1, 1, 1, 1, 1), (1, -1, 1, 1, 1, 1), (1, 1, -1, 1, 1, 1), (1, 1, 1, -1, 1, 1), \
            (1, 1, 1, 1, -1, 1), (1, 1, 1, 1, 1, -1)
        iy = (oy * self.sh - self.pt).reshape(sh[0]) + (wy * self.wsh).reshape(sh[3]) + ky.reshape(sh[5])
        ix = (ox * self.sw - self.pl).reshape(sh[1]) + (wx * self.wsw).reshape(sh[4]) + kx.reshape(sh[5])
        base = np.where((j == 1) & (self.kind == "add"), self.in2_base, self.in_base).reshape(sh[5])
        full = (self.oh, self.ow, self.nt, self.qh, self.qw, k)
        addr = np.broadcast_to(base + (iy * self.iw + ix) * self.ich + (cs.reshape(sh[2]) + ci.reshape(sh[5])), full)
        inside = np.broadcast_to((iy >= 0) & (iy < self.ih) & (ix >= 0) & (ix < self.iw), full)
        tile = np.arange(self.tiles).reshape(full[:5] + (1,))
        cycle = np.broadcast_to(tile * self.t + j.reshape(sh[5]), full)
        return cycle[inside].astype(np.int64), addr[inside].astype(np.int64)


@dataclass
class Program:
    """A QGraph scheduled onto one PE x SIMD array.

    Attributes
    ----------
    name : str
    pe, simd : int
        Array shape: ``pe`` output channels x ``simd`` input channels per cycle.
    abits : int
        Activation lane width (the widest activation tensor).
    wbits : int
        Signed width of the weight values the MAC lanes take: the widest layer's
        (``QLayer.mul_wbits``: 8 for pot4). The ROM holds them as they are, except on a
        ``pot`` lane (``cbits``) or with codebooks (``ibits``); :attr:`stored_wbits`.
    lane : str
        The MAC lanes' datapath (one for the whole array, :mod:`hwflow.rtl.mac_array`):
        ``"mul"`` multiplies weight values (DSPs or LUT shift-add trees); ``"pot"``, when every
        MAC layer has pot weights of one code width, shifts the activation by the stored
        code's exponent and negates by its sign (no multiplier); ``"addsub"``, when every MAC
        layer has binary or ternary weights, adds, subtracts or skips the activation by the
        2-bit ternary code.
    cbits : int
        ``pot`` lane: the code width the ROM holds (``QLayer.wbits``); ``addsub``: 2; 0 otherwise.
    formats : dict
        Each MAC layer's weight format and code width (``"pot4"``, ``"int8"``, ``"binary1"``),
        by layer name, for :meth:`layer_lanes`.
    lane_costs : list
        The array's lanes by type with their LUT and DSP cost on the target
        (:func:`~hwflow.schedule.estimate.lane_costs`).
    acc_bits : int
        MAC / pooling accumulator width (worst case over layers, bias excluded).
    post_bits : int
        Width of the requantizer input (accumulator plus bias, or the Add sum).
    mbits : int
        Requantizer multiplier width (1 means power-of-2: no multiplier).
    n_min, n_max : int
        Range of the requantizer shifts.
    addm_bits : int
        Width of the Add input multipliers (0 when there is no Add).
    add_bits : int
        Width of the Add's operands (input codes less their zero points, signed; 0 when
        there is no Add): the multipliers take these low bits of the accumulator words, so
        they are activation-wide, not accumulator-wide, products.
    layers : list of LayerProgram
    tensors : dict of str to TensorMap
    input, output : str
    act_words : int
        Depth of the activation RAM.
    weights : numpy.ndarray
        ``(words, pe, simd)`` int64 weight ROM image.
    bias, m, n : numpy.ndarray
        Per-channel ROM images (indexed by ``layer.ch_base + channel``).
    lut : numpy.ndarray
        LUT ROM image (indexed by ``layer.lut_base + q - layer.lo``).
    latency : dict of str to int
        Pipeline latencies the cycle model was built from.
    host_tail : list of str
        Ops left to the host after the output.
    ibits : int
        With weight sharing (every MAC layer has a codebook): the ROM holds ``ibits``-bit
        codebook indices instead of weights (0: plain weights).
    codebooks, cb_bases : list
        Per MAC layer, its codebook and its first ROM word (see :mod:`hwflow.rtl.codebook`).
    dsp_mults : int or None
        MAC lanes ``p*simd + s`` below this multiply on hard multipliers (DSPs), the
        others in LUT logic (see :mod:`hwflow.rtl.mac_array`); ``None``: all on DSPs.
    w_pack : int
        Depthwise diagonals per weight word (the steps with ``wpk``; 1: none packed).
    input_index : numpy.ndarray or None
        When the user's input array has a layout of its own (``QGraph.input_layout``):
        for each flat NCHW position of the input tensor, the flat index of the user's
        array; the input stream map names the user's codes.
    argmax : bool
        The output stream carries the index of the first largest code of ``output`` (one
        beat, :attr:`output_map`) instead of its codes (``QGraph.argmax``).
    rounding : {"half_up", "half_even"}
        How the requantizer rounds a tie (the layers' ``rounding``).
    acc_shift : int
        The pre-stage's fixed left shift of every accumulator (the largest layer
        ``acc_shift``; each layer's bias and shift in the channel ROM are scaled to it).
    weight_kind : hwflow.targets.MemoryKind or None
        The memory kind holding the weights (:func:`~hwflow.schedule.estimate.place_weights`);
        ``None``: the block RAM, as an initialised ROM. A kind the bitstream cannot
        initialise is loaded through the weight-load port (:attr:`weight_load`).
    act_kind : hwflow.targets.MemoryKind or None
        The memory kind holding the activation RAM (the target's block RAM), which sets
        its banks (:func:`~hwflow.schedule.estimate.read_banks`).
    rom_banks : hwflow.schedule.estimate.RomBanks or None
        The weight ROM's banks (:func:`~hwflow.schedule.estimate.rom_banks`; ``None``: one
        memory).
    xrows : int
        Output channels a cycle of the XNOR-popcount unit (:mod:`hwflow.rtl.xnor_array`) that
        runs the ``xnor`` steps, ``xrows x simd`` binary MACs a cycle; 0: no unit.
    xweights : numpy.ndarray or None
        ``(words, xrows, simd)`` image of the unit's own weight ROM, one bit a weight: ``-1``
        (bit 1) where the weight is ``-1``, ``0`` where it is ``+1`` (``None``: no unit).
    """

    name: str
    pe: int
    simd: int
    abits: int
    wbits: int
    acc_bits: int
    post_bits: int
    mbits: int
    n_min: int
    n_max: int
    addm_bits: int
    add_bits: int
    layers: list[LayerProgram]
    tensors: dict[str, TensorMap]
    input: str
    output: str
    act_words: int
    weights: np.ndarray
    bias: np.ndarray
    m: np.ndarray
    n: np.ndarray
    lut: np.ndarray
    latency: dict[str, int] = field(default_factory=dict)
    host_tail: list[str] = field(default_factory=list)
    target: str = "generic"
    estimate: dict[str, Any] = field(default_factory=dict)
    ibits: int = 0
    lane: str = "mul"
    cbits: int = 0
    formats: dict = field(default_factory=dict)
    lane_costs: list = field(default_factory=list)
    input_lead: int = 0
    codebooks: list = field(default_factory=list)
    cb_bases: list = field(default_factory=list)
    dsp_mults: int | None = None
    rq_lanes: int = 1
    input_stream: InputStream | None = None
    w_pack: int = 1
    input_index: np.ndarray | None = None
    rounding: str = "half_up"
    acc_shift: int = 0
    argmax: bool = False
    weight_kind: Any = None
    act_kind: Any = None
    rom_banks: Any = None
    xrows: int = 0
    xweights: np.ndarray | None = None

    @property
    def weight_load(self) -> bool:
        """The weights are loaded after reset through the weight-load port (not a ROM)."""
        return self.weight_kind is not None and not self.weight_kind.init

    def layer_lanes(self) -> list[dict]:
        """Per MAC layer: its weight format, the lane type it runs on and those lanes' LUT and
        DSP cost (:func:`~hwflow.schedule.estimate.lane_costs`; one lane type for the array:
        every layer on it runs on the whole array, so the costs are the array's; the ``xnor``
        steps' layers run on the XNOR-popcount unit's lanes)."""
        xnor = {l.name for l in self.layers if l.kind == "xnor"}
        out = []
        for on_x in (False, True):
            lanes = [c for c in self.lane_costs if (c["lane"] == "xnor") == on_x]
            kind = " + ".join(f"{c['count']} {c['lane']}" for c in lanes)
            luts, dsps = sum(c["luts"] for c in lanes), sum(c["dsps"] for c in lanes)
            out += [{"layer": name, "weights": fmt, "lane": kind, "luts": luts, "dsps": dsps}
                    for name, fmt in self.formats.items() if (name in xnor) == on_x]
        order = list(self.formats)
        return sorted(out, key=lambda d: order.index(d["layer"]))

    @property
    def narrow_lrs(self) -> tuple[int, ...]:
        """The ``wlr > 0`` of the steps whose weights are stored narrower than the ROM's lanes
        (``stored_wbits >> wlr`` bits, ``2**wlr`` words a ROM word; 1 bit: a binary weight's sign)."""
        return tuple(sorted({l.wlr for l in self.layers if l.wlr}))

    @property
    def stored_wbits(self) -> int:
        """Bits of one weight in the ROM: a codebook index, a pot code, or the value."""
        return self.ibits or self.cbits or self.wbits

    @property
    def weight_words(self) -> int:
        """Words of the weight memory (one weight-load beat each)."""
        return int(self.weights.shape[0])

    @property
    def weight_word_bits(self) -> int:
        """Bits of one weight-memory word: ``pe * simd`` weights (codebook indices with sharing)."""
        return self.pe * self.simd * self.stored_wbits

    @property
    def load_cycles(self) -> int:
        """Cycles of the weight-load phase (0 without one): from the first word offered to
        ``loaded`` high, one word a cycle with a never-stalling source."""
        return self.weight_words if self.weight_load else 0

    @property
    def input_map(self) -> TensorMap:
        return self.tensors[self.input]

    @property
    def output_map(self) -> TensorMap:
        """What the output stream carries: the output tensor, or with :attr:`argmax` one word
        holding the index (lane 0; the word read from the RAM is ignored)."""
        t = self.tensors[self.output]
        if not self.argmax:
            return t
        from ..quant.arith import bits_for_range

        return TensorMap("argmax", (1, 1), max(2, bits_for_range(0, t.size - 1)), 0, 1, 1, 1, 1, t.base)

    @property
    def input_size(self) -> int:
        """Codes of the input tensor (NCHW size)."""
        return self.input_map.size

    @property
    def output_size(self) -> int:
        """Codes of the output tensor (NCHW size)."""
        return self.output_map.size

    @property
    def input_beats(self) -> int:
        """Words the input stream accepts (one per cycle with a never-stalling partner)."""
        if self.input_stream is not None:
            return self.layers[0].tiles * self.layers[0].k
        return self.input_map.words

    @property
    def output_beats(self) -> int:
        """Words the output stream emits."""
        return self.output_map.words

    def stream_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(in_map, out_map)``: per beat and lane, the flat index of the code it carries (-1:
        none; :meth:`TensorMap.index_map`, :meth:`InputStream.index_map`; the input's in the
        user's array, :attr:`input_index`)."""
        if self.input_stream is None:
            in_map = self.input_map.index_map(self.simd)
        else:
            _, words = self.layers[0].read_trace()  # the streamed layer's virtual words, in order
            in_map = self.input_stream.index_map(self.simd, words)
        if self.input_index is not None:
            in_map = np.where(in_map >= 0, self.input_index[np.maximum(in_map, 0)], -1)
        return in_map, self.output_map.index_map(self.simd)

    @property
    def in_bits(self) -> int:
        return self.input_map.bits

    @property
    def out_bits(self) -> int:
        return self.output_map.bits

    @property
    def cycles(self) -> int:
        """Exact clock cycles from ``start`` sampled to ``done`` high."""
        return self.input_lead + sum(l.cycles for l in self.layers) + self.output_beats + 2

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates of one inference."""
        return sum(l.macs for l in self.layers)

    @property
    def ideal_cycles(self) -> float:
        """``macs / (pe * simd)``: the array's lower bound (an ``xnor`` step's MACs over the
        XNOR unit's ``xrows * simd``)."""
        return sum(l.macs / ((self.xrows if l.kind == "xnor" else self.pe) * self.simd) for l in self.layers)

    @property
    def act_bits(self) -> int:
        """Bits of activation RAM."""
        return self.act_words * self.simd * self.abits

    @property
    def weight_rom_bits(self) -> int:
        """Bits of the weight ROM (``words x pe x simd x stored_wbits``, plus the codebooks),
        and of the XNOR unit's ROM (:attr:`xnor_rom_bits`)."""
        books = sum(len(b) for b in self.codebooks) * self.wbits
        return int(self.weights.shape[0]) * self.pe * self.simd * self.stored_wbits + books + self.xnor_rom_bits

    @property
    def xacc_bits(self) -> int:
        """Signed width of the XNOR unit's accumulators: a sum of ``k * simd`` products ±1."""
        from ..quant.arith import bits_for_range

        n = max([l.k * self.simd for l in self.layers if l.kind == "xnor"], default=1)
        return bits_for_range(-n, n)

    @property
    def xnor_rom_bits(self) -> int:
        """Bits of the XNOR-popcount unit's weight ROM (``words x xrows x simd``, 1 bit each)."""
        return int(self.xweights.size) if self.xweights is not None else 0

    @property
    def chan_rom_bits(self) -> int:
        """Bits of the per-channel bias/m/n ROM."""
        return int(self.bias.shape[0]) * (32 + max(self.mbits, 1) + self.n_bits)

    @property
    def lut_rom_bits(self) -> int:
        return int(self.lut.shape[0]) * self.abits

    @property
    def n_bits(self) -> int:
        """Signed width holding every shift ``n``."""
        from ..quant.arith import bits_for_range

        return bits_for_range(self.n_min, self.n_max)

    def to_json(self) -> dict:
        """A JSON-ready summary (``schedule.json``): shape, widths, memory map, per-layer loops and cycles."""
        layers = []
        for l in self.layers:
            d = asdict(l)
            d["inputs"] = list(l.inputs)
            d["tiles"] = l.tiles
            d["cycles"] = l.cycles
            layers.append(d)
        return {
            "name": self.name,
            "target": self.target,
            "pe": self.pe,
            "simd": self.simd,
            "dsp_mults": self.pe * self.simd if self.dsp_mults is None else self.dsp_mults,
            "rq_lanes": self.rq_lanes,
            "w_pack": self.w_pack,
            "lane": self.lane,
            "lanes": self.layer_lanes(),
            **({"xnor": {"rows": self.xrows, "binary_macs": self.xrows * self.simd,
                         "words": int(self.xweights.shape[0]), "bits": self.xnor_rom_bits}} if self.xrows else {}),
            "widths": {
                "abits": self.abits, "wbits": self.wbits, **({"cbits": self.cbits} if self.cbits else {}),
                "acc_bits": self.acc_bits,
                "post_bits": self.post_bits, "mbits": self.mbits, "n_min": self.n_min,
                "n_max": self.n_max, "addm_bits": self.addm_bits,
                "add_bits": self.add_bits,
                **({"rounding": self.rounding} if self.rounding != "half_up" else {}),
                **({"acc_shift": self.acc_shift} if self.acc_shift else {}),
            },
            "latency": dict(self.latency),
            "cycles": self.cycles,
            "cycle_formula": "input_lead + sum(layer.cycles) + output_beats + 2; "
                             "layer.cycles = 2 + oh*ow*nt*qh*qw*t + drain",
            "input_size": self.input_size,
            "input_stream": asdict(self.input_stream) if self.input_stream is not None else None,
            "output_size": self.output_size,
            "input_beats": self.input_beats,
            "input_lead": self.input_lead,
            "output_beats": self.output_beats,
            "stream_lanes": self.simd,
            "macs": self.macs,
            "ideal_cycles": self.ideal_cycles,
            "memory": {
                "act_words": self.act_words,
                "act_word_bits": self.simd * self.abits,
                "act_bits": self.act_bits,
                "weight_words": self.weight_words,
                "weight_word_bits": self.weight_word_bits,
                "weight_kind": self.weight_kind.name if self.weight_kind is not None else "bram",
                **({"weight_banks": list(self.rom_banks.depths), "weight_bank_cols": self.rom_banks.cols}
                   if self.rom_banks else {}),
                "codebook": {"ibits": self.ibits, "codebooks": [list(map(int, b)) for b in self.codebooks],
                             "bases": list(self.cb_bases)} if self.ibits else None,
                "weight_bits": self.weight_rom_bits,
                "chan_entries": int(self.bias.shape[0]),
                "chan_bits": self.chan_rom_bits,
                "lut_entries": int(self.lut.shape[0]),
                "lut_bits": self.lut_rom_bits,
                "tensors": {k: {**asdict(v), "words": v.words} for k, v in self.tensors.items()},
            },
            "input": self.input,
            "output": self.output,
            **({"argmax": True} if self.argmax else {}),
            "host_tail": list(self.host_tail),
            "estimate": dict(self.estimate),
            "load": {"words": self.weight_words, "word_bits": self.weight_word_bits,
                     "cycles": self.load_cycles, "memory": self.weight_kind.name} if self.weight_load else None,
            "layers": layers,
        }
