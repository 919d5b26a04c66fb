"""Resource estimate of a scheduled design (before synthesis).

Simple, documented formulas, calibrated against Yosys only roughly: they are for the
budget check and the manifest, and the synthesis report gives the real figures.

- Block RAM: each memory is tiled into blocks of the family's geometry (ECP5 DP16KD:
  18 Kbit, widths up to 36; iCE40 SB_RAM40_4K: 4 Kbit, widths up to 16). Memories under
  ``_LUTRAM_BITS`` are left to LUTs/FFs.
- DSP: Yosys's own rule (:func:`dsp_blocks`) for each multiply in the RTL: the MAC
  array's ``dsp_mults`` DSP lanes and the requantizer's (the controller has none). The
  other MAC lanes are shift-add LUT multipliers (:func:`lut_mult_cost`).
- LUT: multipliers in LUTs ~ ``a*b`` LUT4s, adders one LUT per bit, plus control.
"""

from __future__ import annotations

import math

__all__ = ["estimate", "bram_blocks", "dsp_blocks", "lut_mult_cost", "memory_style"]

_LUTRAM_BITS = 1024
_LOGIC_ROM_DEPTH = 64
_CONTROL_LUTS = 900
_CONTROL_FFS = 500


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


def bram_blocks(depth: int, width: int, family: str, rom: bool = True) -> int:
    """Blocks of block RAM for a ``depth x width`` memory on ``family``."""
    if memory_style(depth, width, rom) == "logic":
        return 0
    if family == "ice40":
        geoms = [(256, 16), (512, 8), (1024, 4), (2048, 2)]
    else:  # ecp5 and generic: DP16KD
        geoms = [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]
    return _tile(depth, width, tuple(geoms))


def _tile(depth: int, width: int, geoms: tuple) -> int:
    # Yosys fills whole columns of one geometry, then tiles the leftover width on its own
    # (4975 x 128 on ECP5: 7 columns of 1024x18 plus one 8192x2 block).
    if width <= 0:
        return 0
    return min(math.ceil(depth / d) * max(1, width // w) + _tile(depth, width - max(1, width // w) * w, geoms)
               if width >= w else math.ceil(depth / d) for d, w in geoms)


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


def estimate(prog, target) -> dict:
    """``{"luts", "ffs", "dsps", "bram_blocks", "rom_bits", "ram_bits"}`` for ``prog`` on ``target``."""
    family = getattr(target, "family", "generic")
    pe, simd = prog.pe, prog.simd
    nmul = pe * simd
    mac_dsp = dsp_blocks(prog.wbits, prog.abits, family)
    ndsp = nmul if prog.dsp_mults is None else min(prog.dsp_mults, nmul)
    dsps = ndsp * mac_dsp
    luts = 0 if mac_dsp else nmul * prog.wbits * prog.abits
    lane_luts, lane_ffs = lut_mult_cost(prog.wbits, prog.abits, family) if mac_dsp else (0, 0)
    luts += (nmul - ndsp) * lane_luts
    prod = prog.wbits + prog.abits
    tree = pe * sum((simd >> (i + 1)) * (prod + i + 1) for i in range(max(1, math.ceil(math.log2(max(simd, 1))))))
    # adder tree; accumulators, max-merge hold registers and comparators, serializer
    luts += tree + pe * prog.acc_bits * 4
    ffs = nmul * prod + tree + pe * prog.acc_bits * 3 + (nmul - ndsp) * lane_ffs
    ffs += ndsp * prog.wbits + simd * prog.abits  # the DSP lanes' second input register
    if prog.mbits > 1:
        dsps += dsp_blocks(prog.post_bits, prog.mbits + 1, family)  # m is unsigned: one more bit
    prod_bits = prog.post_bits + prog.mbits
    luts += prod_bits * 3 + prod_bits * max(1, (prog.n_max - prog.n_min).bit_length())  # shifter, round, clamp
    ffs += prod_bits * 3
    if prog.addm_bits:
        dsps += 2
    luts += _CONTROL_LUTS
    ffs += _CONTROL_FFS
    bias_bits = max((~v if v < 0 else v).bit_length() for v in (int(prog.bias.min()), int(prog.bias.max()))) + 1
    mems = [  # (depth, width, rom) as the RTL builds them
        (prog.act_words, simd * prog.abits, False),
        (int(prog.weights.shape[0]), nmul * (prog.ibits or prog.wbits), True),
        (int(prog.bias.shape[0]), bias_bits + max(prog.mbits, 1) + prog.n_bits, True),
        (int(prog.lut.shape[0]), prog.abits, True),
    ]
    blocks = sum(bram_blocks(d, w, family, rom) for d, w, rom in mems)
    small = sum(d * w for d, w, rom in mems if memory_style(d, w, rom) == "logic")
    luts += small // 16
    return {
        "luts": int(luts),
        "ffs": int(ffs),
        "dsps": int(dsps),
        "bram_blocks": int(blocks),
        "rom_bits": int(prog.weight_rom_bits + prog.chan_rom_bits + prog.lut_rom_bits),
        "ram_bits": int(prog.act_bits),
    }
