"""Resource estimate of a scheduled design (before synthesis).

Documented formulas for the budget check and the manifest; the synthesis report gives
the real figures (``bench/synth.py`` shows the estimate's error against them).

- Memory: every memory kind of the target (``[memory.<kind>]`` in its TOML: block RAM,
  iCE40 SPRAM) is counted exactly, in whole blocks of the shape Yosys's ``memory_libmap``
  picks by its cost (:func:`memory_blocks`). The activation RAM and the per-channel and LUT ROMs go in the
  block RAM (ROMs too small or too shallow for a block stay in logic,
  :func:`memory_style`); the weight memory goes in the first kind in which the design fits
  (:func:`place_weights`): an initialised ROM in the block RAM, else a kind the bitstream
  cannot initialise, loaded through the weight-load port (``rtl/weight_ram.py``).
- DSP: Yosys's own rule (:func:`dsp_blocks`) for each multiply in the RTL: the MAC
  array's ``dsp_mults`` DSP lanes and the requantizer's (the controller has none); the
  other MAC lanes are shift-add LUT multipliers (:func:`lut_mult_cost`).
- LUT, FF: per RTL block (controller, MAC array with its weight ROM's logic, serializer,
  requantizer, pool unit, channel ROM, LUT activation, activation RAM glue, top-level
  glue) a linear formula over the block's structure as the RTL builds it: register bits,
  adder bits, barrel-shifter bits, ROM bits left in logic (see :func:`block_features`). The
  coefficients (``_COEF``) are least-squares fits to Yosys's cell counts per block of the
  flattened design (each cell's source line names its block), and per-family packing
  factors map their sum to the placed figure ``hwflow synth`` reports (nextpnr's
  TRELLIS_COMB / ICESTORM_LC, and FFs). They are data (``estimate_coefficients.json``
  beside this module); refit with ``python bench/calibrate_estimate.py fit --write``.
  The widths the features count are the RTL's own (:mod:`.widths`, :mod:`.descriptor`).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import NamedTuple

import numpy as np

from .descriptor import BACK_FIELDS, UNIT_FIELDS, descriptor_fields, descriptor_values
from .program import READ_DATA_REGS, RQ_FINE, RQ_PIECE
from .widths import (CYCLE_BITS, STEP_FLAGS, addr_bits, bias_bits, coord_bits, count_bits, lane_bits,
                     shift_bits, shifter_widths, tree_levels, ubits)

__all__ = ["RomBanks", "check_banks", "read_banks", "rom_banks", "estimate", "block_features", "block_estimates",
           "backend_lane_dsps", "chan_width", "dsp_blocks", "lut_mult_cost", "pot_lane_cost", "xnor_lane_cost", "lane_costs", "rq_pieces",
           "memories", "memory_blocks", "memory_shapes", "memory_style", "memory_use", "place_memories",
           "place_weights"]

_LUTRAM_BITS = 1024
_LOGIC_ROM_DEPTH = 64


def memory_style(depth: int, width: int, rom: bool = True) -> str:
    """Where a memory goes: ``"block"`` RAM or ``"logic"``.

    The RTL puts this in each memory's ``ram_style`` attribute, so Yosys places it as
    estimated (left alone it built a 512-bit wide ROM from LUTs, and shallow channel ROMs
    vary). RAMs always take a block (in logic a RAM costs a flip-flop per bit); small
    ROMs, and ROMs too shallow to fill a block, stay in logic.
    """
    if rom and (depth * width <= _LUTRAM_BITS or depth <= _LOGIC_ROM_DEPTH):
        return "logic"
    return "block"


def chan_width(bias_bits: int, mbits: int, n_bits: int) -> int:
    """Word width of the per-channel ROM (rtl/channel_rom.py): bias, multiplier ``m`` (at
    least 1 bit) and shift ``n``."""
    return bias_bits + max(mbits, 1) + n_bits


def memory_shapes(pe: int, simd: int, abits: int, wbits: int, *, act_words: int, weight_words: int,
                  chan_entries: int, chan_width: int, lut_entries: int) -> list[tuple[str, int, int, int | None, int]]:
    """:func:`memories` from sizes alone (the fit check's, :mod:`hwflow.schedule.fit`):
    activation RAM (``simd`` lanes of ``abits``), weight memory (``pe x simd`` lanes of
    ``wbits``, the codebook index width with weight sharing), per-channel ROM, LUT ROM
    (``abits`` codes). Without the contents every column counts as kept.
    """
    return [
        ("act", act_words, simd * abits, abits, simd * abits),
        ("weights", weight_words, pe * simd * wbits, None, pe * simd * wbits),
        ("chan", chan_entries, chan_width, None, chan_width),
        ("lut", lut_entries, abits, None, abits),
    ]


def memory_blocks(depth: int, width: int, kind, lane: int | None = None) -> int:
    """Blocks of memory kind ``kind`` (a :class:`~hwflow.targets.MemoryKind`) that a
    ``depth x width`` memory takes, as Yosys's ``memory_libmap`` chooses them.

    ``lane`` is the write enable's granularity in bits (``None``: a ROM, no write port).
    For each shape ``d x w`` of the kind the memory is cut into ``ceil(depth / d)`` address
    slices whose bits share blocks, ``w`` a block; a written memory starts each lane on a
    byte of the kind (``kind.byte`` bits, the whole word without byte enables), so 8-bit
    lanes take 9 bits of an ECP5 block. libmap takes the shape of least cost: ``kind.cost``
    a block, plus half a unit per read bit for each extra slice (the read multiplexer) and
    per write enable for each slice (the write demultiplexer). So an 8474 x 32 RAM of
    8-bit lanes takes 9 x 2 blocks of 1024 x 18 on ECP5, not 17 of 512 x 36.
    """
    return _libmap(depth, width, kind, lane)[0]


def _libmap(depth: int, width: int, kind, lane: int | None) -> tuple[int, int, int, int]:
    """``(blocks, d, w, slices)`` of the least-cost shape ``d x w`` (:func:`memory_blocks`)."""
    if width <= 0 or depth <= 0:
        return 0, depth, width, 1
    best = None
    for d, w in kind.shapes:
        slices = math.ceil(depth / d)
        if lane is None:
            bits, demux = width, 0.0
        else:  # libmap's swizzle: every lane padded to whole bytes
            byte = kind.byte if 0 < kind.byte <= w else w
            lanes = math.ceil(width / lane)
            last = width - (lanes - 1) * lane
            bits = (lanes - 1) * math.ceil(lane / byte) * byte + math.ceil(last / byte) * byte
            demux = 0.5 * slices * lanes if slices > 1 else 0.0
        blocks = math.ceil(slices * bits / w)
        cost = kind.cost * blocks + 0.5 * (slices - 1) * width + demux
        if best is None or cost < best[0]:
            best = (cost, blocks, d, w, slices)
    return best[1:]


def check_banks(banks, depth: int) -> tuple[int, ...]:
    """``banks`` (``None``: ``(depth,)``) checked as :func:`read_banks` makes them: ``(depth,)``
    or ``(d, ..., d, rest)`` summing to ``depth``, ``d`` a power of two >= 2, ``0 < rest <= d``."""
    banks = (depth,) if banks is None else tuple(banks)
    d = banks[0] if banks else 0
    if not (banks == (depth,) or (len(banks) >= 2 and d >= 2 and d & (d - 1) == 0 and sum(banks) == depth
                                  and set(banks[:-1]) == {d} and 0 < banks[-1] <= d)):
        raise ValueError(f"banks must be ({depth},) or (d, ..., d, rest) summing to {depth}, d a power "
                         f"of two >= 2, 0 < rest <= d, not {banks!r}")
    return banks


def read_banks(depth: int, width: int, lane: int | None, kind, *, free: bool = True) -> tuple[int, ...]:
    """Depths of the banks a memory is built from (the activation RAM, rtl/act_buffer.py;
    the weight ROM, rtl/weight_rom.py): one bank
    per address slice of ``kind``'s blocks where the memory takes several slices, so that
    each slice's read data is registered before the slices' multiplexer (a block RAM's
    clock-to-out and the multiplexer are then not one path), else the whole memory.

    The banks are ``d`` words each (the depth of the block shape :func:`memory_blocks`
    chooses for the whole memory), the last one the rest, which may take a cheaper shape:
    8474 x 32 in 8-bit lanes takes 18 ECP5 blocks of 1024 x 18 whole (Yosys slices one
    deep RAM uniformly) and 8 x 2 + 1 as banks of 1024 and one of 282 words. With ``free``,
    where the banks would take more blocks than the whole (libmap packs the bits of several
    slices into one block), the whole memory."""
    if kind is None:
        return (depth,)
    blocks, d, _, slices = _libmap(depth, width, kind, lane)
    if slices < 2:
        return (depth,)
    banks = (d,) * (slices - 1) + (depth - (slices - 1) * d,)
    split = (slices - 1) * memory_blocks(d, width, kind, lane) + memory_blocks(banks[-1], width, kind, lane)
    return banks if split <= blocks or not free else (depth,)


class RomBanks(NamedTuple):
    """The weight ROM's banks (rtl/weight_rom.py): ``depths`` as :func:`read_banks` makes
    them, holding ``cols`` of the ROM's varying bit columns (the lowest ones; the rest, when
    there are more, in one memory of the whole depth beside the banks)."""

    depths: tuple[int, ...]
    cols: int


def rom_banks(prog, target) -> RomBanks | None:
    """The weight ROM's banks (``None``: one memory), by :func:`place_memories`' rule for
    ``prog.weight_kind``."""
    return None if prog.weight_kind is None else _rom_banks(memories(prog), target, prog.weight_kind)


def _rom_banks(mems, target, kind, room: bool = True) -> RomBanks | None:
    """One bank per block slice (:func:`read_banks`) where the weight ROM is in initialised
    block memory of several slices and (``room``) ``kind`` still holds every memory with the
    banks' blocks. Banks of every column may take a few more blocks than the whole ROM, whose
    slices libmap packs together (a 4844 x 128 ROM: 5 slices of 7 blocks of 1024 x 18, the
    5 x 2 bits left over in one 8192 x 2 block); then, if that fits, the banks hold the
    columns that fill their blocks and the rest is one memory beside them (7 x 18 columns in
    5 banks and the 2 left in one block: 36 blocks, as the whole ROM)."""
    if not kind.init or kind.blocks is None:
        return None
    _, depth, width, lane, cols = next(mem for mem in mems if mem[0] == "weights")
    if _in_logic(depth, width, lane, kind, target.block_ram):
        return None
    banks = read_banks(depth, cols, lane, kind, free=False)
    if len(banks) < 2:
        return None
    w = _libmap(depth, cols, kind, lane)[2]
    for fill in dict.fromkeys((cols, cols // w * w)):
        if fill and not (room and _use(mems, target, kind, RomBanks(banks, fill))[kind.name] > kind.blocks):
            return RomBanks(banks, fill)
    return None


def memories(prog) -> list[tuple[str, int, int, int | None, int]]:
    """``(name, depth, width, lane, cols)`` of every memory the RTL builds for ``prog``: the
    activation RAM, the weight memory, the per-channel ROM and the LUT ROM.

    ``lane`` is a written memory's write-enable granularity (the activation RAM's: one
    code), ``None`` for a ROM; the weight memory counts as a ROM here, and as a RAM
    written a word at a time where it goes in a kind the bitstream cannot initialise.

    ``width`` is the word as the RTL declares it; ``cols`` the bits synthesis keeps: Yosys
    drops a ROM's columns that hold the same bit in every word (``opt_mem``), so a ROM
    takes blocks for its varying columns only; a RAM (written: the activation RAM, a
    loaded weight RAM) keeps all of them.
    """
    wbits = prog.stored_wbits
    width = prog.pe * prog.simd * wbits
    if prog.weight_load:
        wcols = width
    else:
        flat = prog.weights.reshape(prog.weights.shape[0], -1)
        wcols = sum(_varying_columns(flat[:, i], wbits) for i in range(flat.shape[1]))
    bb, mb, nb = bias_bits(prog.bias), max(prog.mbits, 1), shift_bits(prog.n_min, prog.n_max)
    code = descriptor_fields(prog, descriptor_values(prog))["lo"][0]
    lanes = prog.rq_lanes  # the channel ROM holds one back-end lane group a word
    xnor = []
    if prog.xrows:  # the XNOR unit's own ROM (rtl/xnor_array.py), one bit a weight
        xflat = prog.xweights.reshape(prog.xweights.shape[0], -1)
        xnor = [("xweights", int(xflat.shape[0]), int(xflat.shape[1]), None,
                 sum(_varying_columns(xflat[:, i], 1) for i in range(xflat.shape[1])))]
    return xnor + [
        ("act", prog.act_words, prog.simd * prog.abits, prog.abits, prog.simd * prog.abits),
        ("weights", prog.weight_words, width, None, wcols),
        ("chan", int(prog.bias.shape[0]) // lanes, lanes * chan_width(bb, mb, nb), None,
         lanes * (_varying_columns(prog.bias, bb) + _varying_columns(prog.m, mb) + _varying_columns(prog.n, nb))),
        ("lut", int(prog.lut.shape[0]), code, None, _varying_columns(prog.lut, code)),
    ]


def _placed(mems, target, weight_kind, weight_banks=None) -> list[dict]:
    """Every memory of ``mems`` (as :func:`memories` lists them) with its kind and blocks:
    the weight memory in ``weight_kind`` (in ``weight_banks``, :func:`rom_banks`), the rest in
    the block RAM, or in logic (kind ``"logic"``, no blocks) where :func:`memory_style` puts them."""
    bram = target.block_ram
    out = []
    for name, depth, width, lane, cols in mems:
        kind = weight_kind if name == "weights" and weight_kind is not None else bram
        if not kind.init:  # loaded after configuration: a RAM written a word at a time
            lane = width
        logic = _in_logic(depth, width, lane, kind, bram)
        if name == "weights" and weight_banks:  # the banks, and the columns left beside them
            parts = [(d, weight_banks.cols) for d in weight_banks.depths] + [(depth, cols - weight_banks.cols)]
        else:
            parts = [(d, cols) for d in (read_banks(depth, cols, lane, kind) if name == "act" else (depth,))]
        out.append({"name": name, "depth": depth, "width": width, "cols": cols,
                    "kind": "logic" if logic else kind.name,
                    "blocks": 0 if logic else sum(memory_blocks(d, c, kind, lane) for d, c in parts)})
    return out


def _in_logic(depth: int, width: int, lane: int | None, kind, bram) -> bool:
    """A memory meant for ``kind`` that :func:`memory_style` puts in logic instead (small
    ones in the block RAM's place; ``lane`` ``None``: a ROM)."""
    return kind.name == bram.name and memory_style(depth, width, lane is None) == "logic"


def memory_use(prog, target, weight_kind) -> dict[str, int]:
    """``{kind name: blocks}`` of every memory kind of ``target`` with the weight memory in
    ``weight_kind`` (the rest where :func:`place_weights` always puts it)."""
    return _use(memories(prog), target, weight_kind)


def _use(mems, target, weight_kind, weight_banks=None) -> dict[str, int]:
    out = {k.name: 0 for k in target.memory}
    for mem in _placed(mems, target, weight_kind, weight_banks):
        if mem["kind"] in out:
            out[mem["kind"]] += mem["blocks"]
    return out


def place_weights(prog, target):
    """The memory kind the weight memory goes in: the first of ``target.memory`` (the TOML's
    order, block RAM first) in which every memory of the design fits.

    In the block RAM the weights are an initialised ROM (today's design). A kind the
    bitstream cannot initialise (iCE40 SPRAM, ``init = false``) holds them as a RAM that
    the core's weight-load port fills once after configuration; reading it takes one cycle
    like the ROM, so the cycle model does not change. The activation RAM is written and
    read in the same cycle, so it stays in the (dual-port) block RAM. When the design fits
    no kind the block RAM is returned and :func:`~hwflow.schedule.budget.check_budget`
    reports the shortfall.
    """
    return place_memories(memories(prog), target)[0]


def place_memories(mems, target, banks: str = "fit") -> tuple:
    """``(kind, {kind name: blocks})``: :func:`place_weights`'s rule on ``mems`` (as
    :func:`memories` or :func:`memory_shapes` list them), with the blocks every kind then
    holds; ``(target.block_ram, its use)`` when no kind fits. The weight ROM is in banks
    (:func:`rom_banks`) with ``banks`` ``"fit"`` where they fit; for sizes that bound a
    design's (the fit check's), ``"low"`` and ``"high"`` give the fewest and the most blocks
    it may take, banked or not (banks where they fit: counted up to the kind's blocks)."""
    for kind in target.memory:
        use = _use(mems, target, kind)
        if all(k.blocks is None or use[k.name] <= k.blocks for k in target.memory):
            if banks == "fit":
                return kind, _use(mems, target, kind, _rom_banks(mems, target, kind))
            split = _use(mems, target, kind, _rom_banks(mems, target, kind, room=False))
            if banks == "low":
                return kind, {k: min(use[k], split[k]) for k in use}
            return kind, {k.name: max(use[k.name], split[k.name] if k.blocks is None
                                      else min(split[k.name], k.blocks)) for k in target.memory}
    return target.block_ram, _use(mems, target, target.block_ram)


def dsp_blocks(a: int, b: int, family: str, y: int | None = None) -> int:
    """Hard multipliers Yosys uses for an ``a x b``-bit product with ``y`` result bits used.

    Yosys (``mul2dsp``) tiles the product by the block's width (ECP5 MULT18X18D 18x18,
    iCE40 SB_MAC16 16x16) and puts each tile on a DSP when both operands have at least
    2 bits (iCE40: and the tile's product at least 11 bits); smaller tiles become LUTs.
    Only the ``y`` low result bits used survive (``wreduce`` narrows the operands too).
    """
    if y is not None:
        a, b = min(a, y), min(b, y)
    w = 16 if family == "ice40" else 18
    tiles = lambda n: [w] * (n // w) + ([n % w] if n % w else [])  # noqa: E731
    return sum(1 for ta in tiles(a) for tb in tiles(b)
               if min(ta, tb) >= 2 and (family != "ice40" or min(ta + tb, y or ta + tb) >= 11))


def rq_pieces(post_bits: int, mbits: int) -> list[tuple[int, int]]:
    """The requantizer's partial products ``v_i * m_j`` as rtl/requantizer.py splits
    ``v * m``: the widths of every pair of ``RQ_PIECE``-bit pieces of ``v`` and ``m``."""
    def pieces(n: int) -> list[int]:
        return [min(RQ_PIECE, n - i) for i in range(0, n, RQ_PIECE)]

    return [(a, b) for a in pieces(post_bits) for b in pieces(mbits)]


def backend_lane_dsps(widths: dict, family: str) -> int:
    """Hard multipliers of one back-end lane for the datapath ``widths`` (the Program's
    ``post_bits``, ``mbits``, ``add_bits``, ``addm_bits``): the requantizer's partial
    products (:func:`rq_pieces`; none under power-of-2 scales) and an Add's ``a * ma`` and
    ``b * mb`` (signed)."""
    n = sum(dsp_blocks(a, b, family) for a, b in rq_pieces(widths["post_bits"], widths["mbits"])) \
        if widths["mbits"] > 1 else 0
    if widths["addm_bits"]:
        n += 2 * dsp_blocks(widths["add_bits"], widths["addm_bits"] + 1, family)
    return n


def lut_mult_cost(wbits: int, abits: int, family: str) -> tuple[int, int]:
    """Extra ``(luts, ffs)`` of a MAC lane multiplying in LUTs instead of on a DSP.

    The lane (rtl/mac_array.py ``lut_products``) ANDs ``abits`` activation bits with each of
    the ``wbits`` weight bits (one LUT each) and adds the ``wbits`` partial products in a
    tree of ``wbits - 1`` carry-chain adders of about ``abits + 2`` bits (one LUT a bit).
    It registers the tree's first level (about ``abits + 2`` bits a pair) where a DSP lane
    registers its weight. Calibrated on 2 x 4 arrays, all-LUT minus all-DSP, per lane
    (Yosys 0.70, ``-abc9``; a CCU2C counted as two LUT4s): ECP5 8x8 138 LUTs 28 FFs, 4x8
    62 LUTs 12 FFs; iCE40 (``-dsp``) 8x8 146 LUTs 71 FFs, 4x8 70 LUTs 43 FFs (the SB_MAC16
    absorbs a DSP lane's input and product registers).
    """
    luts = wbits * abits + (wbits - 1) * (abits + 2)
    level1 = (wbits // 2) * (abits + 2) + (wbits % 2) * abits
    if family != "ice40":
        return luts, level1 - wbits
    return luts + abits + wbits // 2, level1 + 2 * (wbits + abits)


def pot_lane_cost(cbits: int, abits: int, family: str) -> tuple[int, int]:
    """``(luts, ffs)`` of a MAC lane on the ``pot`` shift lane (rtl/mac_array.py ``pot_products``)
    beyond a DSP lane's (what :func:`lut_mult_cost` counts for a multiplier in LUTs);
    ``cbits = 2`` is the add/subtract lane of binary and ternary weights (no shift level:
    about a LUT4 a bit for the zero select and the inversion).

    The barrel shift of the ``abits`` activation by the code's ``cbits - 1`` exponent bits
    has ``sw = abits + 2**(cbits-1) - 2`` output bits and a 2-to-1 mux level per exponent
    bit (one LUT4 a bit a level); the zero code and the sign's inversion fold into the
    last level, the sign's +1 rides an adder's carry-in. Registers: the shifted value and
    two sign bits. Measured (``python bench/lanes.py``, PE 4 x SIMD 4, 8-bit activations,
    pot4, all-DSP array as the baseline): ECP5 42 LUT4s (the formula's 42), an 8 x 8 LUT
    multiplier 138; iCE40 55 against 146 (its SB_MAC16 baseline absorbs more of the
    adders; the formula is kept).
    """
    sw = abits + (1 << (cbits - 1)) - 2
    return sw * (cbits - 1), sw + 2


def lane_costs(prog, family: str) -> list[dict]:
    """The MAC array's lanes by type: ``[{"lane", "count", "luts", "dsps"}]`` (``luts`` and
    ``dsps`` for all ``count`` lanes, beyond the adder trees every lane type shares).

    Types: ``pot`` (shift lanes, :func:`pot_lane_cost`), ``addsub`` (its ``cbits = 2`` case), ``mul-dsp`` (a multiplier on DSPs,
    :func:`dsp_blocks` each), ``mul-lut`` (a shift-add multiplier in LUTs, :func:`lut_mult_cost`);
    and the XNOR-popcount unit's (``xnor``, :func:`xnor_lane_cost`) when the program has one.
    """
    n = prog.pe * prog.simd
    if prog.xrows:
        xn = prog.xrows * prog.simd
        xnor = [{"lane": "xnor", "count": xn, "luts": round(xn * xnor_lane_cost(prog.simd, family)[0]), "dsps": 0}]
        return _array_lanes(prog, family, n) + xnor
    return _array_lanes(prog, family, n)


def xnor_lane_cost(simd: int, family: str) -> tuple[float, float]:
    """``(LUTs, FFs)`` of one XNOR-popcount lane (rtl/xnor_array.py), beyond the accumulators:
    the XOR and its share of the row's popcount tree (a ``simd``-input adder tree, about a LUT
    per input bit: the XOR merges into its first level), and the registered weight bit and
    popcount bits."""
    return 1.0 + (simd.bit_length() - 1) / max(simd, 1), 1.0 + simd.bit_length() / max(simd, 1)


def _array_lanes(prog, family: str, n: int) -> list[dict]:
    """:func:`lane_costs` of the MAC array's ``n`` lanes."""
    if prog.lane != "mul":
        return [{"lane": prog.lane, "count": n, "luts": n * pot_lane_cost(prog.cbits, prog.abits, family)[0], "dsps": 0}]
    per = dsp_blocks(prog.wbits, prog.abits, family)
    ndsp = n if not per or prog.dsp_mults is None else min(prog.dsp_mults, n)
    out = []
    if ndsp:
        out.append({"lane": "mul-dsp" if per else "mul-lut", "count": ndsp, "dsps": ndsp * per,
                    "luts": 0 if per else ndsp * prog.wbits * prog.abits})
    if n - ndsp:
        out.append({"lane": "mul-lut", "count": n - ndsp, "dsps": 0,
                    "luts": (n - ndsp) * lut_mult_cost(prog.wbits, prog.abits, family)[0]})
    return out


# ---- LUT / FF: per-block formulas -----------------------------------------------------------

#: Fitted coefficients (``estimate_coefficients.json``, package data): family -> block ->
#: resource -> feature -> weight (per unit of the feature), and "pack": placed LUTs =
#: lut * Yosys LUTs + lut_ff * Yosys FFs, placed FFs = ff * Yosys FFs. Written by
#: ``python bench/calibrate_estimate.py fit --write`` (features no calibration design
#: exercises keep their value: lutmul 1 LUT4 per partial product bit, a logic ROM 1.5 LUT4
#: per 16 entries per bit as the channel ROM fits, pool 2 LUT4 / 1 FF per lane bit, the
#: loaded weight RAM's mux and loader, and the packed depthwise unpacking, 1 LUT4 / 1 FF per unit);
#: "generic" uses the ECP5 figures.
COEF_FILE = "estimate_coefficients.json"
_COEF = json.loads(resources.files(__package__).joinpath(COEF_FILE).read_text(encoding="utf-8"))
_COEF_FALLBACK = "ecp5"


def _varying_columns(values, width: int) -> int:
    """Bits of a ``width``-bit ROM column set that are not constant over ``values`` (Yosys
    removes constant ROM bits and their registers)."""
    vals = np.asarray(values, dtype=np.int64).reshape(-1) & ((1 << width) - 1)
    if not vals.size:
        return 0
    return bin(int(np.bitwise_or.reduce(vals ^ vals[0]))).count("1")


def _rom_logic(depth: int, cols: int) -> float:
    """LUT4s of a ROM in logic: one LUT4 per 16 entries per non-constant output bit."""
    return cols * math.ceil(depth / 16)


def _tree(pe: int, simd: int, pw: int) -> tuple[int, int, int]:
    """(adder bits, register bits, levels) of the MAC array's registered adder trees."""
    n, width, add, regs = simd, pw, 0, 0
    while n > 1:
        nn = (n + 1) // 2
        add += pe * (n // 2) * (width + 1)
        regs += pe * nn * (width + 1)
        n, width = nn, width + 1
    return add, regs, tree_levels(simd)


def block_features(prog, family: str) -> dict:
    """Structural features of every RTL block of ``prog``: ``{block: {"lut": {name: value},
    "ff": {name: value}}}``.

    Each feature is a count the RTL fixes (``rtl/*.py``): register bits, adder/comparator
    bits, barrel-shifter mux bits, ROM bits in logic. A block's LUT or FF estimate is
    ``sum(coef[name] * value)`` (``"one"`` is the constant term); the coefficients are
    fitted by ``bench/calibrate_estimate.py``.
    """
    pe, simd, ab, wb = prog.pe, prog.simd, prog.abits, prog.wbits
    nmul, vec = pe * simd, max(pe, simd)
    kinds = {l.kind for l in prog.layers}
    has_add, has_mac = "add" in kinds, bool(kinds & {"mac", "dw"})  # a dw step reads the weight ROM too
    aw = addr_bits(prog.act_words)
    wwords = int(prog.weights.shape[0])
    ww = addr_bits(wwords)
    lanes = lane_bits(simd)
    tag = aw + lanes  # write address and lane, carried beside each code
    acc, post = prog.acc_bits, prog.post_bits
    mbits = max(prog.mbits, 1)
    vals = descriptor_values(prog)
    fw = {name: w for name, (w, _) in descriptor_fields(prog, vals).items()}
    var = {name: _varying_columns([v[name] for v in vals], w) for name, w in fw.items()}
    word = simd * ab
    code = fw["lo"]
    f: dict = {}

    # Controller (rtl/controller.py): loop, stream and address counters, the address
    # pipeline, the FSM; the descriptor ROM in logic. ``regs`` is the register count the
    # coefficients were fitted with; some of its terms (the stream counters beside the
    # stream addresses, ``lanes``, an output-row counter, the ``pw``-wide pixel offsets, the
    # stacked input's counters) describe registers the controller has since dropped or
    # narrowed: a refit should count the controller's own registers.
    L = len(prog.layers)
    cw = coord_bits(prog.layers)
    pixlim = max((l.ih + l.kh + l.pt + 1) * (l.iw + l.kw + l.pl + 1) for l in prog.layers)
    pw = ubits(pixlim) + 2

    def stream(tm):
        return (ubits(max(tm.h * tm.w, 2) - 1) + ubits(max(tm.c, 2) - 1) + ubits(max(simd, 2) - 1)
                + ubits(max(tm.chunks, 2) - 1) + aw)

    tin = prog.input_map
    fsm = 3  # the controller's eight states
    regs = (CYCLE_BITS + ubits(max(L, 2) - 1) + stream(tin) + stream(prog.output_map) + 2 + lanes
            + ubits(max(l.oh for l in prog.layers)) + ubits(max(l.ow for l in prog.layers))
            + fw["nt"] + fw["tpg"] + ubits(max(l.ich for l in prog.layers)) + fw["t"]
            + fw["kh"] + fw["kw"] + fw["cis"] + 4 * cw + 3 * pw + ww + 1 + fw["drain"] + fw["qh"] + fw["qw"] + 1
            + (pw + 1) + (aw + 1) + STEP_FLAGS + ww + 2 * aw + ww + STEP_FLAGS + STEP_FLAGS + fsm)
    st = prog.input_stream
    if st is not None:  # the streamed first layer: beat delay, field origin, row/column tests, lane mask
        regs += 3 * word + 2 * (cw + 2) + 2 * ubits(st.chunks - 1) + st.kh + st.kw + simd
    desc_var = sum(var.values())
    f["ctrl"] = {"lut": {"one": 1, "regs": regs, "desc": desc_var * math.ceil(L / 16)},
                 "ff": {"one": 1, "regs": regs, "desc": desc_var}}

    # MAC array (rtl/mac_array.py): input, product, tree and accumulator registers; tree
    # and accumulator adders; multipliers in LUTs when the family's DSP rule leaves them.
    # A shallow weight ROM (rtl/weight_rom.py) in logic counts here too: synthesis names
    # its data register after the array's weight input.
    # A deep ROM in block RAM stacks blocks in depth: a ``rows``-to-1 read mux per bit.
    # A loaded weight RAM (rtl/weight_ram.py, named "wrom" too) stacks its kind's blocks the
    # same way (``wram_mux``: one LUT4 per 2-to-1 bit), and its loader has a word counter, a
    # last-word compare and an address mux (``wload``: a LUT4 and a FF per address bit,
    # plus the ``loaded`` flag and the registered row select).
    wwidth = nmul * (prog.stored_wbits)
    wrom_lut = wrom_ff = wrom_mux = wram_mux = wload_lut = wload_ff = 0
    if prog.weight_load:
        rows = math.ceil(wwords / max(d for d, _ in prog.weight_kind.shapes))
        wram_mux = wwidth * (rows - 1)
        wload_lut, wload_ff = 3 * ww, ww + 1 + ubits(rows - 1)
    elif has_mac and memory_style(wwords, wwidth) == "logic":
        flat = prog.weights.reshape(wwords, -1)
        wrom_ff = sum(_varying_columns(flat[:, i], prog.stored_wbits) for i in range(flat.shape[1]))
        wrom_lut = _rom_logic(wwords, wrom_ff)
    elif has_mac:
        wrom_mux = wwidth * (math.ceil(wwords / (256 if family == "ice40" else 1024)) - 1)
    # Packed depthwise words (rtl/accelerator.py ``_unpack``), counted, not fitted: the slot
    # mux (``w_pack``-to-1 over a diagonal, about a LUT4 per input), a mux or an AND per
    # weight bit, the ROM address mux; the slot, flag and its delay in FFs.
    wpack_lut = wpack_ff = 0
    if has_mac and prog.w_pack > 1:
        wpack_lut = pe * (prog.stored_wbits) * (prog.w_pack - 1) + wwidth + ww
        wpack_ff = prog.w_pack.bit_length() + 2
    # Narrow weights (rtl/accelerator.py ``_narrow``), counted, not fitted: per class ``lr``
    # a ``2**lr``-to-1 slot mux per stored bit (about half a LUT4 per 2-to-1), the class mux
    # per lane bit and the ROM address's shift mux; the slot and the class delayed in FFs.
    if has_mac and prog.narrow_lrs:
        lrs, big = prog.narrow_lrs, prog.stored_wbits
        wpack_lut += nmul * sum((big >> lr) * ((1 << lr) - 1) for lr in lrs) // 2 + wwidth * len(lrs) + ww * len(lrs)
        wpack_ff += (1 + READ_DATA_REGS) * (max(lrs) + max(lrs).bit_length()) + 2 * max(lrs).bit_length()
    if has_mac:
        prod = wb + ab
        tadd, tregs, levels = _tree(pe, simd, prod)
        # Lanes past ``dsp_mults`` multiply in LUTs: their cost per lane (lut_mult_cost) is
        # measured on its own, so its coefficient stays 1. DSP lanes register their inputs twice.
        # ``3 * levels + 7``: the control flags beside the pipeline as fitted (the RTL has
        # ``3 * (levels + 3) + 1``).
        ndsp = nmul if not dsp_blocks(wb, ab, family) or prog.dsp_mults is None else min(prog.dsp_mults, nmul)
        if prog.lane != "mul":  # shift or add/subtract lanes (no DSP lane's second input register)
            ndsp = 0
            lane_luts, lane_ffs = pot_lane_cost(prog.cbits, ab, family)
            lutmul, lutmul_ff = nmul * lane_luts, nmul * lane_ffs - simd * ab
        elif dsp_blocks(wb, ab, family):
            lane_luts, lane_ffs = lut_mult_cost(wb, ab, family)
            lutmul, lutmul_ff = (nmul - ndsp) * lane_luts, (nmul - ndsp) * lane_ffs
        else:
            lutmul, lutmul_ff = nmul * wb * ab, 0
        f["mac"] = {"lut": {"adders": tadd + pe * acc, "lutmul": lutmul, "wrom": wrom_lut, "wrom_mux": wrom_mux,
                            "wram_mux": wram_mux, "wload": wload_lut, "wpack": wpack_lut},
                    "ff": {"inputs": simd * ab + nmul * prog.stored_wbits + ndsp * wb + simd * ab, "products": nmul * prod,
                           "tree": tregs + pe * acc + 3 * levels + 7, "wrom": wrom_ff,
                           "lutmul": lutmul_ff, "wload": wload_ff, "wpack": wpack_ff}}
    else:
        f["mac"] = {"lut": {"adders": 0, "lutmul": 0, "wrom": 0, "wrom_mux": 0, "wram_mux": 0, "wload": 0,
                            "wpack": 0},
                    "ff": {"inputs": 0, "products": 0, "tree": 0, "wrom": 0, "lutmul": 0, "wload": 0, "wpack": 0}}

    # Depthwise unit (rtl/dw_array.py), counted, not fitted (coefficient 1): the column, the
    # window and its tap copy (``kw`` columns of ``H`` words each), operands, LUT multipliers
    # (lut_mult_cost a lane: the unit takes no DSPs), products, accumulators and the row
    # buffer; the copy's input mux (hold, rotate, rotate and shift) and the tap source mux a
    # LUT a bit each, the accumulator adders, the row buffer's shift, the sweep counters.
    dws = [l for l in prog.layers if l.kind == "dw"]
    if dws:
        R, H, KW = max(l.dwr for l in dws), max(l.k for l in dws), dws[0].dkw
        lane_luts, lane_ffs = lut_mult_cost(wb, ab, family)
        n = R * simd
        cb = max(fw["dw_cols_m1"], fw["dw_groups_m1"])
        f["dw"] = {"lut": {"window": 2 * KW * H * word + H * word, "lutmul": n * lane_luts,
                           "adders": n * acc + R * simd * acc, "counters": 4 * cb + 16},
                   "ff": {"window": (2 * KW + 1) * H * word, "pipe": R * word + simd * wb + n * lane_ffs
                          + n * (wb + ab) + 2 * n * acc, "counters": 2 * cb + 2 * ubits(R) * 6 + 24}}

    # XNOR-popcount unit (rtl/xnor_array.py), counted, not fitted: per lane its XOR, popcount
    # share, weight bit and popcount register (xnor_lane_cost); per row the accumulator (an
    # adder and a register) and the output buffer (a register and its load/shift mux); the
    # input signs, flags and chunk counters. Its ROM in logic when shallow (a LUT4 per 16 words
    # per varying column, a register per column), else a block-RAM read mux.
    if prog.xrows:
        R, xn = prog.xrows, prog.xrows * simd
        xwords, xwidth = prog.xweights.shape[0], xn
        xl, xf = xnor_lane_cost(simd, family)
        xcols = next(c for n_, _, _, _, c in memories(prog) if n_ == "xweights")
        if memory_style(xwords, xwidth) == "logic":
            xrom_lut, xrom_ff = _rom_logic(xwords, xcols), xcols
        else:
            xrom_lut, xrom_ff = xwidth * (math.ceil(xwords / (256 if family == "ice40" else 1024)) - 1), 0
        f["xnor"] = {"lut": {"lanes": round(xn * xl), "acc": 2 * R * prog.xacc_bits, "rom": xrom_lut,
                             "counters": 2 * ubits(R) + 4},
                     "ff": {"lanes": round(xn * xf), "acc": 2 * R * prog.xacc_bits, "rom": xrom_ff + READ_DATA_REGS * xcols,
                            "inputs": simd + 7 + 2 * ubits(R)}}

    # Serializer (rtl/serializer.py): the shift register(s) and the channel/address counters
    # (as fitted: without the registered ``cout - 1`` and ``nt - 1``, 2 x ``co_bits``).
    co_bits = count_bits(max(l.nt * l.nb if l.kind == "xnor" else l.cout for l in prog.layers), vec)
    ch_bits = addr_bits(prog.bias.shape[0])
    # Lanes past ``pe`` only carry the pool unit's results: constant (removed) without it.
    pooled = bool(kinds & {"max", "sum", "add"})
    sr = (vec if pooled else pe) * acc * (2 if has_add else 1)
    counters = ubits(vec) + 3 * co_bits + 2 * aw + lanes
    f["ser"] = {"lut": {"one": 1, "shift": sr, "counters": counters + ch_bits},
                "ff": {"one": 1, "regs": sr + counters}}

    # Requantizers (rtl/requantizer.py), one per back-end lane: [multiplier (DSPs; partial
    # products registered, then summed in LUTs)], coarse and fine shift, round + zero point,
    # clamp; lane 0's tag (write address, first lane, valid mask) rides along every stage, the
    # other lanes carry one bit.
    L = prog.rq_lanes
    nbits = shift_bits(prog.n_min, prog.n_max)
    has_mul = prog.mbits > 1
    rpw, lw, tw = shifter_widths(post, mbits, prog.n_min)
    rw = ubits(max(prog.n_max, 1) - 1)
    w = 16 if family == "ice40" else 18
    tiles = math.ceil(post / w) * math.ceil((mbits + 1) / w) if has_mul else 1
    tag0 = tag + L  # lane 0's tag: write address, first lane and the group's mask

    # partial products (RQ_PIECE-bit pieces of v and m), then their sum with the delayed
    # shift amount; the coarse and the fine shift stage
    pp = sum(a + b + 1 for a, b in rq_pieces(post, mbits))

    def rq_regs(tg):
        mul = pp + rpw + 1 + tg + nbits + 2 + tg + nbits if has_mul else 0
        return mul + tw + 2 * RQ_FINE + 2 + tg + tw + 1 + tg + tw + 2 + tg + code + 3 + tg + code + 1 + tg

    f["rq"] = {"lut": {"one": 1, "shifter": L * tw * (lw + rw), "adders": L * (tw + code),
                       "partials": L * rpw * (tiles - 1)},
               "ff": {"one": 1, "regs": rq_regs(tag0) + (L - 1) * rq_regs(1)}}

    # Pool unit (rtl/pool.py): per lane max / sum (and the Add operands). Without a step
    # that pools or adds its inputs are constant and synthesis removes it.
    pool = simd * acc * (2 if has_add else 1) if pooled else 0
    f["pool"] = {"lut": {"lanes": pool}, "ff": {"regs": pool}}

    # Per-channel ROM (rtl/channel_rom.py): bias, m, n of ``L`` channels a word; in logic
    # unless deep and wide.
    bbits = bias_bits(prog.bias)
    depth = int(prog.bias.shape[0]) // L
    cols = sum(_varying_columns(prog.bias[i::L], bbits) + _varying_columns(prog.m[i::L], mbits)
               + _varying_columns(prog.n[i::L], nbits) for i in range(L))
    if memory_style(depth, L * (bbits + mbits + nbits)) == "logic":
        f["crom"] = {"lut": {"rom": _rom_logic(depth, cols)}, "ff": {"cols": cols}}
    else:
        f["crom"] = {"lut": {"rom": 0}, "ff": {"cols": 0}}

    # LUT activation (rtl/lut.py), one per back-end lane: table ROM, address adder, bypass
    # mux, tag registers (lane 0's tag, one bit on the others).
    ldepth = int(prog.lut.shape[0])
    lut_en = any(l.lut_en for l in prog.layers)
    lcols = _varying_columns(prog.lut, code) if lut_en else 0
    rom = _rom_logic(ldepth, lcols) if memory_style(ldepth, code) == "logic" else 0
    f["lut"] = {"lut": {"rom": L * rom, "mux": L * (code + ubits(ldepth - 1)) if lut_en else 0},
                "ff": {"regs": L * (code + 2 + (lcols if rom else 0)) + tag0 + L - 1}}

    # Activation RAM (rtl/act_buffer.py): block RAM; logic for lane enables and read hold.
    f["act"] = {"lut": {"one": 1, "word": word, "addr": aw}, "ff": {"one": 1, "word": word, "addr": aw}}

    # Top-level glue (rtl/accelerator.py): pad substitution, max-merge hold registers and
    # comparators, result select, pre-stage (bias add), write-back mux, delayed flags.
    mac_lat = prog.latency.get("mac", 0) if has_mac else 0
    hold = pe * acc if has_mac else 0
    # a fused window's two-stage merge: the registered comparison, the result and its flags
    merge_r = pe * (acc + 1) + 2 if prog.latency.get("merge", 1) > 1 else 0
    # Layer overlap: the queued and current back-end fields (two copies), the unit fields
    # delayed to the data (``issue`` stages), the registered result vector; fields constant
    # over the layers are constants after synthesis.
    overlap = (2 * sum(var.get(n, 0) for n in BACK_FIELDS)
               + prog.latency["issue"] * sum(var.get(n, 0) for n in UNIT_FIELDS)
               + (vec if pooled else pe) * acc * (2 if has_add else 1))
    f["top"] = {"lut": {"one": 1, "pad": word, "hold": hold, "select": vec * acc if pooled else 0,
                        "pre": L * post + aw + tag0},
                "ff": {"one": 1, "regs": 2 * mac_lat + hold + merge_r + L * (acc * (2 if has_add else 1) + post + mbits + nbits)
                       + 2 * tag0 + 4 + overlap}}
    return f


#: Blocks whose features are counted LUTs and FFs, not fitted (rtl/dw_array.py).
_COUNTED = ("dw", "xnor")


def _coef(family: str) -> dict:
    return _COEF.get(family) or _COEF[_COEF_FALLBACK]


def block_estimates(prog, family: str) -> dict:
    """``{block: {"lut", "ff"}}``: each block's fitted formula (Yosys cells after flattening,
    before place and route's packing)."""
    coef = _coef(family)
    out = {}
    for block, feats in block_features(prog, family).items():
        c = coef.get(block, {})
        if block in _COUNTED:  # no fitted coefficients: its features are LUT and FF counts
            c = {res: {n: 1.0 for n in feats[res]} for res in ("lut", "ff")}
        out[block] = {res: float(sum(c.get(res, {}).get(n, 0.0) * v for n, v in feats[res].items()))
                      for res in ("lut", "ff")}
    return out


def estimate(prog, target) -> dict:
    """``{"luts", "ffs", "dsps", "<kind>_blocks", "rom_bits", "ram_bits", "memories"}`` for ``prog``
    on ``target``: one ``<kind>_blocks`` for each of the target's memory kinds (``bram_blocks``,
    ``spram_blocks``), with the weight memory where ``prog.weight_kind`` says (``None``: the block
    RAM); ``memories`` lists each memory with its kind and blocks (:func:`memories`)."""
    family = getattr(target, "family", "generic")
    pe, simd = prog.pe, prog.simd
    nmul = pe * simd
    mac_dsp = dsp_blocks(prog.wbits, prog.abits, family) if prog.lane == "mul" else 0
    ndsp = nmul if prog.dsp_mults is None else min(prog.dsp_mults, nmul)
    dsps = ndsp * mac_dsp + prog.rq_lanes * backend_lane_dsps(vars(prog), family)
    fam = family if family in _COEF else _COEF_FALLBACK
    per_block = block_estimates(prog, fam)
    pack = _coef(fam)["pack"]
    lut_sum = sum(b["lut"] for b in per_block.values())
    ff_sum = sum(b["ff"] for b in per_block.values())
    # Placement packs LUTs (ECP5 counts CCU2C halves, iCE40 logic cells also hold the
    # flip-flops no LUT feeds): linear in the Yosys figures.
    luts = pack["lut"] * lut_sum + pack.get("lut_ff", 0.0) * ff_sum
    ffs = pack["ff"] * ff_sum
    mems = memories(prog)
    placed = _placed(mems, target, prog.weight_kind, prog.rom_banks)
    blocks = _use(mems, target, prog.weight_kind, prog.rom_banks)
    return {
        "luts": int(round(luts)),
        "ffs": int(round(ffs)),
        "dsps": int(dsps),
        **{f"{name}_blocks": int(n) for name, n in blocks.items()},
        "rom_bits": int(prog.weight_rom_bits + prog.chan_rom_bits + prog.lut_rom_bits),
        "ram_bits": int(prog.act_bits),
        "memories": placed,
    }
