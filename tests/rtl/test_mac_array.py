# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from hwflow.rtl.mac_array import MacArray
from hwflow.sim.beats import pack, unpack

pytestmark = pytest.mark.sim


def _check(run_sim, dut, schedule, expected, word, simd, abits):
    """Drive ``dut`` with ``schedule`` (activations, weights, valid, first, last per cycle;
    ``word`` packs the weights) and compare the accumulators with ``expected``, cycle for cycle."""
    seen = []

    async def bench(ctx):
        for cyc in range(len(schedule) + dut.latency + 2):
            if cyc < len(schedule):
                a, w, v, f, l = schedule[cyc]
                ctx.set(dut.a, pack(a, [range(simd)], abits)[0])
                ctx.set(dut.w, word(w))
                ctx.set(dut.valid, v)
                ctx.set(dut.first, f)
                ctx.set(dut.last, l)
            else:
                ctx.set(dut.valid, 0)
            if ctx.get(dut.out_valid):
                seen.append((cyc, ctx.get(dut.acc)))
            await ctx.tick()

    run_sim(dut, bench)
    assert [c for c, _ in seen] == [c for c, _ in expected]
    width = dut.acc.shape().width // len(expected[0][1]) if expected else 1
    for (_, got), (_, want) in zip(seen, expected):
        assert unpack([got], [range(len(want))], width) == list(want)


def _tiles(rng, pe, simd, wbits, abits, n_tiles, extreme):
    """Random tiles: (k, a[k, simd], w[k, pe, simd], gap)."""
    alo, ahi = -(1 << (abits - 1)), (1 << (abits - 1)) - 1
    wlo, whi = -(1 << (wbits - 1)), (1 << (wbits - 1)) - 1
    out = []
    for _ in range(n_tiles):
        k = int(rng.integers(1, 6))
        if extreme:
            a = rng.choice([alo, ahi], size=(k, simd))
            w = rng.choice([wlo, whi], size=(k, pe, simd))
        else:
            a = rng.integers(alo, ahi + 1, size=(k, simd))
            w = rng.integers(wlo, whi + 1, size=(k, pe, simd))
        out.append((k, a, w, int(rng.integers(0, 3))))
    return out


@pytest.mark.parametrize("pe,simd,wbits,abits,extreme,dsp", [
    (1, 1, 8, 8, False, None), (3, 5, 4, 8, False, None), (4, 4, 8, 8, True, None), (2, 8, 2, 3, True, None),
    # Mixed DSP / LUT lanes (lanes >= dsp multiply in LUTs): every weight width 2..8,
    # extreme values (-2**(b-1) x -2**(b-1) included) and random ones, all-LUT arrays.
    (4, 4, 8, 8, True, 5), (4, 4, 8, 8, False, 11), (1, 1, 8, 8, True, 0), (3, 5, 4, 8, True, 7),
    (2, 8, 2, 3, True, 0), (2, 3, 3, 8, True, 2), (2, 2, 5, 6, True, 1), (3, 2, 6, 4, False, 3),
    (2, 3, 7, 8, True, 4), (2, 4, 7, 5, False, 0), (1, 3, 2, 8, False, 1),
])
def test_mac_array_matches_model(run_sim, pe, simd, wbits, abits, extreme, dsp):
    rng = np.random.default_rng(pe * 100 + simd + 1000 * wbits + (dsp or 0))
    tiles = _tiles(rng, pe, simd, wbits, abits, 12, extreme)
    acc_bits = wbits + abits + 4 + simd.bit_length()
    dut = MacArray(pe, simd, wbits, abits, acc_bits, dsp_mults=dsp)
    assert dut.dsp_mults == (pe * simd if dsp is None else dsp)
    assert dut.latency == 4 + (simd - 1).bit_length()
    # Golden model: expected (cycle, acc vector) of each finished tile.
    schedule, expected, t = [], [], 0
    for k, a, w, gap in tiles:
        for j in range(k):
            schedule.append((a[j], w[j], 1, int(j == 0), int(j == k - 1)))
        expected.append((t + k - 1 + dut.latency, (w * a[:, None, :]).sum(axis=(0, 2))))
        schedule += [(np.zeros(simd, int), np.zeros((pe, simd), int), 0, 0, 0)] * gap
        t += k + gap
    _check(run_sim, dut, schedule, expected, lambda w: pack(w, [range(pe * simd)], wbits)[0], simd, abits)


def test_mac_array_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"pe must be an integer >= 1, not 0"):
        MacArray(0, 4, 8, 8, 20)
    with pytest.raises(ValueError, match=r"wbits must be an integer >= 2, not 1"):
        MacArray(4, 4, 1, 8, 20)
    with pytest.raises(ValueError, match=r"dsp_mults must be an integer >= 0, not -1"):
        MacArray(4, 4, 8, 8, 20, dsp_mults=-1)


@pytest.mark.parametrize("pe,simd,cbits,abits", [(1, 1, 4, 8), (3, 5, 4, 8), (2, 4, 3, 5), (2, 3, 5, 8),
                                                 (1, 1, 2, 8), (3, 5, 2, 8), (2, 8, 2, 2)])
def test_pot_lane_matches_model(run_sim, pe, simd, cbits, abits):
    """A ``pot`` array (shift lanes) or, at ``cbits = 2``, an ``addsub`` array (ternary codes)
    takes codes and accumulates ``a * decode(code)`` exactly: every code (zero with either
    sign bit, ternary's unused ``0b10`` included, the largest exponent) and extreme activations."""
    from hwflow.quant.wformat import WeightFormat

    fmt = WeightFormat("pot", max(cbits, 3))
    rng = np.random.default_rng(cbits * 10 + pe + simd)
    wbits = 2 if cbits == 2 else fmt.value_bits
    if cbits == 2:  # the pot code at 2 bits: sign, 1-bit exponent field
        fmt.decode = lambda c: np.where(c & 1, np.where(c >> 1, -1, 1), 0)
    acc_bits = wbits + abits + 4 + simd.bit_length()
    dut = MacArray(pe, simd, wbits, abits, acc_bits, lane="addsub" if cbits == 2 else "pot", cbits=cbits)
    assert dut.dsp_mults == 0 and dut.latency == 4 + (simd - 1).bit_length()
    alo, ahi = -(1 << (abits - 1)), (1 << (abits - 1)) - 1
    schedule, expected, t = [], [], 0
    for _ in range(10):
        k = int(rng.integers(1, 5))
        a = rng.choice([alo, ahi, -1, 0, 1], size=(k, simd)) if rng.random() < 0.5 else \
            rng.integers(alo, ahi + 1, size=(k, simd))
        codes = rng.integers(0, 1 << cbits, size=(k, pe, simd))  # includes sign-1 zero codes
        w = fmt.decode(codes)
        for j in range(k):
            schedule.append((a[j], codes[j], 1, int(j == 0), int(j == k - 1)))
        expected.append((t + k - 1 + dut.latency, (w * a[:, None, :]).sum(axis=(0, 2))))
        t += k
    _check(run_sim, dut, schedule, expected,
           lambda c: sum(int(x) << (i * cbits) for i, x in enumerate(c.ravel())), simd, abits)
