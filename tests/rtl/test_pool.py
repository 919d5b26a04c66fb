# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from hwflow.rtl.pool import KIND_ADD, KIND_MAX, KIND_SUM, PoolUnit
from hwflow.sim.beats import pack, unpack

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("simd", [1, 4, 5])
def test_pool_unit_max_sum_add(run_sim, simd):
    rng = np.random.default_rng(simd)
    abits, acc_bits = 8, 14
    dut = PoolUnit(simd, abits, acc_bits, with_add=True)
    assert dut.latency == 2
    jobs = []
    for i in range(9):
        kind = (KIND_MAX, KIND_SUM, KIND_ADD)[i % 3]
        k = 2 if kind == KIND_ADD else int(rng.integers(1, 10))
        x = rng.integers(-128, 128, size=(k, simd))
        za, zb = (int(v) for v in rng.integers(-128, 128, size=2))
        if kind == KIND_MAX:
            want = (list(x.max(axis=0)), None)
        elif kind == KIND_SUM:
            want = (list(x.sum(axis=0)), None)
        else:
            want = (list(x[0] - za), list(x[1] - zb))
        jobs.append((kind, x, za, zb, want))
    got = []

    async def bench(ctx):
        for kind, x, za, zb, _ in jobs:
            ctx.set(dut.kind, kind)
            ctx.set(dut.za, za)
            ctx.set(dut.zb, zb)
            for j in range(len(x)):
                ctx.set(dut.x, pack(x[j], [range(simd)], abits)[0])
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, int(j == 0))
                ctx.set(dut.last, int(j == len(x) - 1))
                ctx.set(dut.sel, int(kind == KIND_ADD and j == 1))
                await ctx.tick()
            ctx.set(dut.valid, 0)
            assert not ctx.get(dut.out_valid)  # latency 2: the input register, then the lane op
            await ctx.tick()
            assert ctx.get(dut.out_valid)
            a = unpack([ctx.get(dut.a)], [range(simd)], acc_bits)
            b = unpack([ctx.get(dut.b)], [range(simd)], acc_bits)
            got.append((a, b if kind == KIND_ADD else None))
            await ctx.tick()
            assert not ctx.get(dut.out_valid)

    run_sim(dut, bench)
    assert got == [w for *_, w in jobs]


def test_pool_unit_rejects_narrow_accumulator():
    with pytest.raises(ValueError, match=r"acc_bits 8 must exceed abits 8"):
        PoolUnit(4, 8, 8)
