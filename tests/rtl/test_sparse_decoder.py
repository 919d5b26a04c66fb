# amaranth: UnusedElaboratable=no
"""Sparse decoder against its numpy model: dense words bit for bit, cycles as declared."""

import numpy as np
import pytest

from hwflow.rtl._lanes import unpack
from hwflow.rtl.sparse_decoder import SparseDecoder, decode, decode_cycles, encode


def test_encode_roundtrip_and_fillers():
    w = np.zeros(37, np.int64)
    w[[0, 1, 20, 36]] = [3, -1, 7, -8]
    gaps, values = encode(w, 4, 3)
    assert gaps.max() <= 7
    dense = decode(gaps, values, 4)
    assert dense.shape == (10, 4)
    assert np.array_equal(dense.ravel()[:37], w) and not dense.ravel()[37:].any()
    assert (values == 0).sum() >= 2  # fillers for the 18-zero run and the tail


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"gaps must fit 2 unsigned bits"):
        SparseDecoder([4], [1], 4, 2, 4)
    with pytest.raises(ValueError, match=r"values must fit signed 4 bits"):
        SparseDecoder([0], [8], 4, 2, 4)


@pytest.mark.sim
@pytest.mark.parametrize("lanes,rbits,density,stall", [(4, 4, 0.2, False), (4, 2, 0.6, False),
                                                       (2, 3, 0.05, False), (8, 4, 0.3, True)])
def test_decoder_matches_model(run_sim, lanes, rbits, density, stall):
    rng = np.random.default_rng(lanes * 10 + rbits)
    vbits = 4
    w = np.where(rng.random(150) < density, rng.integers(-8, 8, 150), 0)
    gaps, values = encode(w, lanes, rbits)
    want = decode(gaps, values, lanes)
    dut = SparseDecoder(gaps, values, lanes, rbits, vbits)
    assert dut.rom_bits == len(gaps) * (rbits + vbits)

    async def bench(ctx):
        ctx.set(dut.base, 0)
        ctx.set(dut.restart, 1)
        ctx.set(dut.out_ready, 1)
        await ctx.tick()
        ctx.set(dut.restart, 0)
        got, cycle, last = [], 1, None
        while len(got) < len(want) and cycle < 20 * len(want) + 50:
            ready = 1 if not stall else int(rng.random() < 0.6)
            ctx.set(dut.out_ready, ready)
            if ctx.get(dut.out_valid) and ready:
                got.append(unpack(ctx.get(dut.out_data), lanes, vbits))
                last = cycle
            await ctx.tick()
            cycle += 1
        assert np.array_equal(np.asarray(got), want)
        if not stall:
            assert last == decode_cycles(gaps, lanes)

    run_sim(dut, bench)
