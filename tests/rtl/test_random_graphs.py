# amaranth: UnusedElaboratable=no
"""Random networks on random array shapes: bit-exact and cycle-exact against run_int."""

import numpy as np
import pytest

from hwflow.quant.reference import run_int
from _support.accel_sim import simulate
from _support.graphs import random_graph
from hwflow.schedule import schedule


def _check(seed):
    b, qg = random_graph(seed)
    rng = np.random.default_rng(seed + 1000)
    pe, simd = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    prog = schedule(qg, "generic", pe=pe, simd=simd)
    xs = [b.random_input(qg), b.random_input(qg, extreme=True)]
    outs, cycles, measured = simulate(prog, xs)
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, run_int(qg, x).reshape(-1), err_msg=f"seed {seed}, {pe}x{simd}")
    assert cycles == measured == [prog.cycles] * 2


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(6))
def test_random_graph(seed):
    _check(seed)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 60))
def test_random_graph_sweep(seed):
    _check(seed)
