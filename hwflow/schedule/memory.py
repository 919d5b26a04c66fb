"""Activation-RAM allocation by liveness, and the ROM images (weights, per-channel, LUT)."""

from __future__ import annotations

import numpy as np

__all__ = ["allocate", "weight_words", "chunks"]


def chunks(c: int, simd: int) -> int:
    """Words per pixel for ``c`` channels: channels padded to a multiple of ``simd``."""
    return -(-c // simd)


def allocate(sizes: dict[str, int], live: dict[str, tuple[int, int]],
             shares: dict[str, tuple[str, int]] | None = None) -> tuple[dict[str, int], int]:
    """First-fit allocation of tensors whose lifetimes overlap into disjoint word ranges.

    Parameters
    ----------
    sizes : dict of str to int
        Words each tensor needs.
    live : dict of str to (int, int)
        Inclusive ``(first, last)`` step in which each tensor is live. A step's inputs and
        output are all live in that step, so they never share words, except as ``shares`` says.
    shares : dict of str to (str, int), optional
        ``{out: (donor, d)}``: ``out`` is written by the step that reads ``donor`` last and
        may overlap it, with ``base[donor] = base[out] + d`` (the caller has checked that
        every word of ``out`` is written after the step's last read of the donor word it
        replaces). Such chains are placed as one block over their joint lifetime.

    Returns
    -------
    bases : dict of str to int
    depth : int
        Words of RAM needed (the high-water mark).
    """
    off = {n: 0 for n in sizes}
    root = {n: n for n in sizes}
    for out in sorted(shares or {}, key=lambda n: live[n][0]):  # donors before heirs
        donor, d = shares[out]
        root[out], off[out] = root[donor], off[donor] - d
    blocks: dict[str, list[str]] = {}
    for n in sizes:
        blocks.setdefault(root[n], []).append(n)
    lo = {r: min(off[n] for n in ms) for r, ms in blocks.items()}
    size = {r: max(off[n] + sizes[n] for n in ms) - lo[r] for r, ms in blocks.items()}
    span = {r: (min(live[n][0] for n in ms), max(live[n][1] for n in ms)) for r, ms in blocks.items()}
    at: dict[str, int] = {}
    placed: list[tuple[int, int, int, int]] = []  # (base, end, first, last)
    # Largest first packs better; ties in definition order keep the result stable.
    for r in sorted(blocks, key=lambda t: (-size[t], span[t][0])):
        first, last = span[r]
        busy = sorted((b, e) for b, e, f, l in placed if not (l < first or last < f))
        base = 0
        for b, e in busy:
            if base + size[r] <= b:
                break
            base = max(base, e)
        at[r] = base
        placed.append((base, base + size[r], first, last))
    depth = max((e for _, e, _, _ in placed), default=0)
    return {n: at[root[n]] + off[n] - lo[root[n]] for n in sizes}, max(depth, 1)


def weight_words(wd: np.ndarray, pe: int, simd: int, nt: int, cis: int, tpg: int) -> np.ndarray:
    """Weight ROM words of one MAC step, in the order the controller reads them.

    Parameters
    ----------
    wd : numpy.ndarray
        Dense weight ``(cout, cin, kh, kw)`` (zeros outside a convolution group).
    pe, simd, nt, cis, tpg : int
        Array shape and the step's tiling (see :class:`~hwflow.schedule.program.LayerProgram`).

    Returns
    -------
    numpy.ndarray
        ``(nt * kh * kw * cis, pe, simd)``: word ``g * k + (ky * kw + kx) * cis + ci`` holds
        ``wd[g*pe + p, (cs + ci)*simd + s, ky, kx]`` with ``cs = (g // tpg) * cis``.
    """
    cout, cin, kh, kw = wd.shape
    ich = chunks(cin, simd)
    padded = np.zeros((nt * pe, ich * simd, kh, kw), dtype=np.int64)
    padded[:cout, :cin] = wd
    k = kh * kw * cis
    out = np.zeros((nt, k, pe, simd), dtype=np.int64)
    for g in range(nt):
        cs = (g // tpg) * cis
        blk = padded[g * pe:(g + 1) * pe, cs * simd:(cs + cis) * simd]  # pe, cis*simd, kh, kw
        blk = blk.reshape(pe, cis, simd, kh, kw).transpose(3, 4, 1, 0, 2)  # kh, kw, cis, pe, simd
        out[g] = blk.reshape(k, pe, simd)
    return out.reshape(nt * k, pe, simd)
