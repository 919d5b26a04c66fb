"""Weight formats: which integer weight values a layer may hold, and their stored codes.

A Conv/Gemm's ``QLayer.weight`` always holds the integer values the MAC multiplies by
(real weight = ``value * scale[c]``), whatever the format; the format says which values
are allowed and how each is stored in ``wbits`` bits. So every format runs on the
ordinary MAC array as it is (a value is an integer weight of :meth:`WeightFormat.value_bits`
bits), and a datapath specialised for the format decodes the stored code: when every
MAC layer is pot (one code width) the array's lanes shift, when every one is binary or
ternary they add or subtract (``Program.lane``, :mod:`hwflow.rtl.mac_array`).

==========  =======  =====================================  ==========================================
format      wbits    values (``J = 2**(wbits-1) - 1``)      code (unsigned, ``wbits`` bits)
==========  =======  =====================================  ==========================================
``int``     2..16    ``-2**(wbits-1) .. 2**(wbits-1) - 1``  two's complement of the value
``pot``     3..5     ``0`` and ``±2**k``, ``k = 0..J-1``     sign bit (MSB, 1 = negative) and exponent
                                                            field ``e`` (the low ``wbits-1`` bits):
                                                            ``e = 0`` is zero, else ``±2**(e-1)``
``binary``  1        ``-1, +1``                             ``1`` is ``+1``, ``0`` is ``-1``
``ternary`` 2        ``-1, 0, +1``                          two's complement (code ``0b10`` unused)
==========  =======  =====================================  ==========================================

pot4 thus has seven magnitudes ``1, 2, ..., 64`` (a 7-octave window placed per channel
or per layer by the scale) and values of 8 signed bits; pot5 reaches ``2**14`` (16 bits,
the widest weight the MAC array takes). A pot code whose exponent field is 0 is zero
whatever its sign bit; the encoder writes sign 0.

Rounding a real ``v = w / scale`` to a value: ``int`` rounds half away from zero and
clamps; ``pot`` rounds in the log domain (``|v|`` to the nearest exponent of
``log2|v|``, i.e. between ``2**k`` and ``2**(k+1)`` at ``2**(k+0.5)``), clamps to the
window, and gives zero below ``1/2`` (the midpoint between 0 and the smallest
magnitude); ``binary`` takes the sign (``v = 0`` gives ``+1``); ``ternary`` rounds to the
nearest of ``-1, 0, +1`` (zero for ``|v| < 1/2``).
"""

from __future__ import annotations

import numpy as np

from .arith import int_range

__all__ = ["WEIGHT_FORMATS", "DEFAULT_WBITS", "WeightFormat", "weight_format", "wbits_problem", "choose_scale",
           "scale_candidates"]

#: Weight formats by name; ``int`` is the ordinary two's-complement weight.
WEIGHT_FORMATS = ("int", "pot", "binary", "ternary")

#: The code width of each format when none is given.
DEFAULT_WBITS = {"int": 8, "pot": 4, "binary": 1, "ternary": 2}

_WBITS = {"int": (2, 16), "pot": (3, 5), "binary": (1, 1), "ternary": (2, 2)}


def wbits_problem(fmt: str, wbits) -> str | None:
    """Why ``wbits`` is no code width of ``fmt`` (a phrase for an error message), or None."""
    if fmt not in WEIGHT_FORMATS:
        return f"unknown weight format {fmt!r}; use one of {', '.join(WEIGHT_FORMATS)}"
    lo, hi = _WBITS[fmt]
    if isinstance(wbits, bool) or not isinstance(wbits, (int, np.integer)) or not lo <= wbits <= hi:
        want = f"{lo}" if lo == hi else f"{lo}..{hi}"
        why = {"pot": " (a sign, an exponent field and a zero code; pot6 would need 32-bit weight values)"}.get(fmt, "")
        return f"{fmt} weights take wbits {want}{why}, not {wbits!r}"
    return None


class WeightFormat:
    """One weight format at one code width (see the module docstring for the table).

    Parameters
    ----------
    name : str
        One of :data:`WEIGHT_FORMATS`.
    wbits : int
        The code width; :func:`wbits_problem` says which are allowed.
    """

    def __init__(self, name: str, wbits: int):
        why = wbits_problem(name, wbits)
        if why:
            raise ValueError(why)
        self.name, self.wbits = name, int(wbits)

    def __repr__(self) -> str:
        return f"WeightFormat({self.name!r}, {self.wbits})"

    @property
    def levels(self) -> np.ndarray:
        """Every allowed integer value, ascending (int64)."""
        if self.name == "int":
            lo, hi = int_range(self.wbits)
            return np.arange(lo, hi + 1, dtype=np.int64)
        if self.name == "pot":
            mags = np.left_shift(np.int64(1), np.arange(self.exponents, dtype=np.int64))
            return np.concatenate([-mags[::-1], [0], mags]).astype(np.int64)
        return np.array([-1, 1] if self.name == "binary" else [-1, 0, 1], dtype=np.int64)

    @property
    def exponents(self) -> int:
        """pot: the number of magnitudes ``J = 2**(wbits-1) - 1`` (0 for other formats)."""
        return (1 << (self.wbits - 1)) - 1 if self.name == "pot" else 0

    @property
    def top(self) -> int:
        """The largest value."""
        return int(self.levels[-1])

    @property
    def value_bits(self) -> int:
        """Signed width of the values: the weight operand of an ordinary MAC lane."""
        if self.name == "int":
            return self.wbits
        return self.exponents + 1 if self.name == "pot" else 2

    def contains(self, values: np.ndarray) -> bool:
        """Whether every element of ``values`` is an allowed value."""
        return bool(np.isin(np.asarray(values), self.levels).all())

    def round(self, v: np.ndarray) -> np.ndarray:
        """The value each real ``v`` (a weight over its scale) rounds to, as float64 integers."""
        v = np.asarray(v, dtype=np.float64)
        a = np.abs(v)
        if self.name == "int":
            lo, hi = int_range(self.wbits)
            return np.clip(np.sign(v) * np.floor(a + 0.5), lo, hi)
        if self.name == "binary":
            return np.where(v >= 0, 1.0, -1.0)
        if self.name == "ternary":
            return np.where(a >= 0.5, np.sign(v), 0.0)
        with np.errstate(divide="ignore"):
            k = np.clip(np.floor(np.log2(np.where(a > 0, a, 1.0)) + 0.5), 0, self.exponents - 1)
        return np.where(a >= 0.5, np.sign(v) * np.exp2(k), 0.0)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """The stored codes of ``values`` (unsigned ``wbits``-bit integers, int64).

        Raises
        ------
        ValueError
            If a value is not allowed in the format.
        """
        v = np.asarray(values, dtype=np.int64)
        if not self.contains(v):
            bad = v[~np.isin(v, self.levels)].ravel()[0]
            raise ValueError(f"{int(bad)} is not a {self.name}{self.wbits} weight value")
        if self.name == "binary":
            return (v > 0).astype(np.int64)
        if self.name == "pot":
            e = np.where(v != 0, np.log2(np.maximum(np.abs(v), 1)).astype(np.int64) + 1, 0)
            return np.where(v < 0, 1 << (self.wbits - 1), 0) | e
        return v & ((1 << self.wbits) - 1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The values of stored ``codes`` (the inverse of :meth:`encode`; int64).

        Raises
        ------
        ValueError
            If a code is outside ``wbits`` bits, or the ternary code ``0b10``.
        """
        c = np.asarray(codes, dtype=np.int64)
        if c.size and (c.min() < 0 or c.max() >= 1 << self.wbits):
            raise ValueError(f"codes must be unsigned {self.wbits}-bit integers")
        if self.name == "binary":
            return 2 * c - 1
        if self.name == "pot":
            e = c & ((1 << (self.wbits - 1)) - 1)
            mag = np.where(e > 0, np.left_shift(np.int64(1), np.maximum(e - 1, 0)), 0)
            return np.where(c >> (self.wbits - 1), -mag, mag)
        v = np.where(c >= 1 << (self.wbits - 1), c - (1 << self.wbits), c)
        if self.name == "ternary" and (v == -2).any():
            raise ValueError("ternary code 0b10 is unused")
        return v


def weight_format(name: str, wbits: int) -> WeightFormat:
    """The :class:`WeightFormat` ``name`` at ``wbits`` bits."""
    return WeightFormat(name, wbits)


def _ratios(fmt: WeightFormat) -> np.ndarray:
    """Scales tried, as fractions of ``max|w| / top``: a geometric grid of 1/64 octave,
    nearest to 1 first (so ties keep the window whose top level is nearest ``max|w|``).

    pot tries from one octave above max|w| (the top level unused, which moves every
    boundary between levels) to 1.5 octaves below (the largest weights clipped); binary
    and ternary put the scale near the mean magnitude, well below the maximum.
    """
    t = np.arange(-1.0, 1.5 + 1e-9, 1 / 64) if fmt.name == "pot" else np.arange(-0.5, 6.0 + 1e-9, 1 / 64)
    return np.exp2(-t[np.argsort(np.abs(t), kind="stable")])


def _mse(rows: np.ndarray, s: np.ndarray, fmt: WeightFormat) -> np.ndarray:
    """``(R, C)`` MSE of rows ``(C, K)`` at scales ``s`` ``(R, C)``."""
    q = fmt.round(rows[None] / s[:, :, None])
    return ((q * s[:, :, None] - rows[None]) ** 2).mean(axis=2)


def choose_scale(fmt: WeightFormat, w: np.ndarray, per_channel: bool, pow2: bool) -> np.ndarray:
    """The weight scale of a non-``int`` format with the least MSE, ``(Cout,)`` or ``(1,)``.

    For pot this places the exponent window: the top level ``top * scale`` is searched
    on a 1/64-octave grid from one octave above ``max|w|`` to 1.5 octaves below; with
    ``pow2`` the scale is a power of two (the window's lowest exponent), searched over
    every exponent in that reach. Binary and ternary search from half an octave above
    ``max|w|/top`` to 6 octaves below (their best scale is near the mean magnitude).
    """
    rows = np.asarray(w, dtype=np.float64).reshape(w.shape[0], -1)
    if not per_channel:
        rows = rows.reshape(1, -1)
    amax = np.abs(rows).max(axis=1)
    amax = np.where(amax > 0, amax, 1.0)
    base = amax / fmt.top
    if pow2:  # every power of two the grid's range reaches, nearest to max|w|/top first
        ratios = _ratios(fmt)
        e = np.arange(np.floor(np.log2(ratios.min())) - 1, np.ceil(np.log2(ratios.max())) + 2)
        e = e[np.argsort(np.abs(e), kind="stable")]
        cands = np.exp2(np.round(np.log2(base))[None, :] + e[:, None])  # (R, C)
    else:
        cands = _ratios(fmt)[:, None] * base[None, :]
    errs = []
    chunk = max(1, 4_000_000 // max(rows.size, 1))
    for i in range(0, len(cands), chunk):
        errs.append(_mse(rows, cands[i:i + chunk], fmt))
    best = np.argmin(np.concatenate(errs), axis=0)  # first minimum: ties keep the nearest to max|w|/top
    return cands[best, np.arange(rows.shape[0])]


def scale_candidates(fmt: WeightFormat, scale: np.ndarray, pow2: bool) -> list[np.ndarray]:
    """Scales near ``scale`` (``(Cout,)``) that GPTQ tries too (it picks by output error):
    one octave each way in pow2, else ±1/8 and ±1/4 octave."""
    steps = (-1.0, 1.0) if pow2 else (-0.25, -0.125, 0.125, 0.25)
    return [scale * np.exp2(t) for t in steps]
