"""Codebook lookup: a ROM word of ``lanes`` b-bit indices becomes ``lanes`` weights.

With weight sharing (:mod:`hwflow.prune.sharing`) every MAC layer has a codebook of at
most ``2**ibits`` integer weights, and the weight ROM holds indices instead of weights,
so it is ``ibits/wbits`` as wide. This block sits between the ROM and the MAC array:
each lane's index selects an entry of the codebook of the layer the word belongs to.
The layer is found from the ROM address (layers' words are contiguous; ``bases`` gives
each layer's first word), so the controller needs no new field.

Indices are the raw ``ibits``-bit patterns of the ROM lanes (unsigned). The output is
registered: :attr:`latency` is 1, and the address must be the one of the word on ``idx``
(the ROM address delayed by the ROM's latency).
"""

from __future__ import annotations

import numpy as np
from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..quant.arith import int_range

__all__ = ["CodebookLookup", "attach_codebook", "index_image", "lookup_model"]


def index_image(words: np.ndarray, codebook: np.ndarray, ibits: int) -> np.ndarray:
    """See :func:`hwflow.prune.sharing.codebook_indices` (the ROM image of indices)."""
    from hwflow.prune.sharing import codebook_indices

    return codebook_indices(words, codebook, ibits)


def lookup_model(indices: np.ndarray, addr: int, codebooks: list, bases: list[int], ibits: int) -> np.ndarray:
    """Python model of one lookup: the weights for raw ``indices`` read at ROM ``addr``."""
    table = max(i for i, b in enumerate(bases) if b <= addr)
    book = np.asarray(codebooks[table], dtype=np.int64)
    raw = np.asarray(indices, dtype=np.int64) & ((1 << ibits) - 1)
    return book[np.minimum(raw, book.size - 1)]


class CodebookLookup(wiring.Component):
    """Per-lane codebook lookup, one table per layer, selected by the ROM address.

    Parameters
    ----------
    codebooks : list of array-like of int
        One codebook per layer (each at most ``2**ibits`` signed ``wbits`` integers). An
        index beyond a short codebook reads its last entry (never produced by
        :func:`index_image`).
    bases : list of int
        First ROM word of each layer, strictly increasing, starting at 0.
    lanes : int
        Weights per ROM word (``pe * simd``).
    ibits, wbits : int
        Index width (1..8) and signed weight width.
    addr_bits : int
        Width of the ``addr`` port.

    Ports: ``idx`` In(lanes*ibits), ``addr`` In(addr_bits), ``w`` Out(lanes*wbits) (signed
    lanes, registered).
    """

    def __init__(self, codebooks, bases, lanes: int, ibits: int, wbits: int, addr_bits: int):
        for name, v, lo in (("lanes", lanes, 1), ("ibits", ibits, 1), ("wbits", wbits, 2), ("addr_bits", addr_bits, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, not {v!r}")
        if ibits > 8:
            raise ValueError(f"ibits must be at most 8, not {ibits!r}")
        books = [np.asarray(b, dtype=np.int64).reshape(-1) for b in codebooks]
        bases = [int(b) for b in bases]
        if not books or len(books) != len(bases):
            raise ValueError(f"need one base per codebook, got {len(books)!r} codebooks and bases {bases!r}")
        if bases[0] != 0 or any(b <= a for a, b in zip(bases, bases[1:])):
            raise ValueError(f"bases must start at 0 and increase strictly, not {bases!r}")
        lo, hi = int_range(wbits)
        for i, b in enumerate(books):
            if not 1 <= b.size <= (1 << ibits):
                raise ValueError(f"codebook {i} needs 1..{1 << ibits} entries, has {b.size!r}")
            if b.min() < lo or b.max() > hi:
                raise ValueError(f"codebook {i} {b.tolist()!r} exceeds signed {wbits} bits")
        self._books, self._bases = books, bases
        self._lanes, self._ibits, self._wbits = lanes, ibits, wbits
        super().__init__({
            "idx": In(lanes * ibits),
            "addr": In(addr_bits),
            "w": Out(lanes * wbits),
        })

    @property
    def latency(self) -> int:
        """Cycles from ``idx``/``addr`` to ``w``."""
        return 1

    def elaborate(self, platform):
        m = Module()
        n = 1 << self._ibits
        # Table select: the last layer whose first word is at or below the address.
        table = Signal(range(len(self._books)))
        for i, b in enumerate(self._bases[1:], start=1):
            with m.If(self.addr >= b):
                m.d.comb += table.eq(i)
        # One flat table: entry table * 2**ibits + index (short codebooks padded with their last entry).
        flat = []
        for b in self._books:
            flat += [int(v) for v in b] + [int(b[-1])] * (n - b.size)
        entries = Array(Const(v, signed(self._wbits)) for v in flat)
        out = []
        for i in range(self._lanes):
            idx = self.idx[i * self._ibits:(i + 1) * self._ibits]
            out.append(entries[Cat(idx, table)] if len(self._books) > 1 else entries[idx])
        m.d.sync += self.w.eq(Cat(*out))
        return m


def attach_codebook(m: Module, program, rom_data: Value, rom_addr: Value, aligned: list) -> tuple[Value, list]:
    """Put a :class:`CodebookLookup` between the weight ROM and the MAC array of ``program``.

    ``rom_addr`` is the address presented to the ROM (its data arrives one cycle later);
    ``aligned`` are the MAC array's other inputs (activations, valid/first/last), which
    are delayed by the lookup's latency so they meet their weights.

    Returns
    -------
    weights : Value
        The looked-up weights (``pe*simd`` lanes of ``program.wbits``).
    delayed : list of Signal
        ``aligned``, :attr:`CodebookLookup.latency` cycles later.
    """
    cb = CodebookLookup(program.codebooks, program.cb_bases, program.pe * program.simd, program.ibits,
                        program.wbits, len(rom_addr))
    m.submodules.codebook = cb
    addr = Signal.like(rom_addr, name="codebook_addr")
    m.d.sync += addr.eq(rom_addr)  # the address of the word now on rom_data
    m.d.comb += [cb.idx.eq(rom_data), cb.addr.eq(addr)]
    out = []
    for i, v in enumerate(aligned):
        d = Signal(len(v), name=f"codebook_delay_{i}")
        m.d.sync += d.eq(v)
        out.append(d)
    return cb.w, out
