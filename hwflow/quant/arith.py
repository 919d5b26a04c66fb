"""Integer arithmetic of the contract, shared by the quantizer, the reference and the tests.

Every function here works on numpy ``int64`` arrays (or Python ints) and is exact:
no floating point is involved once values are integers.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "int_range",
    "rshift_round",
    "rshift_round_even",
    "requantize",
    "bits_for_range",
]


def int_range(bits: int) -> tuple[int, int]:
    """The signed two's-complement range ``(lo, hi)`` of ``bits`` bits."""
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 64:
        raise ValueError(f"bits must be an int in 1..64, not {bits!r}")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def rshift_round(v, n):
    """Round-half-up arithmetic right shift: ``(v + 2**(n-1)) >> n`` for ``n >= 1``.

    ``n == 0`` returns ``v``; ``n < 0`` is a left shift by ``-n``. Works elementwise on
    int64 arrays (``n`` may be an array broadcast against ``v``).
    """
    v = np.asarray(v, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    pos = np.maximum(n, 0)
    # 2**(n-1) for n >= 1, and 0 for n <= 0.
    half = np.where(pos > 0, np.left_shift(np.int64(1), np.maximum(pos - 1, 0)), 0)
    if np.all(n > 0):  # the usual case: only the rounding right shift (no second full-size pass)
        return np.right_shift(v + half, pos)
    right = np.right_shift(v + half, pos)
    left = np.left_shift(v, np.maximum(-n, 0))
    return np.where(n > 0, right, left)


def rshift_round_even(v, n):
    """Arithmetic right shift rounding a tie to the even result (``numpy.round`` of
    ``v / 2**n``), for ``n >= 1``; ``n <= 0`` as :func:`rshift_round`.

    ``rshift_round(v, n)`` minus one where ``v`` is exactly halfway and the floor is even.
    """
    v = np.asarray(v, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    pos = np.maximum(n, 0)
    half = np.where(pos > 0, np.left_shift(np.int64(1), np.maximum(pos - 1, 0)), 0)
    low = v - np.left_shift(np.right_shift(v, pos), pos)  # v mod 2**n
    floor_even = (np.right_shift(v, pos) & 1) == 0
    tie = (pos > 0) & (low == half) & floor_even
    return rshift_round(v, n) - tie.astype(np.int64)


def requantize(acc, m, n, z_out: int, lo: int, hi: int, rounding: str = "half_up"):
    """The contract's requantizer: ``clamp(rshift_round(acc * m, n) + z_out, lo, hi)``
    (``rshift_round_even`` with ``rounding="half_even"``)."""
    acc = np.asarray(acc, dtype=np.int64)
    shift = rshift_round_even if rounding == "half_even" else rshift_round
    scaled = shift(acc * np.asarray(m, dtype=np.int64), n)
    return np.clip(scaled + np.int64(z_out), lo, hi)


def bits_for_range(lo: int, hi: int) -> int:
    """The fewest signed bits holding every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo!r}, {hi!r}]")
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits
