"""Lower each QLayer to hardware steps (:class:`LayerProgram`), one function per layer kind.

:data:`LOWERINGS` maps every QLayer op (:data:`hwflow.quant.qgraph.LAYER_OPS`) to its function:

- ``conv`` / ``gemm`` -> one ``mac`` step (:func:`lower_mac`). A Gemm reading a 4-D tensor
  is a convolution whose kernel covers the whole input (the NCHW flattening becomes the
  weight's layout, so no data moves). Per output pixel, ``nt = ceil(cout / pe)`` tiles of
  ``k = kh*kw*cis`` cycles each read one activation word (SIMD channels of one pixel) and
  one weight word (PE x SIMD). Grouped convolutions use the largest super-group whose
  channel counts divide SIMD and PE (block-diagonal weights inside it); depthwise is the
  extreme case, one useful multiplier per row, its diagonal packed ``w_pack`` words to a ROM
  word on a square array (:meth:`RomImages.add_weights`). Where it is faster, a depthwise
  conv goes to the depthwise unit instead: one ``dw`` step (:func:`_lower_dw`, lanes across
  channels, up to PE output rows at once, the kernel taps in time; :func:`dw_plan`). A layer
  with binary weights on a bipolar input goes to the XNOR-popcount unit when the program has
  one: one ``xnor`` step (:func:`xnor_ok`, :func:`_lower_xnor`). A MaxPool the scheduler fused into the convolution becomes the step's
  ``qh x qw`` window; a streamed input (:class:`~hwflow.schedule.program.InputStream`)
  makes the first convolution a 1 x 1 one over its receptive fields.
- ``maxpool`` -> ``max``; ``avgpool`` -> ``sum`` (bias ``-k*z_in`` and ``m``/``n`` requantize);
  ``lut`` -> ``sum`` over a 1x1 window (:func:`lower_window`); these run one SIMD chunk per tile.
- ``add`` -> ``add`` (:func:`lower_add`): two reads per chunk, ``(qa-za)*ma + (qb-zb)*mb`` per lane.
- ``concat`` -> one ``max`` step over a 1x1 window per input (:func:`lower_concat`): a copy
  through the identity requantizer into the output's channel slice.

Each function appends the layer's ROM contents to the :class:`RomImages` (weights, per-channel
bias/m/n, LUT) and returns a :class:`Lowered`: the steps and the value ranges the shared
datapath must hold for them, from which the scheduler sizes its widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..prune.sharing import codebook_indices
from ..quant.arith import int_range
from ..quant.qgraph import QGraph, QLayer
from ..quant.reference import acc_bounds
from .memory import chunks, weight_words
from .program import InputStream, LayerProgram, TensorMap, tile_cycles

__all__ = ["LOWERINGS", "Lowered", "LowerContext", "RomImages", "MacGeometry", "mac_geometry", "weight_pack",
           "dw_cycles", "dw_plan", "xnor_ok",
           "lower_mac", "lower_window", "lower_add", "lower_concat"]


class RomImages:
    """The ROM images the steps index, built layer by layer.

    Each ``add_*`` appends one layer's part and returns its first entry (the descriptor's
    ``w_base``, ``ch_base``, ``lut_base``).

    Parameters
    ----------
    ibits : int
        With weight sharing (:func:`hwflow.prune.sharing.codebook_bits`), the width of the
        codebook indices the weight ROM holds instead of weights; 0 for plain weights.
    lanes : int
        Each layer's channels start on a multiple of ``lanes`` in the per-channel ROM (the
        back end reads ``lanes`` channels a word, :mod:`hwflow.rtl.channel_rom`); the gaps
        hold neutral entries.
    code : WeightFormat, optional
        A ``pot`` lane (:attr:`~hwflow.schedule.program.Program.lane`): the ROM holds each
        weight's code in this format (zero padding is code 0) instead of its value.
    narrow : int, optional
        The ROM's lane width (:attr:`~hwflow.schedule.program.Program.stored_wbits`) when a
        layer's weights may be stored narrower (:meth:`narrow_lr`); 0: every layer at the
        ROM's width.
    """

    def __init__(self, ibits: int = 0, lanes: int = 1, pack: int = 1, code=None, narrow: int = 0):
        self.ibits = ibits
        self.code = code
        self.narrow = narrow
        self.lanes = lanes
        self.pack = pack
        self._weights: list[np.ndarray] = []
        self._w_next = 0
        self.codebooks: list[np.ndarray] = []
        self.cb_bases: list[int] = []
        self._chan: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._ch_next = 0
        self._luts: list[np.ndarray] = []
        self._lut_next = 0
        self._reach = 0  # virtual weight words some step reads (past its own: a dw step)
        self._xnor: list[np.ndarray] = []
        self._x_next = 0

    def reserve(self, end: int) -> None:
        """A step reads virtual weight words up to ``end`` (exclusive): the image reaches that far
        (zero words after the last layer's, only if it is short)."""
        self._reach = max(self._reach, end)

    def narrow_lr(self, words: np.ndarray, bits: int) -> int:
        """``lr``: a layer's ``words`` (values, or ternary codes on an ``addsub`` lane, which
        equal them) of code width ``bits`` (``QLayer.wbits``; binary: 1) are stored ``2**lr`` to
        a ROM word at ``b = narrow >> lr`` bits a weight, the smallest such ``b >= bits``;
        ``b = 1`` holds the sign of a binary weight only if every value, padding included, is
        ±1 (:func:`lower_mac` puts +1 in the rows past ``cout``, whose results are never
        written; zeros padding the input channels keep 2 bits). 0 without ``narrow`` (pot codes, codebook indices)."""
        if not self.narrow or self.ibits or self.code is not None and self.code.name == "pot":
            return 0
        lr, b = 0, self.narrow
        while b % 2 == 0 and b // 2 >= max(bits, 1):
            h = b // 2
            if h == 1 and not np.isin(words, (-1, 1)).all():
                break
            lr, b = lr + 1, h
        lo, hi = (int(words.min()), int(words.max())) if words.size else (0, 0)
        assert b == 1 or -(1 << (b - 1)) <= lo and hi < 1 << (b - 1), (bits, b, lo, hi)
        return lr

    def _narrowed(self, words: np.ndarray, lr: int) -> np.ndarray:
        """``(n, pe, simd)`` words as ``ceil(n / 2**lr)`` ROM words of ``(pe, simd)`` lanes of
        ``narrow`` bits: virtual word ``j`` of ROM word ``r`` (``r*2**lr + j``) is slot ``j``,
        bits ``[j*N*b, (j+1)*N*b)`` (``N = pe*simd``, ``b = narrow >> lr``), its weight ``i``
        at ``j*N*b + i*b`` (``b = 1``: the sign bit, 1 for -1); the lanes are read back as
        signed ``narrow``-bit values, as :func:`~hwflow.rtl.weight_rom.pack_words` packs them."""
        n, pe, simd = words.shape
        s, b, big = 1 << lr, self.narrow >> lr, self.narrow
        rom = -(-n // s)
        v = np.zeros((rom * s, pe * simd), np.int64)
        v[:n] = words.reshape(n, -1)
        code = (v < 0).astype(np.int64) if b == 1 else v & ((1 << b) - 1)
        bits = (code[..., None] >> np.arange(b)) & 1  # (rom*s, N, b)
        bits = bits.reshape(rom, s * pe * simd * b).reshape(rom, pe * simd, big)
        lanes = (bits << np.arange(big)).sum(axis=-1)
        lanes = np.where(lanes >= 1 << (big - 1), lanes - (1 << big), lanes)
        return lanes.reshape(rom, pe, simd)

    def add_weights(self, words: np.ndarray, codebook=None, diagonal: bool = False, lr: int = 0) -> int:
        """Append ``(n, pe, simd)`` weight words (with ``ibits``: their indices in ``codebook``).

        ``lr`` (:meth:`narrow_lr`): stored ``2**lr`` to a ROM word (:meth:`_narrowed`); the
        returned base is then in virtual words, ``2**lr`` times the first ROM word.

        ``diagonal`` (a depthwise step, ``pe == simd``, every weight on the diagonal): pack
        ``pack`` words' diagonals into one ROM word, slot ``i`` in lanes ``i*pe .. i*pe + pe - 1``
        (the word read is ``address // pack``, the slot ``address % pack``; the datapath puts
        the slot back on the diagonal). The returned base is then in those virtual words:
        ``pack`` times the ROM word.
        """
        if diagonal and self.pack > 1:
            n, pe, simd = words.shape
            diag = np.arange(pe)
            assert pe == simd and not self.ibits and not words[:, ~np.eye(pe, dtype=bool)].any()
            flat = np.zeros((-(-n // self.pack) * self.pack, pe), np.int64)
            flat[:n] = words[:, diag, diag]
            packed = np.zeros((flat.shape[0] // self.pack, pe * simd), np.int64)
            packed[:, :self.pack * pe] = flat.reshape(-1, self.pack * pe)
            if self.code is not None:
                packed = self._codes(packed)
            base = self._w_next * self.pack
            self._weights.append(packed.reshape(-1, pe, simd))
            self._w_next += packed.shape[0]
            return base
        if lr:
            if self.code is not None:
                words = self._codes(words)
            packed = self._narrowed(words, lr)
            self._weights.append(packed)
            base = self._w_next << lr
            self._w_next += packed.shape[0]
            return base
        base = self._w_next
        if self.ibits:
            self.codebooks.append(np.asarray(codebook, dtype=np.int64))
            self.cb_bases.append(base)
            words = codebook_indices(words, self.codebooks[-1], self.ibits)
        elif self.code is not None:
            words = self._codes(words)
        self._weights.append(words)
        self._w_next += words.shape[0]
        return base

    def _codes(self, values: np.ndarray) -> np.ndarray:
        """``code``'s codes of ``values``, read as signed ``wbits``-bit integers (a ROM image's lanes)."""
        c, b = self.code.encode(values), self.code.wbits
        return np.where(c >= 1 << (b - 1), c - (1 << b), c)

    def add_xnor(self, words: np.ndarray) -> int:
        """Append ``(n, rows, simd)`` binary weight words (values ±1) to the XNOR unit's ROM,
        stored as their signs (``-1``: bit 1, the weight is ``-1``; ``0``: ``+1``); returns
        the first word."""
        assert np.isin(words, (-1, 1)).all()
        base = self._x_next
        self._xnor.append(-(words < 0).astype(np.int64))
        self._x_next += words.shape[0]
        return base

    def add_channels(self, bias, m, n, c: int, shift: int = 0) -> int:
        """Append ``c`` channels' ``(bias, m, n)`` (each a scalar or one value per channel),
        padded to a multiple of ``lanes`` entries.

        ``shift``: the pre-stage shifts every accumulator left by this many bits more than
        the layer's own ``acc_shift`` (:attr:`LowerContext.acc_shift`); its bias and shift
        follow, which keeps the result exact (the added low bits are zero).
        """
        base = self._ch_next
        pad = -c % self.lanes
        bias, m, n = (np.broadcast_to(np.asarray(v, np.int64).reshape(-1), (c,)).copy() for v in (bias, m, n))
        self._chan.append(tuple(np.concatenate([v, np.full(pad, neutral, np.int64)])
                                for v, neutral in ((np.left_shift(bias, shift), 0), (m, 1), (n + shift, 0))))
        self._ch_next += c + pad
        return base

    def add_lut(self, table: np.ndarray) -> int:
        """Append one layer's LUT table."""
        base = self._lut_next
        self._luts.append(table.astype(np.int64))
        self._lut_next += table.shape[0]
        return base

    def images(self, pe: int, simd: int) -> dict:
        """The :class:`~hwflow.schedule.program.Program` fields: ``weights``, ``bias``, ``m``, ``n``,
        ``lut``, ``codebooks``, ``cb_bases`` (an empty image holds one neutral entry)."""
        cat = lambda parts, empty: np.concatenate(parts) if parts else empty  # noqa: E731
        short = -(-self._reach // self.pack) - self._w_next if self._reach else 0
        tail = [np.zeros((short, pe, simd), np.int64)] if short > 0 else []
        return {
            "weights": cat(self._weights + tail, np.zeros((1, pe, simd), np.int64)),
            "bias": cat([c[0] for c in self._chan], np.zeros(self.lanes, np.int64)),
            "m": cat([c[1] for c in self._chan], np.ones(self.lanes, np.int64)),
            "n": cat([c[2] for c in self._chan], np.zeros(self.lanes, np.int64)),
            "lut": cat(self._luts, np.zeros(1, np.int64)),
            "codebooks": self.codebooks,
            "cb_bases": self.cb_bases,
            "xweights": np.concatenate(self._xnor) if self._xnor else None,
        }


@dataclass(frozen=True)
class LowerContext:
    """What every lowering reads: the graph, the activation memory map, the array, the ROMs.

    ``pools`` maps a convolution's output tensor to the MaxPool fused into it; ``stream``
    is the streamed network input's geometry (None: the input is stored). ``dw_kw``: the
    kernel width of the depthwise unit (:func:`dw_plan`; 0: no unit, every depthwise
    convolution runs on the array). ``xrows``: output channels a cycle of the XNOR-popcount
    unit (0: no unit, binary layers run on the array); ``xnames``: the layers it runs
    (``None``: every one :func:`xnor_ok` accepts).
    """

    qgraph: QGraph
    tensors: dict[str, TensorMap]
    pe: int
    simd: int
    roms: RomImages
    pools: dict[str, QLayer] = field(default_factory=dict)
    acc_shift: int = 0
    stream: InputStream | None = None
    dw_kw: int = 0
    xrows: int = 0
    xnames: frozenset | None = None

    def shift(self, layer: QLayer) -> int:
        """Bits the pre-stage's fixed left shift (``acc_shift``, the largest of any layer) adds to
        ``layer``'s accumulator beyond its own (0 for ``add``, which bypasses it)."""
        return 0 if layer.op == "add" else self.acc_shift - layer.acc_shift


@dataclass
class Lowered:
    """One QLayer on the array: its steps and the values the shared datapath must hold.

    Attributes
    ----------
    steps : list of LayerProgram
    acc : (int, int)
        Range of the MAC / pool accumulator over every input in range (bias excluded).
    post : (int, int) or None
        Range of the requantizer's input (:func:`~hwflow.quant.reference.acc_bounds`); ``None``
        for a layer without requantizer.
    shift : (int, int) or None
        Range of the requantizer's shifts ``n`` (``None`` likewise).
    addm : int
        Largest ``|ma|``, ``|mb|`` of an Add (0 otherwise).
    """

    steps: list[LayerProgram]
    acc: tuple[int, int]
    post: tuple[int, int] | None = None
    shift: tuple[int, int] | None = None
    addm: int = 0


def _lowered(layer: QLayer, ctx: LowerContext, steps: list[LayerProgram], acc: tuple[int, int],
             addm: int = 0) -> Lowered:
    """A :class:`Lowered` with the layer's requantizer ranges."""
    k = ctx.shift(layer)
    if not layer.has_requant:
        return Lowered(steps, acc, None if not k else (acc[0] << k, acc[1] << k),
                       None if not k else (k, k), addm=addm)
    qin = [ctx.qgraph.tensors[t] for t in layer.inputs]
    post = acc_bounds(layer, qin)
    return Lowered(steps, acc, (post[0] << k, post[1] << k), (int(layer.n.min()) + k, int(layer.n.max()) + k), addm)


def _step_fields(layer: QLayer, ctx: LowerContext, x: TensorMap, out: TensorMap) -> dict:
    """The descriptor fields a layer's steps share: its tensors' geometry and bases, the
    output requantizer's zero point and clamp, and its LUT (appended to the ROM)."""
    lut_en, lut_base = (1, ctx.roms.add_lut(layer.lut)) if layer.lut is not None else (0, 0)
    z_out = layer.lut_zero_point if layer.lut is not None else ctx.qgraph.tensors[layer.output].zero_point
    return dict(name=layer.name, op=layer.op, inputs=tuple(layer.inputs), output=layer.output,
                ih=x.h, iw=x.w, ich=x.chunks, oh=out.h, ow=out.w, och=out.chunks,
                in_base=x.base, out_base=out.base, z_out=z_out, lo=layer.lo, hi=layer.hi,
                lut_en=lut_en, lut_base=lut_base)


def _supergroup(groups: int, cin: int, cout: int, pe: int, simd: int) -> int:
    """Largest divisor of ``groups`` whose channel counts per group divide SIMD and PE (1 = dense)."""
    for g in sorted((d for d in range(1, groups + 1) if groups % d == 0), reverse=True):
        if (cin // g) % simd == 0 and (cout // g) % pe == 0 and g > 1:
            return g
    return 1


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


@dataclass(frozen=True)
class MacGeometry:
    """How a ``conv``/``gemm`` sits on the array, from shapes alone (no weight values).

    ``kh x kw`` kernel over ``cin`` lanes-to-be (a streamed input makes it 1 x 1 over its
    receptive fields' ``kh*kw*c`` taps), strides, ``(top, left, bottom, right)`` pads, ``nt`` tiles of PE
    outputs, ``cis`` input chunks per tile and ``tpg`` tiles per (super-)group. The fit
    check (:mod:`hwflow.schedule.fit`) sizes the weight ROM with it before quantization.
    """

    kh: int
    kw: int
    sh: int
    sw: int
    pads: tuple[int, int, int, int]
    cin: int
    nt: int
    cis: int
    tpg: int
    diagonal: bool = False

    @property
    def k(self) -> int:
        """Cycles a tile reads (kernel positions x input chunks)."""
        return self.kh * self.kw * self.cis

    @property
    def words(self) -> int:
        """Weight words of the step (:func:`~hwflow.schedule.memory.weight_words`)."""
        return self.nt * self.k

    def rom_words(self, pack: int) -> int:
        """Weight ROM words of the step, ``pack`` diagonals a word if it is depthwise
        (:meth:`RomImages.add_weights`)."""
        return -(-self.words // pack) if self.diagonal else self.words


def mac_geometry(layer: QLayer, x: TensorMap, pe: int, simd: int,
                 stream: InputStream | None = None) -> tuple[MacGeometry, Callable[[], np.ndarray]]:
    """``(geometry, dense)``: the layer's :class:`MacGeometry` on input ``x`` and a function
    giving its dense ``(cout, cin, kh, kw)`` weight in that geometry (called only to build
    the ROM image). ``stream``: the streamed input's geometry if ``x`` is not in the RAM."""
    if layer.op == "gemm" and len(x.shape) == 4:
        dense = lambda: layer.weight.reshape(layer.out_channels, x.c, x.h, x.w)  # noqa: E731
        kh, kw, sh, sw, pads, cin = x.h, x.w, 1, 1, (0, 0, 0, 0), x.c
    elif layer.op == "gemm":
        dense = lambda: layer.weight.reshape(layer.out_channels, x.c, 1, 1)  # noqa: E731
        kh, kw, sh, sw, pads, cin = 1, 1, 1, 1, (0, 0, 0, 0), x.c
    elif not x.in_ram:
        # Streamed input (InputStream): a 1 x 1 convolution over the receptive fields, tap
        # (ky*kw + kx)*cin + c in lane order.
        cin = stream.taps
        w = layer.weight
        dense = lambda: w.transpose(0, 2, 3, 1).reshape(w.shape[0], cin, 1, 1)  # noqa: E731
        kh = kw = sh = sw = 1
        pads = (0, 0, 0, 0)
    else:
        cin = x.c
        dense = lambda: _dense_weight(layer, cin)  # noqa: E731
        (kh, kw), (sh, sw), pads = layer.kernel, layer.strides, tuple(layer.pads)
    cout = layer.out_channels
    if layer.op == "conv" and x.in_ram and layer.weight.shape[1] * layer.groups != cin or \
            layer.op == "gemm" and layer.weight.size != cout * cin * kh * kw:
        raise UnsupportedOpError(f"layer {layer.name!r}: weight {layer.weight.shape!r} does not match input {x.shape!r}")
    nt = chunks(cout, pe)
    sg = _supergroup(layer.groups, cin, cout, pe, simd) if layer.op == "conv" else 1
    if sg > 1:
        cis, tpg = cin // sg // simd, cout // sg // pe
    else:
        cis, tpg = (x.chunks if x.in_ram else stream.chunks), nt
    # Depthwise on a square array: row p of tile g is channel g*pe + p, lane s of chunk c is
    # channel c*simd + s, so every weight is on a word's diagonal (other words are zero).
    diagonal = layer.op == "conv" and layer.groups == cin == cout > 1 and pe == simd
    return MacGeometry(kh, kw, sh, sw, pads, cin, nt, cis, tpg, diagonal), dense


def weight_pack(pe: int, simd: int, ibits: int) -> int:
    """Depthwise diagonals per weight-ROM word (:meth:`RomImages.add_weights`): the largest
    power of two at most ``simd`` on a square array without weight sharing, else 1."""
    return 1 << (simd.bit_length() - 1) if pe == simd > 1 and not ibits else 1


def lower_mac(layer: QLayer, ctx: LowerContext) -> Lowered:
    """``conv`` / ``gemm`` (with a fused MaxPool if ``ctx.pools`` names one): one ``mac`` step."""
    pe, simd = ctx.pe, ctx.simd
    pool = ctx.pools.get(layer.output)
    x = ctx.tensors[layer.inputs[0]]
    common = _step_fields(layer, ctx, x, ctx.tensors[pool.output if pool else layer.output])
    if ctx.xrows and pool is None and x.in_ram and (ctx.xnames is None or layer.name in ctx.xnames) \
            and xnor_ok(layer, ctx.qgraph, simd):
        return _lower_xnor(layer, ctx, x, common)
    geo, dense = mac_geometry(layer, x, pe, simd, ctx.stream)
    if not x.in_ram:  # the receptive fields: a 1 x 1 convolution over the output grid
        st = ctx.stream
        common.update(ih=st.oh, iw=st.ow, ich=st.chunks, in_base=0)
    kh, kw, sh, sw, pads = geo.kh, geo.kw, geo.sh, geo.sw, geo.pads
    nt, cis, tpg, k, cout = geo.nt, geo.cis, geo.tpg, geo.k, layer.out_channels
    qh = qw = 1
    if pool is not None:
        # Fused MaxPool: each pooled pixel runs the conv at its qh x qw window positions.
        (qh, qw), (qsh, qsw) = pool.kernel, pool.strides
        sh, sw, wsh, wsw = sh * qsh, sw * qsw, sh, sw
        common["name"] = f"{layer.name}+{pool.name}"
    else:
        wsh, wsw = sh, sw
    words = weight_words(dense(), pe, simd, nt, cis, tpg)
    packed = geo.diagonal and ctx.roms.pack > 1
    plan = dw_plan(layer, x, pe, simd, ctx.dw_kw) if packed and pool is None else None
    if plan is not None and plan[0] < common["oh"] * common["ow"] * nt * k:  # faster than the array
        return _lower_dw(layer, ctx, x, common, geo, dense, plan[1])
    if layer.wformat == "binary" and not packed:
        # Rows past cout are never written out: +1 there lets the layer keep 1-bit signs.
        pad = (np.arange(nt)[:, None] * pe + np.arange(pe)[None, :]) >= cout  # (nt, pe)
        words.reshape(nt, k, pe, simd)[np.broadcast_to(pad[:, None, :, None], (nt, k, pe, simd))] = 1
    lr = 0 if packed else ctx.roms.narrow_lr(words, 1 if layer.wformat == "binary" else layer.mul_wbits)
    w_base = ctx.roms.add_weights(words, layer.attrs.get("codebook"), diagonal=packed, lr=lr)
    conv_hw = int(np.prod(ctx.qgraph.tensors[layer.output].shape[2:]))
    step = LayerProgram(**common, kind="mac", kh=kh, kw=kw, sh=sh, sw=sw, pt=pads[0], pl=pads[1],
                        qh=qh, qw=qw, wsh=wsh, wsw=wsw,
                        nt=nt, cis=cis, tpg=tpg, k=k, t=tile_cycles(k, pe, qh * qw), nb=pe, cout=cout,
                        w_base=w_base, w_words=words.shape[0], wpk=int(packed), wlr=lr,
                        ch_base=ctx.roms.add_channels(layer.bias, layer.m, layer.n, cout, ctx.shift(layer)),
                        pv=x.zero_point, macs=int(layer.weight.size) * conv_hw, stream=int(not x.in_ram))
    return _lowered(layer, ctx, [step], _mac_acc(layer, ctx))


def xnor_ok(layer: QLayer, qgraph: QGraph, simd: int) -> bool:
    """Whether the XNOR-popcount unit (:mod:`hwflow.rtl.xnor_array`) can run ``layer``: a Gemm
    with weights ±1 on an input of codes ±1 (a bipolar tensor, or one a threshold layer writes:
    a QONNX import types those 2-bit), whose channels fill every word it reads
    (``c % simd == 0``: the unit counts every lane; a Gemm has no padding)."""
    if layer.op != "gemm" or layer.wformat != "binary" or not np.isin(layer.weight, (-1, 1)).all():
        return False
    x = qgraph.tensors[layer.inputs[0]]
    src = next((l for l in qgraph.layers if l.output == x.name), None)
    bipolar = x.bits == 1 or src is not None and src.is_threshold
    return bipolar and x.shape[1] % simd == 0


def _lower_xnor(layer: QLayer, ctx: LowerContext, x: TensorMap, common: dict) -> Lowered:
    """A binary Gemm on a bipolar input as one ``xnor`` step: a ``mac`` step's loop nest with
    ``xrows`` output channels a tile, its weights (one sign a weight) in the XNOR unit's ROM
    (:meth:`RomImages.add_xnor`). Rows past ``cout`` hold +1 (never written out)."""
    rows, simd = ctx.xrows, ctx.simd
    geo, dense = mac_geometry(layer, x, rows, simd)
    nt, k, cout = geo.nt, geo.k, layer.out_channels
    words = weight_words(dense(), rows, simd, geo.nt, geo.cis, geo.tpg)
    pad = (np.arange(nt)[:, None] * rows + np.arange(rows)[None, :]) >= cout  # (nt, rows)
    words.reshape(nt, k, rows, simd)[np.broadcast_to(pad[:, None, :, None], (nt, k, rows, simd))] = 1
    step = LayerProgram(**common, kind="xnor", kh=geo.kh, kw=geo.kw, nt=nt, cis=geo.cis, tpg=geo.tpg, k=k,
                        t=k, nb=rows, xch=min(rows, max(ctx.pe, simd)), cout=cout,
                        w_base=ctx.roms.add_xnor(words), w_words=words.shape[0],
                        ch_base=ctx.roms.add_channels(layer.bias, layer.m, layer.n, cout, ctx.shift(layer)),
                        pv=x.zero_point, macs=int(layer.weight.size))
    return _lowered(layer, ctx, [step], _mac_acc(layer, ctx))


def _mac_acc(layer: QLayer, ctx: LowerContext) -> tuple[int, int]:
    """Range of a conv/gemm accumulator without bias, over all inputs in range."""
    xlo, xhi = ctx.qgraph.tensors[layer.inputs[0]].range
    flat = layer.weight.reshape(layer.out_channels, -1)
    pos = np.where(flat > 0, flat, 0).sum(axis=1)
    neg = np.where(flat < 0, flat, 0).sum(axis=1)
    return int((pos * xlo + neg * xhi).min()), int((pos * xhi + neg * xlo).max())


def dw_cycles(rows: int, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int, chunks: int) -> tuple[int, int, int]:
    """``(cycles, t, reads)`` of a depthwise sweep with ``rows`` output rows a group: per chunk
    and group of rows, ``(ow - 1)*sw + kw + 1`` input columns of ``t = max(reads, kh*kw)``
    cycles, ``reads = (rows - 1)*sh + kh`` (the group's input rows; the unit computes an
    output column's ``kh*kw`` taps while the next column comes in)."""
    reads = (rows - 1) * sh + kh
    t = max(reads, kh * kw)
    return chunks * -(-oh // rows) * ((ow - 1) * sw + kw + 1) * t, t, reads


def dw_plan(layer: QLayer, x: TensorMap, pe: int, simd: int, unit_kw: int) -> tuple[int, int] | None:
    """``(cycles, rows)`` of the fastest depthwise-unit sweep for ``layer`` (rows ``1..pe``), or
    ``None`` if the unit cannot run it: a depthwise conv on a stored input, strides 1 or 2,
    the unit's kernel width ``unit_kw``, at least two reads a column, a square array."""
    if not (unit_kw and layer.op == "conv" and x.in_ram and pe == simd and layer.groups == x.c
            == layer.out_channels > 1 and layer.kernel[1] == unit_kw and set(layer.strides) <= {1, 2}):
        return None
    (kh, kw), (sh, sw) = layer.kernel, layer.strides
    oh, ow = _out_hw(layer, x)
    best = None
    for rows in range(1, min(pe, oh) + 1):
        cyc, _, reads = dw_cycles(rows, kh, kw, sh, sw, oh, ow, chunks(x.c, simd))
        if reads >= 2 and (best is None or cyc < best[0]):
            best = (cyc, rows)
    return best


def _out_hw(layer: QLayer, x: TensorMap) -> tuple[int, int]:
    """A convolution's output height and width on input ``x``."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = layer.kernel, layer.strides, layer.pads
    return (x.h + pt + pb - kh) // sh + 1, (x.w + pl + pr - kw) // sw + 1


def _lower_dw(layer: QLayer, ctx: LowerContext, x: TensorMap, common: dict, geo: MacGeometry, dense,
              rows: int) -> Lowered:
    """A depthwise conv as one ``dw`` step on the depthwise unit (:mod:`hwflow.rtl.dw_array`):
    lanes across a chunk's ``simd`` channels, ``rows`` output rows at once, the kernel taps in
    time; the loop nest's meaning is :class:`~hwflow.schedule.program.LayerProgram`'s. The
    weight words hold one tap of a chunk on the diagonal (packed ``w_pack`` a ROM word), in
    tap order; the last chunk's column reads ``t - kh*kw`` words past them, which the ROM
    image reaches (:meth:`RomImages.reserve`)."""
    simd = ctx.simd
    (kh, kw), (sh, sw) = layer.kernel, layer.strides
    oh, ow = common["oh"], common["ow"]
    nt, c = chunks(x.c, simd), x.c
    _, t, reads = dw_cycles(rows, kh, kw, sh, sw, oh, ow, nt)
    taps = kh * kw
    w = dense()  # (c, c, kh, kw), diagonal
    ch = np.arange(c)
    words = np.zeros((nt * taps, simd, simd), np.int64)
    g, p = np.divmod(ch, simd)
    for ky in range(kh):
        for kx in range(kw):
            words[g * taps + ky * kw + kx, p, p] = w[ch, ch, ky, kx]
    w_base = ctx.roms.add_weights(words, diagonal=True)
    reach = nt * taps + max(0, t - taps)  # virtual words the step's reads reach
    ctx.roms.reserve(w_base + reach)
    conv_hw = oh * ow
    step = LayerProgram(**{**common, "oh": 1, "ow": 1}, kind="dw", kh=reads, kw=1, sh=1, sw=1,
                        pt=geo.pads[0], pl=geo.pads[1], qh=-(-oh // rows), qw=(ow - 1) * sw + kw + 1,
                        wsh=rows * sh, wsw=1, nt=nt, cis=1, tpg=1, k=reads, t=t, nb=simd, ng=1, cout=c,
                        w_base=w_base, w_words=reach, wpk=1, wk=taps, dwr=rows, dkh=kh, dkw=kw,
                        dsh=sh, dsw=sw, doh=oh, dow=ow,
                        ch_base=ctx.roms.add_channels(layer.bias, layer.m, layer.n, c, ctx.shift(layer)),
                        pv=x.zero_point, macs=int(layer.weight.size) * conv_hw)
    return _lowered(layer, ctx, [step], _mac_acc(layer, ctx))


def lower_window(layer: QLayer, ctx: LowerContext) -> Lowered:
    """``maxpool`` -> one ``max`` step; ``avgpool``, and ``lut`` over a 1x1 window, -> one ``sum`` step."""
    x, out = ctx.tensors[layer.inputs[0]], ctx.tensors[layer.output]
    common = _step_fields(layer, ctx, x, out)
    xlo, xhi = ctx.qgraph.tensors[layer.inputs[0]].range
    if layer.op == "lut":
        kh = kw = sh = sw = 1
        pads = (0, 0, 0, 0)
    else:
        (kh, kw), (sh, sw), pads = layer.kernel, layer.strides, layer.pads
    k = kh * kw
    if layer.op == "maxpool":
        kind, bias, m, n, pv = "max", 0, 1, 0, xlo
        lo, hi = ctx.qgraph.tensors[layer.output].range
        common.update(z_out=0, lo=lo, hi=hi)
        acc = xlo, xhi
    else:
        kind, m, n, pv = "sum", layer.m, layer.n, x.zero_point
        bias = 0 if layer.bias is None else layer.bias
        acc = k * xlo, k * xhi
    step = LayerProgram(**common, kind=kind, kh=kh, kw=kw, sh=sh, sw=sw, pt=pads[0], pl=pads[1],
                        nt=x.chunks, cis=1, tpg=1, k=k, t=max(k, ctx.simd), nb=ctx.simd, cout=x.c,
                        ch_base=ctx.roms.add_channels(bias, m, n, x.c, ctx.shift(layer)), pv=pv)
    return _lowered(layer, ctx, [step], acc)


def lower_add(layer: QLayer, ctx: LowerContext) -> Lowered:
    """``add`` -> one ``add`` step: per chunk, one read of each input."""
    x, b, out = (ctx.tensors[t] for t in (*layer.inputs, layer.output))
    if (b.c, b.h, b.w) != (x.c, x.h, x.w) or (out.c, out.h, out.w) != (x.c, x.h, x.w):
        raise UnsupportedOpError(f"layer {layer.name!r}: add needs equal input and output shapes (no broadcasting)")
    qa, qb = (ctx.qgraph.tensors[t] for t in layer.inputs)
    ma, mb = (int(v) for v in layer.add_m)
    step = LayerProgram(**_step_fields(layer, ctx, x, out), kind="add", nt=x.chunks, k=2, t=max(2, ctx.simd),
                        nb=ctx.simd, cout=x.c, in2_base=b.base, za=qa.zero_point, zb=qb.zero_point,
                        ma=ma, mb=mb, ch_base=ctx.roms.add_channels(0, layer.m, layer.n, x.c))
    acc = (min(qa.range[0] - qa.zero_point, qb.range[0] - qb.zero_point),
           max(qa.range[1] - qa.zero_point, qb.range[1] - qb.zero_point))
    return _lowered(layer, ctx, [step], acc, addm=max(abs(ma), abs(mb)))


def lower_concat(layer: QLayer, ctx: LowerContext) -> Lowered:
    """``concat`` (along channels) -> per input, one ``max`` step over a 1x1 window into its channel slice."""
    ins, out = [ctx.tensors[t] for t in layer.inputs], ctx.tensors[layer.output]
    common = _step_fields(layer, ctx, ins[0], out)
    olo, ohi = ctx.qgraph.tensors[layer.output].range
    steps, coff = [], 0
    for i, src in enumerate(ins):
        if (src.h, src.w) != (out.h, out.w):
            raise UnsupportedOpError(f"layer {layer.name!r}: concat is only supported along channels")
        steps.append(LayerProgram(**{**common, "name": f"{layer.name}[{i}]", "ih": src.h, "iw": src.w,
                                     "ich": src.chunks, "in_base": src.base, "z_out": 0, "lo": olo,
                                     "hi": ohi, "lut_en": 0, "lut_base": 0},
                                  kind="max", nt=src.chunks, k=1, t=ctx.simd, nb=ctx.simd, cout=src.c,
                                  coff=coff, ch_base=ctx.roms.add_channels(0, 1, 0, src.c, ctx.shift(layer)),
                                  pv=int_range(src.bits)[0]))
        coff += src.c
    ranges = [ctx.qgraph.tensors[t].range for t in layer.inputs]
    return _lowered(layer, ctx, steps, (min(r[0] for r in ranges), max(r[1] for r in ranges)))


#: The lowering of each QLayer op.
LOWERINGS = {
    "conv": lower_mac,
    "gemm": lower_mac,
    "maxpool": lower_window,
    "avgpool": lower_window,
    "lut": lower_window,
    "add": lower_add,
    "concat": lower_concat,
}
