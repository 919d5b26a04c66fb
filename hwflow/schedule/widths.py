"""Widths of the accelerator's registers and ports, as plain integers (no Amaranth).

The RTL blocks (``rtl/*.py``) size their signals with these functions and the resource
estimate (:mod:`hwflow.schedule.estimate`) counts its register and adder bits with the
same ones, so a width changed in one place changes both. Signed widths are
:func:`hwflow.quant.arith.bits_for_range`.
"""

from __future__ import annotations

import math

import numpy as np

from ..quant.arith import bits_for_range

__all__ = ["CYCLE_BITS", "STEP_FLAGS", "ubits", "addr_bits", "lane_bits", "coord_bits", "tree_levels",
           "shift_bits", "shifter_widths", "count_bits", "bias_bits"]

#: Width of the cycle counter (the ``cycles`` port).
CYCLE_BITS = 32

#: Flags that travel with each read through the controller's address stages (valid, first,
#: last, in range, second operand, first and last window position).
STEP_FLAGS = 7


def ubits(v: int) -> int:
    """Unsigned width holding ``0 .. v`` (at least 1): the width of ``Signal(range(v + 1))``."""
    return max(1, int(v).bit_length())


def addr_bits(depth: int) -> int:
    """Address width of a ``depth``-word memory (at least 1)."""
    return ubits(int(depth) - 1)


def lane_bits(simd: int) -> int:
    """Width of a lane index within a ``simd``-lane word."""
    return ubits(simd - 1)


def coord_bits(layers) -> int:
    """Signed width of the controller's pixel coordinates (``iy0``, ``ix0``; the window's
    have one bit more): every coordinate a step's loops reach, with two bits of margin."""
    lim = max(max(l.ih, l.iw, l.oh * l.sh, l.ow * l.sw) + max(l.kh, l.kw) + max(l.pt, l.pl) for l in layers)
    return ubits(abs(int(lim))) + 2


def tree_levels(simd: int) -> int:
    """Registered levels of the MAC array's adder tree over ``simd`` products."""
    return math.ceil(math.log2(simd)) if simd > 1 else 0


def shift_bits(n_min: int, n_max: int) -> int:
    """Signed width of the requantizer's shift ``n`` (its range widened to ``[0, 1]``)."""
    n_min, n_max = min(n_min, 0), max(n_max, 1)
    return max(ubits(-n_min) + 1, ubits(n_max) + 1)


def shifter_widths(in_bits: int, mbits: int, n_min: int) -> tuple[int, int, int]:
    """``(product, left, shifted)`` widths of the requantizer's shift stage.

    ``product``: the shifter's input (``v * m`` with a multiplier, ``mbits > 1``, else ``v``);
    ``left``: the left shift amount (``1 - n`` for ``n <= 0``); ``shifted``: the shifter's
    output, wide enough for the longest left shift.
    """
    pw = in_bits + mbits + 1 if mbits > 1 else in_bits
    lw = ubits(1 - min(n_min, 0))
    return pw, lw, pw + (1 << lw) - 1


def count_bits(max_cout: int, lanes: int) -> int:
    """Width of the serializer's output-channel counters (a tile may run ``lanes`` past ``cout``)."""
    return ubits(max_cout + lanes)


def bias_bits(bias) -> int:
    """Signed width of the channel ROM's bias column."""
    bias = np.asarray(bias)
    return bits_for_range(int(bias.min()), int(bias.max()))
