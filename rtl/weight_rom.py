"""Weight ROM: one initialised ``Memory`` holding every MAC layer's weights.

Word ``i`` holds ``pe x simd`` signed weights (``pe`` rows of ``simd``), in the order the
controller reads them (see :func:`hwflow.schedule.memory.weight_words`); layers follow each
other, the descriptor gives each layer's base. The weights are initialisation data, not
logic, so the Verilog does not grow with them beyond one line per word. Synchronous
read: infers block RAM. Latency 1.
"""

from __future__ import annotations

import numpy as np
from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WeightRom", "pack_words"]


def pack_words(image: np.ndarray, bits: int) -> list[int]:
    """Pack ``(words, ...)`` signed integers into one unsigned int per word, element 0 lowest."""
    image = np.asarray(image, dtype=np.int64)
    flat = image.reshape(image.shape[0], -1)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"ROM values outside signed {bits} bits: [{flat.min()!r}, {flat.max()!r}]")
    u = (flat & ((1 << bits) - 1)).astype(object)
    words = []
    shifts = [1 << (bits * i) for i in range(flat.shape[1])]
    for row in u:
        words.append(int(sum(int(v) * s for v, s in zip(row, shifts))))
    return words


class WeightRom(wiring.Component):
    """``(words, pe, simd)`` weight image as a synchronous ROM.

    ``data`` is a packed vector: weight ``(p, s)`` is lane ``p*simd + s`` of ``bits``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(words, pe, simd)`` signed weights.
    bits : int
        Signed weight width.
    """

    def __init__(self, image, bits: int):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[0] < 1:
            raise ValueError(f"image must be (words, pe, simd), not shape {image.shape!r}")
        self._words = pack_words(image, bits)
        self._pe, self._simd, self._bits = int(image.shape[1]), int(image.shape[2]), bits
        aw = max(1, (len(self._words) - 1).bit_length())
        super().__init__({
            "addr": In(aw),
            "data": Out(self._pe * self._simd * bits),
        })

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self._pe * self._simd * self._bits),
                                               depth=len(self._words), init=self._words)
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
        return m
