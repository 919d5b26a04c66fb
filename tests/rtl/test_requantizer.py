# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from hwflow.quant.arith import requantize
from hwflow.rtl.requantizer import Requantizer

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("rounding", ["half_up", "half_even"])
@pytest.mark.parametrize("mbits,n_min,n_max,out_bits", [(1, -3, 12, 8), (16, -2, 30, 8), (8, 0, 20, 4),
                                                     (24, -2, 40, 8)])  # 24: two pieces of m (PIECE)
def test_requantizer_matches_contract(run_sim, mbits, n_min, n_max, out_bits, rounding):
    rng = np.random.default_rng(mbits)
    in_bits = 24
    dut = Requantizer(in_bits, mbits, n_min, n_max, out_bits, tag_bits=8, rounding=rounding)
    assert dut.rounding == rounding
    assert dut.latency == (7 if mbits > 1 else 5)
    assert dut.has_multiplier == (mbits > 1)
    olo, ohi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    n_vec = 200
    v = rng.integers(-(1 << (in_bits - 1)), 1 << (in_bits - 1), size=n_vec)
    v[:4] = [-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1, 0, -1]
    m = rng.integers(1, 1 << mbits, size=n_vec) if mbits > 1 else np.ones(n_vec, np.int64)
    n = rng.integers(n_min, n_max + 1, size=n_vec)
    # every other of the first 100: an exact tie v * m = (k + 1/2) * 2**n (m = 1) with the
    # result inside the output range, k odd or even
    for i in range(4, 100, 2):
        n[i] = rng.integers(max(n_min, 1), min(n_max, in_bits - out_bits) + 1)
        k = int(rng.integers(-(1 << (out_bits - 2)), 1 << (out_bits - 2)))
        v[i], m[i] = k * (1 << n[i]) + (1 << (n[i] - 1)), 1
    z = rng.integers(olo, ohi + 1, size=n_vec)
    lo = rng.integers(olo, 1, size=n_vec)
    hi = rng.integers(0, ohi + 1, size=n_vec)
    want = [0] * n_vec
    got = {}
    # z/lo/hi are per-layer constants in the accelerator: hold them for a batch of 50
    # back-to-back values (full throughput), then drain and change them.
    batches = [range(i, min(i + 50, n_vec)) for i in range(0, n_vec, 50)]

    async def bench(ctx):
        for batch in batches:
            j0 = batch[0]
            for sig, val in ((dut.z, z), (dut.lo, lo), (dut.hi, hi)):
                ctx.set(sig, int(val[j0]))
            for c in range(len(batch) + dut.latency):
                if c < len(batch):
                    i = batch[c]
                    ctx.set(dut.v, int(v[i]))
                    ctx.set(dut.m, int(m[i]))
                    ctx.set(dut.n, int(n[i]))
                    ctx.set(dut.tag, i & 0xFF)
                ctx.set(dut.valid, int(c < len(batch)))
                if ctx.get(dut.out_valid):
                    i = batch[c - dut.latency]
                    got[i] = (ctx.get(dut.q), ctx.get(dut.out_tag))
                await ctx.tick()
            ctx.set(dut.valid, 0)

    run_sim(dut, bench)
    for batch in batches:
        j0 = batch[0]
        for i in batch:
            want[i] = int(requantize(v[i], m[i], n[i], z[j0], lo[j0], hi[j0], rounding))
    assert sorted(got) == list(range(n_vec))
    for i in range(n_vec):
        q, tag = got[i]
        assert q == want[i], (i, v[i], m[i], n[i], z[i], lo[i], hi[i])
        assert tag == i & 0xFF


def test_half_even_shift_is_numpy_round():
    """rshift_round_even(v, n) == numpy.round(v / 2**n) (ties to even), the arithmetic of
    QONNX's ROUND; rshift_round rounds only those ties differently (up)."""
    from hwflow.quant.arith import rshift_round, rshift_round_even

    v = np.arange(-300, 301)
    for n in range(0, 6):
        np.testing.assert_array_equal(rshift_round_even(v, n), np.round(v / 2.0**n).astype(np.int64))
        ties = (v % (1 << n) == (1 << n) // 2) if n else np.zeros_like(v, bool)
        np.testing.assert_array_equal(rshift_round(v, n)[~ties], rshift_round_even(v, n)[~ties])
    np.testing.assert_array_equal(rshift_round_even(v, -2), v * 4)


def test_requantizer_rejects_bad_parameters():
    with pytest.raises(ValueError, match=r"n_min 5 > n_max 2"):
        Requantizer(16, 8, 5, 2, 8)
    with pytest.raises(ValueError, match=r"mbits must be a positive integer, not 0"):
        Requantizer(16, 0, 0, 2, 8)
    with pytest.raises(ValueError, match=r"rounding must be 'half_up' or 'half_even', not 'down'"):
        Requantizer(16, 8, 0, 2, 8, rounding="down")
