"""cocotb testbench for an hwflow accelerator (Icarus or Verilator).

Standalone on purpose: it imports only cocotb, numpy and :mod:`beats` (numpy only), so
both are copied verbatim into ``BUILD/sim/`` and run without hwflow. Structure after cocotb's matrix_multiplier
example: a driver (in-stream), a monitor (out-stream), a model (the reference's expected
codes) and a checker (outputs and cycle counts) are separate classes; the test only
wires them together.

Environment (set by the runner):

``HWFLOW_TB_INPUTS``     .npy of ``(vectors, ...)`` input codes
``HWFLOW_TB_STREAM``     .npz with ``in_map`` and ``out_map`` (beat lanes -> code index;
                         optional: one code per beat)
``HWFLOW_TB_EXPECTED``   .npy of ``(vectors, ...)`` expected output codes (optional)
``HWFLOW_TB_OUTPUT_SIZE`` codes per vector on the out-stream (when no expected file)
``HWFLOW_TB_PREDICTED``  predicted cycles start→done
``HWFLOW_TB_RESULT``     JSON file to write the result to
``HWFLOW_TB_TIMEOUT``    cycles to wait for ``done`` per vector (optional)
``HWFLOW_TB_WEIGHTS``    hex file of the weight image, for a core with a weight-load port
                         (optional: it is streamed in before the first vector)
``HWFLOW_TB_LOAD_CYCLES`` predicted cycles of that load (first word offered → ``loaded``)

Cycle counting: ``start`` is driven high right after a rising edge, so it is sampled at
the end of cycle 0; the testbench's count is the number of clock periods from that
edge to the cycle in which ``done`` is first seen high (read in the ReadOnly phase).
The streams are sampled at falling clock edges (one wake-up per cycle, only while a
stream is moving); while the core computes, the testbench waits on ``out_valid`` and
``done`` edges, so the simulator runs at full speed.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

try:  # inside hwflow
    from .beats import identity_map, pack, read_words, unpack
except ImportError:  # the standalone copy in BUILD/sim
    from beats import identity_map, pack, read_words, unpack

PERIOD_NS = 10


def _high(handle) -> bool:
    return str(handle.value) == "1"


class StreamDriver:
    """Drives the in-stream: ``in_valid`` held high, one word per accepted beat.

    It wakes once per cycle, at the falling clock edge: every signal is settled there
    (the core changes only at rising edges), so ``in_ready`` read then says whether the
    beat transfers at the next rising edge, and the next code written then is in place
    well before the edge after. ``in_ready`` must not depend on ``in_data``.
    """

    def __init__(self, dut):
        self.dut = dut
        self.accepted = 0

    async def send(self, beats: list[int]) -> None:
        dut = self.dut
        self.accepted = 0
        dut.in_data.value = beats[0]
        dut.in_valid.value = 1
        moved = False  # a beat transferred at the last rising edge
        while True:
            await FallingEdge(dut.clk)
            if moved:
                if self.accepted == len(beats):
                    dut.in_valid.value = 0
                    return
                dut.in_data.value = beats[self.accepted]
            moved = _high(dut.in_ready)
            self.accepted += moved


class WeightLoader:
    """Drives the weight-load port once, as :class:`StreamDriver` drives the in-stream
    (``wload_valid`` high from a rising edge on, one word per accepted beat, woken at
    falling edges), then waits for ``loaded``. Returns the cycles from the first word
    offered (cycle 0) to the cycle in which ``loaded`` is high."""

    def __init__(self, dut):
        self.dut = dut

    async def load(self, words: list[int], limit: int) -> int:
        dut = self.dut
        await RisingEdge(dut.clk)
        dut.wload_data.value = words[0]
        dut.wload_valid.value = 1
        t0 = get_sim_time("ns")
        accepted, moved = 0, False
        while True:
            await FallingEdge(dut.clk)
            if moved:
                if accepted == len(words):
                    dut.wload_valid.value = 0
                    break
                dut.wload_data.value = words[accepted]
            moved = _high(dut.wload_ready)
            accepted += moved
            if get_sim_time("ns") - t0 > limit * PERIOD_NS:
                raise TimeoutError(f"weight load: {accepted} of {len(words)} words accepted in {limit} cycles")
        while not _high(dut.loaded):
            await RisingEdge(dut.clk)
            await ReadOnly()
            if get_sim_time("ns") - t0 > limit * PERIOD_NS:
                raise TimeoutError(f"weight load: no loaded within {limit} cycles")
        # Seen at a falling edge or just after a rising one: it rose at the last rising edge.
        return int((get_sim_time("ns") - t0) // PERIOD_NS)


class StreamMonitor:
    """Collects out-stream beats (``out_ready`` held high, raw bits) into ``self.codes``.

    Samples at falling clock edges while ``out_valid`` is high; otherwise sleeps until
    ``out_valid`` rises, so the simulator runs unhindered while the core computes.
    """

    def __init__(self, dut):
        self.dut = dut
        self.codes: list[int] = []
        self._task = None

    def start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            if _high(dut.out_valid):
                if _high(dut.out_ready):
                    self.codes.append(int(dut.out_data.value.to_unsigned()))
            else:
                await RisingEdge(dut.out_valid)

    def take(self) -> list[int]:
        codes, self.codes = self.codes, []
        return codes


class ReferenceModel:
    """The integer reference's outputs, precomputed by hwflow and read from a file."""

    def __init__(self, expected_path: str | None, vectors: int, output_size: int | None):
        self.expected = None
        if expected_path:
            self.expected = np.load(expected_path).reshape(vectors, -1).astype(np.int64)
            output_size = self.expected.shape[1]
        if output_size is None:
            raise ValueError("need HWFLOW_TB_EXPECTED or HWFLOW_TB_OUTPUT_SIZE")
        self.output_size = int(output_size)

    def outputs(self, v: int) -> list[int] | None:
        return None if self.expected is None else [int(x) for x in self.expected[v]]


class Checker:
    """Compares each vector's outputs and cycle counts; keeps the tally."""

    def __init__(self, model: ReferenceModel, predicted: int):
        self.model = model
        self.predicted = predicted
        self.mismatches = 0
        self.first_mismatch = ""
        self.cycles: list[int] = []
        self.core_cycles: list[int] = []
        self.outputs: list[list[int]] = []

    def check(self, v: int, got: list[int], cycles: int, core_cycles: int) -> None:
        self.outputs.append(got)
        self.cycles.append(cycles)
        self.core_cycles.append(core_cycles)
        want = self.model.outputs(v)
        if want is None:
            bad = len(got) != self.model.output_size
            why = f"vector {v}: {len(got)} output codes, expected {self.model.output_size}"
        else:
            bad = got != want
            if len(got) != len(want):
                why = f"vector {v}: {len(got)} output codes, expected {len(want)}"
            elif bad:
                i = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
                why = f"vector {v}, output {i}: got {got[i]}, expected {want[i]}"
        if bad:
            self.mismatches += 1
            if not self.first_mismatch:
                self.first_mismatch = why


async def _reset(dut, cycles: int = 3) -> None:
    dut.rst.value = 1
    dut.start.value = 0
    dut.in_valid.value = 0
    dut.in_data.value = 0
    dut.out_ready.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


async def _wait_done(dut, limit: int) -> None:
    await ReadOnly()
    if _high(dut.done):
        return
    timeout = Timer(limit * PERIOD_NS, unit="ns")
    while True:
        fired = await First(RisingEdge(dut.done), timeout)
        if fired is timeout:
            raise TimeoutError(f"no done within {limit} cycles")
        await ReadOnly()
        if _high(dut.done):
            return


@cocotb.test()
async def run_vectors(dut):
    """Stream every vector through the core; write the result JSON."""
    inputs = np.load(os.environ["HWFLOW_TB_INPUTS"])
    vectors = int(inputs.shape[0])
    inputs = inputs.reshape(vectors, -1).astype(np.int64)
    out_size = os.environ.get("HWFLOW_TB_OUTPUT_SIZE")
    model = ReferenceModel(os.environ.get("HWFLOW_TB_EXPECTED"), vectors,
                           int(out_size) if out_size else None)
    stream = os.environ.get("HWFLOW_TB_STREAM")
    if stream:
        with np.load(stream) as f:
            in_map, out_map = f["in_map"], f["out_map"]
    else:
        in_map, out_map = identity_map(inputs.shape[1]), identity_map(model.output_size)
    in_bits = len(dut.in_data) // in_map.shape[1]
    out_bits = len(dut.out_data) // out_map.shape[1]
    predicted = int(os.environ["HWFLOW_TB_PREDICTED"])
    limit = int(os.environ.get("HWFLOW_TB_TIMEOUT") or 4 * predicted + 1000)
    checker = Checker(model, predicted)
    driver = StreamDriver(dut)
    monitor = StreamMonitor(dut)
    result = {"vectors": vectors, "predicted_cycles": predicted, "error": ""}

    weights = os.environ.get("HWFLOW_TB_WEIGHTS")
    if weights:
        dut.wload_valid.value = 0
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await _reset(dut)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    t_sim0 = get_sim_time("ns")
    monitor.start()
    try:
        if weights:  # the weight-load phase, once, before the first vector
            words = read_words(weights)
            result["load_cycles"] = await WeightLoader(dut).load(words, 4 * len(words) + 1000)
            result["predicted_load_cycles"] = int(os.environ.get("HWFLOW_TB_LOAD_CYCLES") or -1)
        for v in range(vectors):
            await RisingEdge(dut.clk)
            dut.start.value = 1
            t_start = get_sim_time("ns")
            send = cocotb.start_soon(driver.send(pack(inputs[v], in_map, in_bits)))
            await RisingEdge(dut.clk)
            dut.start.value = 0
            await _wait_done(dut, limit)
            cycles = round((get_sim_time("ns") - t_start) / PERIOD_NS)
            await RisingEdge(dut.clk)
            await ReadOnly()
            core_cycles = int(dut.cycles.value)
            if not send.done():
                send.cancel()
                result["error"] = (f"vector {v}: done after {driver.accepted} of "
                                   f"{in_map.shape[0]} input beats")
            beats = monitor.take()
            try:
                got = unpack(beats, out_map, out_bits)
            except ValueError:
                got = []  # wrong number of beats: the checker reports the mismatch
            checker.check(v, got, cycles, core_cycles)
            await RisingEdge(dut.clk)
    except TimeoutError as exc:
        result["error"] = str(exc) if str(exc).startswith("weight load") else f"vector {len(checker.cycles)}: {exc}"
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    sim_cycles = round((get_sim_time("ns") - t_sim0) / PERIOD_NS)
    result.update(
        mismatches=checker.mismatches + (vectors - len(checker.cycles)),
        first_mismatch=checker.first_mismatch,
        cycles=checker.cycles,
        core_cycles=checker.core_cycles,
        outputs=checker.outputs,
        sim_cycles=sim_cycles,
        wall_time=wall,
        cpu_time=cpu,
    )
    with open(os.environ["HWFLOW_TB_RESULT"], "w") as f:
        json.dump(result, f)
    assert not result["error"], result["error"]
