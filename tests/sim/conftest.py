"""Test fixture for the simulator runners: a tiny core with the Accelerator's port protocol.

``AccumulateFixtureCore`` exists ONLY to test the runner infrastructure (amaranth_runner,
cocotb_runner, tb_accelerator) independently of the real accelerator; end-to-end tests
use :class:`hwflow.rtl.accelerator.Accelerator`.

It accepts ``n_in`` codes, accumulates code ``i`` into output ``i % n_out``, waits
``latency`` cycles, streams the ``n_out`` sums out and pulses ``done``. With a partner that
never stalls, cycles start→done are ``n_in + latency + n_out + 1`` (plus ``n_in - 1``
when ``stall_inputs`` drops ``in_ready`` every other load cycle, and ``n_out - 1`` when
``stall_outputs`` drops ``out_valid`` every other output cycle). With a partner that
stalls, each stall cycle (``in_ready`` high and ``in_valid`` low, or ``out_valid`` high
and ``out_ready`` low) adds one.

``fault`` breaks the stream rules on purpose, to test the testbench's checks:
``"unstable"`` moves to the next output beat whether or not it was taken (its data
changes while held, and the beat is lost); ``"double_done"`` holds ``done`` two cycles;
``"uninit"`` adds to every output a register that no reset clears and nothing writes
(right only while it holds its initial value, 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class AccumulateFixtureCore(wiring.Component):
    """Echo/accumulate core with the Accelerator port protocol (test fixture only)."""

    def __init__(self, n_in=6, n_out=3, latency=5, in_bits=8, out_bits=16,
                 stall_inputs=False, stall_outputs=False, miscount=0, fault=None):
        if n_in < 1 or n_out < 1 or latency < 0:
            raise ValueError(f"bad fixture sizes {(n_in, n_out, latency)!r}")
        if fault not in (None, "unstable", "double_done", "uninit"):
            raise ValueError(f"unknown fault {fault!r}")
        self.fault = fault
        self.n_in, self.n_out, self.latency = n_in, n_out, latency
        self.stall_inputs = stall_inputs
        self.stall_outputs = stall_outputs
        self.miscount = miscount  # a deliberately wrong cycles port, to test the checker
        self.input_size, self.output_size = n_in, n_out
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "cycles": Out(32),
            "in_valid": In(1), "in_ready": Out(1), "in_data": In(signed(in_bits)),
            "out_valid": Out(1), "out_ready": In(1), "out_data": Out(signed(out_bits)),
        })
        self._out_bits = out_bits

    @property
    def cycles_predicted(self) -> int:
        load = 2 * self.n_in - 1 if self.stall_inputs else self.n_in
        emit = 2 * self.n_out - 1 if self.stall_outputs else self.n_out
        return load + self.latency + emit + 1

    def model(self, x: np.ndarray) -> np.ndarray:
        """Outputs for one vector (wrapping at out_bits like the hardware)."""
        x = np.asarray(x, dtype=np.int64).ravel()
        out = np.array([x[j::self.n_out].sum() for j in range(self.n_out)], dtype=np.int64)
        half = 1 << (self._out_bits - 1)
        return (out + half) % (2 * half) - half

    def elaborate(self, platform):
        m = Module()
        acc = [Signal(signed(self._out_bits), name=f"acc{j}") for j in range(self.n_out)]
        idx = Signal(range(max(self.n_in, self.n_out) + 1))
        wait = Signal(range(self.latency + 1))
        count = Signal(32)
        toggle = Signal()
        junk = Signal(self._out_bits, reset_less=True)
        if self.fault == "uninit":
            m.d.sync += junk.eq(junk)  # a register with only its initial value
        else:
            junk = 0
        m.d.comb += self.cycles.eq(count + self.miscount)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [idx.eq(0), count.eq(1), toggle.eq(0)]
                    m.d.sync += [a.eq(0) for a in acc]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += count.eq(count + 1)
                ready = ~toggle if self.stall_inputs else 1
                m.d.comb += self.in_ready.eq(ready)
                m.d.sync += toggle.eq(~toggle)
                with m.If(self.in_valid & ready):
                    with m.Switch(idx):
                        for i in range(self.n_in):
                            with m.Case(i):
                                j = i % self.n_out
                                m.d.sync += acc[j].eq(acc[j] + self.in_data)
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == self.n_in - 1):
                        m.d.sync += [idx.eq(0), wait.eq(self.latency), toggle.eq(0)]
                        m.next = "COMPUTE" if self.latency else "OUTPUT"
            with m.State("COMPUTE"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += [count.eq(count + 1), wait.eq(wait - 1)]
                with m.If(wait == 1):
                    m.d.sync += toggle.eq(0)
                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                valid = ~toggle if self.stall_outputs else 1
                m.d.comb += [self.busy.eq(1), self.out_valid.eq(valid)]
                m.d.sync += [count.eq(count + 1), toggle.eq(~toggle)]
                with m.Switch(idx):
                    for j in range(self.n_out):
                        with m.Case(j):
                            m.d.comb += self.out_data.eq(acc[j] + junk)
                moved = valid if self.fault == "unstable" else self.out_ready & valid
                with m.If(moved):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == self.n_out - 1):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "DONE2" if self.fault == "double_done" else "IDLE"
            with m.State("DONE2"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"
        return m


@pytest.fixture
def fixture_core():
    """The fixture core class (a fresh instance per simulation)."""
    return AccumulateFixtureCore
