"""Helpers for the hardware-block tests (fixtures only; tests import nothing from here)."""

import pytest
from amaranth.sim import Simulator


def _run(dut, bench, vcd=None):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.fixture
def run_sim():
    """``run_sim(dut, async_bench)``: run one testbench on ``dut`` to completion."""
    return _run
