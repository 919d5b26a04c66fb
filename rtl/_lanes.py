"""Packed vectors: datapath ports are flat bit vectors of equal-width signed lanes.

Flat ports (instead of ``data.ArrayLayout`` views) keep the generated Verilog short: a
view emits one debug wire per element in every module it crosses, which would make the
Verilog grow with PE x SIMD. Lane ``i`` of width ``bits`` occupies bits ``[i*bits, (i+1)*bits)``.
"""

from __future__ import annotations

from amaranth import Cat, Value

__all__ = ["lane", "replicate", "pack", "unpack"]


def lane(v: Value, i: int, bits: int) -> Value:
    """Signed lane ``i`` of ``bits`` bits of the flat vector ``v``."""
    return v[i * bits:(i + 1) * bits].as_signed()


def replicate(v: Value, n: int, bits: int) -> Value:
    """``n`` copies of the low ``bits`` bits of ``v``, concatenated."""
    return Cat(*([v[:bits]] * n))


def pack(values, bits: int) -> int:
    """Python ints (signed) to the flat vector value, lane 0 lowest."""
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (i * bits) for i, v in enumerate(values))


def unpack(word: int, n: int, bits: int) -> list[int]:
    """The flat vector value to ``n`` signed Python ints."""
    out = []
    for i in range(n):
        u = (int(word) >> (i * bits)) & ((1 << bits) - 1)
        out.append(u - (1 << bits) if u >> (bits - 1) else u)
    return out
