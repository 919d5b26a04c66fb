"""Resource estimate of a scheduled design (before synthesis).

Simple, documented formulas, calibrated against Yosys only roughly: they are for the
budget check and the manifest, and the synthesis report gives the real figures.

- Block RAM: each memory is tiled into blocks of the family's geometry (ECP5 DP16KD:
  18 Kbit, widths up to 36; iCE40 SB_RAM40_4K: 4 Kbit, widths up to 16). Memories under
  ``_LUTRAM_BITS`` are left to LUTs/FFs.
- DSP: one hard multiplier per MAC-array multiplier when both operands are wider than
  ``_DSP_MIN_BITS`` (narrow products are cheaper in LUTs), plus the requantizer's.
- LUT: multipliers in LUTs ~ ``a*b`` LUT4s, adders one LUT per bit, plus control.
"""

from __future__ import annotations

import math

__all__ = ["estimate", "bram_blocks"]

_LUTRAM_BITS = 1024
_DSP_MIN_BITS = 5
_CONTROL_LUTS = 900
_CONTROL_FFS = 500


def bram_blocks(depth: int, width: int, family: str) -> int:
    """Blocks of block RAM for a ``depth x width`` memory on ``family``."""
    if depth * width <= _LUTRAM_BITS:
        return 0
    if family == "ice40":
        geoms = [(256, 16), (512, 8), (1024, 4), (2048, 2)]
    else:  # ecp5 and generic: DP16KD
        geoms = [(512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)]
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in geoms)


def estimate(prog, target) -> dict:
    """``{"luts", "ffs", "dsps", "bram_blocks", "rom_bits", "ram_bits"}`` for ``prog`` on ``target``."""
    family = getattr(target, "family", "generic")
    pe, simd = prog.pe, prog.simd
    nmul = pe * simd
    mul_dsp = prog.wbits >= _DSP_MIN_BITS and prog.abits >= _DSP_MIN_BITS
    dsps = nmul if mul_dsp else 0
    luts = 0 if mul_dsp else nmul * prog.wbits * prog.abits
    prod = prog.wbits + prog.abits
    tree = pe * sum((simd >> (i + 1)) * (prod + i + 1) for i in range(max(1, math.ceil(math.log2(max(simd, 1))))))
    # adder tree; accumulators, max-merge hold registers and comparators, serializer
    luts += tree + pe * prog.acc_bits * 4
    ffs = nmul * prod + tree + pe * prog.acc_bits * 3
    if prog.mbits > 1:
        dsps += math.ceil(prog.post_bits / 18) * math.ceil(prog.mbits / 18)
    prod_bits = prog.post_bits + prog.mbits
    luts += prod_bits * 3 + prod_bits * max(1, (prog.n_max - prog.n_min).bit_length())  # shifter, round, clamp
    ffs += prod_bits * 3
    if prog.addm_bits:
        dsps += 2
    luts += _CONTROL_LUTS
    ffs += _CONTROL_FFS
    mems = [
        (prog.act_words, simd * prog.abits),
        (int(prog.weights.shape[0]), nmul * prog.wbits),
        (int(prog.bias.shape[0]), 32 + prog.mbits + prog.n_bits),
        (int(prog.lut.shape[0]), prog.abits),
    ]
    blocks = sum(bram_blocks(d, w, family) for d, w in mems)
    small = sum(d * w for d, w in mems if d * w <= _LUTRAM_BITS)
    luts += small // 16
    return {
        "luts": int(luts),
        "ffs": int(ffs),
        "dsps": int(dsps),
        "bram_blocks": int(blocks),
        "rom_bits": int(prog.weight_rom_bits + prog.chan_rom_bits + prog.lut_rom_bits),
        "ram_bits": int(prog.act_bits),
    }
