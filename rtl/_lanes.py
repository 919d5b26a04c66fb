"""Packed vectors: datapath ports are flat bit vectors of equal-width signed lanes.

Flat ports (instead of ``data.ArrayLayout`` views) keep the generated Verilog short: a
view emits one debug wire per element in every module it crosses, which would make the
Verilog grow with PE x SIMD. Lane ``i`` of width ``bits`` occupies bits ``[i*bits, (i+1)*bits)``,
as in a stream beat: :func:`hwflow.sim.beats.pack` / :func:`~hwflow.sim.beats.unpack` convert
Python ints (one word is one beat of the map ``[range(n)]``).
"""

from __future__ import annotations

from amaranth import Cat, Value

__all__ = ["lane", "replicate"]


def lane(v: Value, i: int, bits: int) -> Value:
    """Signed lane ``i`` of ``bits`` bits of the flat vector ``v``."""
    return v[i * bits:(i + 1) * bits].as_signed()


def replicate(v: Value, n: int, bits: int) -> Value:
    """``n`` copies of the low ``bits`` bits of ``v``, concatenated."""
    return Cat(*([v[:bits]] * n))
