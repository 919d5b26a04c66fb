"""Sparse weight decoder: relative-index entries in ROM expanded to dense weight words.

Deep Compression's sparse format: the flat weight stream (C-order, padded to whole words
of ``lanes`` weights) is stored as entries ``(gap, value)``: ``gap`` zeros (``rbits`` bits,
at most ``2**rbits - 1``), then ``value`` (signed ``vbits``; a codebook index when the
layer is shared). A longer run of zeros is split by filler entries whose value is 0, and
the stream ends with an entry on the last position (see :func:`encode`), so the ROM holds
``entries * (rbits + vbits)`` bits instead of ``words * lanes * vbits``.

The decoder reads one entry per cycle from its ROM and assembles dense words. Each cycle it
either places the current entry's value (when it falls in the current word) and moves to
the next entry, or skips the rest of the word as zeros; a finished word is offered on
``out_valid``/``out_data`` and held until ``out_ready``. With a partner that never stalls,
decoding ``words`` words from ``restart`` takes exactly :func:`decode_cycles` cycles, a
closed form a schedule can use (a word costs one cycle per entry in it, plus one unless
an entry sits on its last lane; plus :attr:`SparseDecoder.latency` at the start).
"""

from __future__ import annotations

import numpy as np
from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SparseDecoder", "encode", "decode", "decode_cycles"]


def encode(weights: np.ndarray, lanes: int, rbits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(gaps, values)`` of the flat weights padded with zeros to whole words of ``lanes``.

    The last entry always sits on the last position (a filler 0 if that weight is zero).
    """
    flat = np.asarray(weights, dtype=np.int64).ravel()
    n = -(-flat.size // lanes) * lanes
    flat = np.concatenate([flat, np.zeros(n - flat.size, np.int64)])
    cap = (1 << rbits) - 1
    gaps, values = [], []
    prev = -1
    marks = list(np.flatnonzero(flat))
    if not marks or marks[-1] != n - 1:
        marks.append(n - 1)
    for pos in marks:
        gap = int(pos - prev - 1)
        while gap > cap:
            gaps.append(cap)
            values.append(0)
            gap -= cap + 1
        gaps.append(gap)
        values.append(int(flat[pos]))
        prev = pos
    return np.asarray(gaps, np.int64), np.asarray(values, np.int64)


def decode(gaps: np.ndarray, values: np.ndarray, lanes: int) -> np.ndarray:
    """The numpy model: dense ``(words, lanes)`` from the entries."""
    pos = np.cumsum(np.asarray(gaps) + 1) - 1
    n = int(pos[-1]) + 1 if len(pos) else 0
    flat = np.zeros(n, np.int64)
    flat[pos] = values
    return flat.reshape(-1, lanes)


def decode_cycles(gaps: np.ndarray, lanes: int) -> int:
    """Cycles from ``restart`` to the last word's ``out_valid`` with a never-stalling partner."""
    pos = np.cumsum(np.asarray(gaps) + 1) - 1
    words = int(pos[-1]) // lanes + 1
    entries = np.bincount(pos // lanes, minlength=words)
    on_last = np.zeros(words, np.int64)
    on_last[pos[pos % lanes == lanes - 1] // lanes] = 1
    # a word costs one cycle per entry in it, plus one to skip its tail unless an entry ends it
    return SparseDecoder.latency + int((entries + 1 - on_last).sum())


class SparseDecoder(wiring.Component):
    """Expand ``(gap, value)`` entries into dense words of ``lanes`` signed ``vbits`` values.

    Parameters
    ----------
    gaps, values : array-like of int
        The ROM image (e.g. from :func:`encode`; several layers may follow each other,
        each started by ``restart`` at its first entry).
    lanes : int
        Values per dense word.
    rbits, vbits : int
        Gap and value widths.

    Ports: ``restart`` In(1) with ``base`` In (first entry to decode), ``out_valid``
    Out(1), ``out_ready`` In(1), ``out_data`` Out(lanes*vbits).
    """

    #: cycles from ``restart`` to the first entry being available
    latency = 1

    def __init__(self, gaps, values, lanes: int, rbits: int, vbits: int):
        for name, v, lo in (("lanes", lanes, 1), ("rbits", rbits, 1), ("vbits", vbits, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")
        gaps = np.asarray(gaps, np.int64).ravel()
        values = np.asarray(values, np.int64).ravel()
        if gaps.shape != values.shape or gaps.size == 0:
            raise ValueError(f"need as many gaps as values (at least one), got {gaps.size!r} and {values.size!r}")
        if gaps.min() < 0 or gaps.max() >= (1 << rbits):
            raise ValueError(f"gaps must fit {rbits} unsigned bits, got [{gaps.min()!r}, {gaps.max()!r}]")
        lo, hi = -(1 << (vbits - 1)), (1 << (vbits - 1)) - 1
        if values.min() < lo or values.max() > hi:
            raise ValueError(f"values must fit signed {vbits} bits, got [{values.min()!r}, {values.max()!r}]")
        self._init = [int(g) | ((int(v) & ((1 << vbits) - 1)) << rbits) for g, v in zip(gaps, values)]
        self._lanes, self._rbits, self._vbits = lanes, rbits, vbits
        super().__init__({
            "restart": In(1),
            "base": In(range(len(self._init))),
            "out_valid": Out(1),
            "out_ready": In(1),
            "out_data": Out(lanes * vbits),
        })

    @property
    def rom_bits(self) -> int:
        """Bits of the entry ROM."""
        return len(self._init) * (self._rbits + self._vbits)

    def elaborate(self, platform):
        m = Module()
        L, rb, vb = self._lanes, self._rbits, self._vbits
        m.submodules.rom = rom = memory.Memory(shape=unsigned(rb + vb), depth=len(self._init), init=self._init)
        rd = rom.read_port()
        ptr = Signal.like(self.base)
        running = Signal()
        skipped = Signal(rb)            # zeros of the current entry's gap already emitted
        pos = Signal(range(L))          # next lane of the word being built
        word = Signal(L * vb)
        gap = rd.data[:rb] - skipped
        value = rd.data[rb:]
        room = L - pos                  # lanes left in the word
        nxt = Signal.like(ptr)
        m.d.comb += [nxt.eq(ptr), rd.addr.eq(nxt)]
        stall = self.out_valid & ~self.out_ready
        with m.If(self.out_valid & self.out_ready):
            m.d.sync += self.out_valid.eq(0)
        with m.If(self.restart):
            m.d.comb += nxt.eq(self.base)
            m.d.sync += [ptr.eq(self.base), running.eq(1), skipped.eq(0), pos.eq(0), word.eq(0),
                         self.out_valid.eq(0)]
        with m.Elif(running & ~stall):
            with m.If(gap < room):
                # the entry lands in this word: place it, take the next entry
                lanes = Array(word[i * vb:(i + 1) * vb] for i in range(L))
                m.d.sync += lanes[pos + gap].eq(value)
                m.d.sync += skipped.eq(0)
                m.d.comb += nxt.eq(ptr + 1)
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(gap == room - 1):  # last lane: the word is done
                    m.d.sync += [self.out_valid.eq(1), self.out_data.eq(word), pos.eq(0)]
                    # the value goes into the emitted word, not the next one
                    for i in range(L):
                        with m.If(pos + gap == i):
                            m.d.sync += self.out_data[i * vb:(i + 1) * vb].eq(value)
                    m.d.sync += word.eq(0)
                    with m.If(ptr + 1 == len(self._init)):
                        m.d.sync += running.eq(0)
                with m.Else():
                    m.d.sync += pos.eq(pos + gap + 1)
            with m.Else():
                # the rest of the word is zeros of this gap
                m.d.sync += [skipped.eq(skipped + room), pos.eq(0), self.out_valid.eq(1),
                             self.out_data.eq(word), word.eq(0)]
        return m
