"""Pack code vectors into stream beats and back; draw a stream partner's random stalls.

An accelerator's streams carry words: beat ``b``, lane ``l`` holds the code whose flat
(NCHW) index is ``index_map[b, l]``, or nothing when that is -1; lane ``l`` occupies bits
``l*bits .. l*bits + bits - 1`` of the beat, two's complement. ``index_map`` comes from
:meth:`hwflow.schedule.Program.stream_maps`; a single-code stream is the map
``arange(n)[:, None]``.

A weight image for the weight-load port (``BUILD/weights_load.hex``) is text, one word a
line in hexadecimal, word 0 first, as Verilog's ``$readmemh`` reads it
(:func:`words_hex`, :func:`read_words`).

Needs only numpy: it is copied next to the standalone testbench into ``BUILD/sim/``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack", "unpack", "identity_map", "stream_gaps", "words_hex", "read_words"]


def identity_map(n: int) -> np.ndarray:
    """The map of a stream that carries one code per beat, in order."""
    return np.arange(int(n), dtype=np.int64)[:, None]


def pack(codes, index_map, bits: int) -> list[int]:
    """Beats (non-negative ints) carrying one vector's ``codes``."""
    codes = np.asarray(codes).reshape(-1)
    mask = (1 << bits) - 1
    beats = []
    for row in np.asarray(index_map):
        v = 0
        for lane, i in enumerate(row):
            if i >= 0:
                v |= (int(codes[i]) & mask) << (lane * bits)
        beats.append(v)
    return beats


def unpack(beats, index_map, bits: int) -> list[int]:
    """The codes (flat, NCHW) that ``beats`` carry; lanes mapped to -1 are ignored.

    Raises
    ------
    ValueError
        If the number of beats is not the map's.
    """
    index_map = np.asarray(index_map)
    if len(beats) != index_map.shape[0]:
        raise ValueError(f"{len(beats)} output beats, expected {index_map.shape[0]}")
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    out = [0] * (int(index_map.max()) + 1)
    for beat, row in zip(beats, index_map):
        for lane, i in enumerate(row):
            if i >= 0:
                c = (int(beat) >> (lane * bits)) & mask
                out[i] = c - (1 << bits) if c & half else c
    return out


def stream_gaps(rng: np.random.Generator, probability: float, in_beats: int,
                out_beats: int) -> tuple[np.ndarray, np.ndarray]:
    """Random stalls of one inference's stream partners: ``(in_gaps, out_gaps)``.

    The source drops ``in_valid`` and the sink ``out_ready`` with ``probability`` each
    cycle. Drawn per beat, that is: before offering input beat ``i`` the source waits
    ``in_gaps[i]`` cycles (``in_valid`` low), then holds ``in_valid`` high until the beat
    is taken (valid/ready rules); while output beat ``j`` is offered the sink keeps
    ``out_ready`` low for ``out_gaps[j]`` cycles, then takes it. Both are geometric counts
    (failures before the first success at ``1 - probability``), so every simulator that
    draws from the same generator in this order replays the same stalls.
    """
    if not 0 <= probability < 1:
        raise ValueError(f"stall probability must be in [0, 1), not {probability!r}")
    if probability == 0:
        return np.zeros(in_beats, dtype=np.int64), np.zeros(out_beats, dtype=np.int64)
    return (rng.geometric(1 - probability, in_beats) - 1, rng.geometric(1 - probability, out_beats) - 1)


def words_hex(words, bits: int) -> str:
    """``words`` (non-negative ints of ``bits`` bits) as hex text, one a line, zero-padded."""
    digits = (bits + 3) // 4
    return "".join(f"{int(w):0{digits}x}\n" for w in words)


def read_words(path) -> list[int]:
    """The words of a hex file written by :func:`words_hex`."""
    with open(path, encoding="ascii") as f:
        return [int(line, 16) for line in f if line.strip()]
