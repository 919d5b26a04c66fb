# amaranth: UnusedElaboratable=no
"""Random networks on random array shapes: bit-exact and cycle-exact against run_int."""

import numpy as np
import pytest

from _support.accel_sim import assert_exact
from _support.graphs import random_graph
from hwflow.schedule import schedule


def _check(seed):
    b, qg = random_graph(seed)
    rng = np.random.default_rng(seed + 1000)
    pe, simd = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    prog = schedule(qg, "generic", pe=pe, simd=simd)
    xs = [b.random_input(qg), b.random_input(qg, extreme=True)]
    assert_exact(prog, qg, xs, f"seed {seed}, {pe}x{simd}")


@pytest.mark.sim
@pytest.mark.parametrize("seed", range(6))
def test_random_graph(seed):
    _check(seed)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 60))
def test_random_graph_sweep(seed):
    _check(seed)
