# amaranth: UnusedElaboratable=no
"""The XNOR-popcount unit (rtl/xnor_array.py) alone: exact against a numpy popcount model."""

import numpy as np
import pytest

from hwflow.rtl.xnor_array import XnorArray
from hwflow.sim.beats import pack


def _model(x_signs, w_signs, simd):
    """Per row, the dot product of ±1 codes: ``simd - 2 * popcount(x ^ w)`` summed over words."""
    return (simd - 2 * np.bitwise_xor(x_signs[:, None, :], w_signs).sum(axis=-1)).sum(axis=0)


@pytest.mark.parametrize("rows,simd,abits,entries,gap", [(4, 8, 2, 4, 1), (16, 4, 8, 4, 2), (3, 5, 3, 1, 1),
                                                         (1, 1, 2, 1, 1), (8, 2, 2, 2, 3)])
def test_xnor_unit_equals_popcount_model(run_sim, rows, simd, abits, entries, gap):
    """Two dot products back to back (the second tile's words follow the first's at once), each
    tile's results in ``rows / entries`` chunks ``gap`` cycles apart, from :attr:`latency` cycles
    after its last word."""
    rng = np.random.default_rng(rows * 100 + simd)
    words = max(6, rows // entries * gap)  # a tile is at least as long as its chunks take
    codes = rng.choice([-1, 1], size=(2, words, simd))       # two dot products back to back
    wsign = rng.integers(0, 2, size=(2, words, rows, simd))  # 1: weight -1
    acc_bits = 8
    dut = XnorArray(rows, simd, abits, acc_bits, entries, gap)
    expected = [int(v) for t in range(2) for v in (codes[t][:, None, :] * (1 - 2 * wsign[t])).sum(axis=(0, 2))]
    model = [int(v) for t in range(2) for v in _model((codes[t] < 0).astype(int), wsign[t], simd)]
    assert model == expected
    got, when = [], []

    async def bench(ctx):
        cycle = 0
        for t in range(2):
            for j in range(words):
                ctx.set(dut.a, pack(codes[t][j][None, :], np.arange(simd)[None, :], abits)[0])
                ctx.set(dut.w, int(sum(int(b) << i for i, b in enumerate(wsign[t][j].reshape(-1)))))
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, j == 0)
                ctx.set(dut.last, j == words - 1)
                if ctx.get(dut.out_valid):
                    got.append(ctx.get(dut.out))
                    when.append(cycle)
                await ctx.tick()
                cycle += 1
        ctx.set(dut.valid, 0)
        for _ in range(dut.latency + rows // entries * gap + 2):
            if ctx.get(dut.out_valid):
                got.append(ctx.get(dut.out))
                when.append(cycle)
            await ctx.tick()
            cycle += 1

    run_sim(dut, bench)
    chunks = rows // entries
    assert when == [t * words + words - 1 + dut.latency + c * gap for t in range(2) for c in range(chunks)]
    flat = [((v >> (r * acc_bits)) & ((1 << acc_bits) - 1)) for v in got for r in range(entries)]
    flat = [x - (1 << acc_bits) if x >= 1 << (acc_bits - 1) else x for x in flat]
    assert flat == expected


def test_xnor_unit_checks_its_arguments():
    with pytest.raises(ValueError, match="rows must be a positive integer, not 0"):
        XnorArray(0, 8, 2, 8)
    with pytest.raises(ValueError, match="acc_bits 3 cannot hold"):
        XnorArray(2, 8, 2, 3)
    with pytest.raises(ValueError, match="entries 3 must divide rows 4"):
        XnorArray(4, 8, 2, 8, 3)
