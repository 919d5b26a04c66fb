"""cocotb testbench for an hwflow accelerator (Icarus or Verilator).

Standalone on purpose: it imports only cocotb, numpy and :mod:`beats` (numpy only), so
both are copied verbatim into ``BUILD/sim/`` and run without hwflow. Structure after cocotb's matrix_multiplier
example: a driver (in-stream source), a monitor (out-stream sink), a model (the
reference's expected codes), a checker (outputs and cycle counts) and the interface rules
(:class:`Protocol`, :class:`DoneWatcher`) are separate classes; the test only wires them
together, one inference at a time (:func:`infer`).

Environment (set by the runner):

``HWFLOW_TB_INPUTS``     .npy of ``(vectors, ...)`` input codes
``HWFLOW_TB_STREAM``     .npz with ``in_map`` and ``out_map`` (beat lanes -> code index;
                         optional: one code per beat)
``HWFLOW_TB_EXPECTED``   .npy of ``(vectors, ...)`` expected output codes (optional)
``HWFLOW_TB_OUTPUT_SIZE`` codes per vector on the out-stream (when no expected file)
``HWFLOW_TB_PREDICTED``  predicted cycles start→done
``HWFLOW_TB_RESULT``     JSON file to write the result to
``HWFLOW_TB_TIMEOUT``    cycles to wait for ``done`` per vector (optional)
``HWFLOW_TB_STALL``      probability that a stream partner stalls in a cycle (default 0):
                         the source drops ``in_valid``, the sink ``out_ready``
                         (:func:`beats.stream_gaps`)
``HWFLOW_TB_SEED``       seed of the stalls and of the reset cycles (default 0)
``HWFLOW_TB_RESET``      ``1``: before each vector, start an inference on it and reset the
                         core in a random cycle of it (then load the weights again, if the
                         core has a weight-load port, and run the vector in full)
``HWFLOW_TB_WEIGHTS``    hex file of the weight image, for a core with a weight-load port
                         (optional: it is streamed in before the first vector)
``HWFLOW_TB_LOAD_CYCLES`` predicted cycles of that load (first word offered → ``loaded``)

Cycle counting: ``start`` is driven high right after a rising edge, so it is sampled at
the end of cycle 0; the testbench's count is the number of clock periods from that
edge to the cycle in which ``done`` is first seen high (read in the ReadOnly phase).
A *stall cycle* is one in which a stream is offered and refused: ``in_ready`` high and
``in_valid`` low, or ``out_valid`` high and ``out_ready`` low. Every inference must take
exactly the predicted cycles plus its stall cycles, by both counts.

Interface rules (a violation fails the run, naming the vector and the cycle):

- while ``out_valid`` is high and ``out_ready`` low, ``out_valid`` and ``out_data`` hold;
- the core takes exactly ``input_beats`` beats per inference, all before ``done``, and
  ``in_ready`` is low once it has them (a further beat would be lost); it emits exactly
  ``output_beats`` beats, only between ``start`` and ``done``;
- ``done`` is high for one cycle, once per inference, and never outside one.

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
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

try:  # inside hwflow
    from .beats import identity_map, pack, read_words, stream_gaps, unpack
except ImportError:  # the standalone copy in BUILD/sim
    from beats import identity_map, pack, read_words, stream_gaps, unpack

PERIOD_NS = 10
#: Violations kept in the result (all are counted).
MAX_VIOLATIONS = 20


def _high(handle) -> bool:
    return str(handle.value) == "1"


def _now() -> int:
    return int(get_sim_time("ns"))


class Protocol:
    """The interface-rule violations, each with the inference and cycle it happened in."""

    def __init__(self):
        self.messages: list[str] = []
        self.count = 0
        self.run: str | None = None  # the inference under way ("vector 3"), None between them
        self.t0 = 0                  # sim time (ns) of its cycle 0

    def begin(self, run: str) -> None:
        self.run, self.t0 = run, _now()

    def end(self) -> None:
        self.run = None

    def cycle(self) -> int:
        """The current cycle of the inference under way (0: ``start`` sampled)."""
        return (_now() - self.t0) // PERIOD_NS

    def where(self) -> str:
        """The inference under way and its cycle, or the time since the run began."""
        return (f"{self.run}, cycle {self.cycle()}" if self.run is not None
                else f"between inferences, at {_now() // PERIOD_NS} cycles")

    def violation(self, what: str, where: str | None = None) -> None:
        self.count += 1
        if len(self.messages) < MAX_VIOLATIONS:
            self.messages.append(f"{where or self.where()}: {what}")


class StreamDriver:
    """The in-stream's source: one inference's beats, each after its gap of idle cycles.

    It wakes once per cycle, at the falling clock edge: every signal is settled there
    (the core changes only at rising edges), so the ``in_valid``/``in_data`` it sets then
    are sampled at the next rising edge, and ``in_ready`` read then says whether the beat
    transfers. Before offering beat ``i`` it keeps ``in_valid`` low for ``gaps[i]``
    cycles; once offered, the beat holds until taken. ``in_ready`` must not depend on
    ``in_valid`` or ``in_data``.
    """

    def __init__(self, dut, protocol: Protocol):
        self.dut, self.protocol = dut, protocol
        self.accepted = 0
        self.stalls = 0

    async def send(self, beats: list[int], gaps) -> None:
        dut = self.dut
        self.accepted = self.stalls = 0
        wait, offered = int(gaps[0]), False
        while self.accepted < len(beats):
            await FallingEdge(dut.clk)
            if not offered:
                if wait:
                    wait -= 1
                else:
                    offered = True
                    dut.in_data.value = beats[self.accepted]
                dut.in_valid.value = int(offered)
            if _high(dut.in_ready):
                if not offered:
                    self.stalls += 1
                else:
                    self.accepted += 1
                    offered = False
                    if self.accepted < len(beats):
                        wait = int(gaps[self.accepted])
        await FallingEdge(dut.clk)
        dut.in_valid.value = 0
        if _high(dut.in_ready):
            self.protocol.violation(f"in_ready still high after the last of {len(beats)} input beats "
                                    "(a further beat would be lost)")


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
    """The out-stream's sink: takes the beats (raw bits), stalls them as told, checks the source.

    Samples at falling clock edges while ``out_valid`` is high; otherwise sleeps until
    ``out_valid`` rises, so the simulator runs unhindered while the core computes. While
    output beat ``j`` is offered it keeps ``out_ready`` low for ``gaps[j]`` cycles.
    """

    def __init__(self, dut, protocol: Protocol):
        self.dut, self.protocol = dut, protocol
        self.expect(None)

    def expect(self, gaps) -> None:
        """Start an inference: no beats yet, stall output beat ``j`` for ``gaps[j]`` cycles."""
        self.gaps, self.beats, self.stalls = gaps, [], 0
        self._wait = None  # cycles the offered beat is still refused
        self._held = None  # the beat refused last cycle: it must still be offered

    def start(self) -> None:
        cocotb.start_soon(self._run())

    def _data(self) -> int:
        try:
            return int(self.dut.out_data.value.to_unsigned())
        except ValueError:
            self.protocol.violation(f"out_data has undefined bits ({self.dut.out_data.value})")
            return 0

    async def _run(self) -> None:
        dut = self.dut
        while True:
            await FallingEdge(dut.clk)
            valid = _high(dut.out_valid)
            if self._held is not None:
                if not valid:
                    self.protocol.violation("out_valid fell before its beat was taken")
                elif self._data() != self._held:
                    self.protocol.violation("out_data changed while out_valid was high and out_ready low")
                self._held = None
            if not valid:
                await RisingEdge(dut.out_valid)
                continue
            if self.protocol.run is None:
                self.protocol.violation("out_valid high outside an inference")
            if self._wait is None:
                j = len(self.beats)
                self._wait = int(self.gaps[j]) if self.gaps is not None and j < len(self.gaps) else 0
            ready = self._wait == 0
            dut.out_ready.value = int(ready)
            if ready:
                self.beats.append(self._data())
                self._wait = None
            else:
                self._wait -= 1
                self.stalls += 1
                self._held = self._data()


class DoneWatcher:
    """Checks that ``done`` rises only during an inference and stays high for one cycle."""

    def __init__(self, dut, protocol: Protocol):
        self.dut, self.protocol = dut, protocol

    def start(self) -> None:
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.done)
            if self.protocol.run is None:
                self.protocol.violation("done high outside an inference (a second done?)")
            run, cycle = self.protocol.run, self.protocol.cycle()
            await FallingEdge(dut.clk)
            await FallingEdge(dut.clk)
            if _high(dut.done):
                where = None if run is None else f"{run}, cycle {cycle + 1}"
                self.protocol.violation("done high for more than one cycle", where)


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
        self.stall_cycles: list[int] = []
        self.outputs: list[list[int]] = []

    def check(self, v: int, got: list[int], cycles: int, core_cycles: int, stalls: int) -> None:
        self.outputs.append(got)
        self.cycles.append(cycles)
        self.core_cycles.append(core_cycles)
        self.stall_cycles.append(stalls)
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


class Bench:
    """The parts wired together: runs inferences (:meth:`infer`) and aborted ones (:meth:`abort`)."""

    def __init__(self, dut, in_beats: int, out_beats: int, limit: int):
        self.dut = dut
        self.in_beats, self.out_beats, self.limit = in_beats, out_beats, limit
        self.protocol = Protocol()
        self.driver = StreamDriver(dut, self.protocol)
        self.monitor = StreamMonitor(dut, self.protocol)
        self.watcher = DoneWatcher(dut, self.protocol)

    def start(self) -> None:
        self.monitor.start()
        self.watcher.start()

    async def _begin(self, run: str, beats: list[int], gaps) -> object:
        dut = self.dut
        await RisingEdge(dut.clk)
        dut.start.value = 1
        self.protocol.begin(run)
        self.monitor.expect(gaps[1])
        send = cocotb.start_soon(self.driver.send(beats, gaps[0]))
        await RisingEdge(dut.clk)
        dut.start.value = 0
        return send

    async def infer(self, v: int, beats: list[int], gaps) -> tuple[list[int], int, int, int]:
        """One inference: ``(output beats, cycles, the core's cycles, stall cycles)``."""
        dut, protocol = self.dut, self.protocol
        send = await self._begin(f"vector {v}", beats, gaps)
        await _wait_done(dut, self.limit)
        cycles = protocol.cycle()
        if self.driver.accepted < len(beats):
            protocol.violation(f"done after {self.driver.accepted} of {len(beats)} input beats")
        got, stalls = self.monitor.beats, self.driver.stalls + self.monitor.stalls
        if len(got) != self.out_beats:
            protocol.violation(f"{len(got)} output beats before done, expected {self.out_beats}")
        protocol.end()
        await RisingEdge(dut.clk)
        await ReadOnly()
        core_cycles = int(dut.cycles.value)
        if not send.done():
            send.cancel()
        await FallingEdge(dut.clk)
        dut.in_valid.value = 0
        self.monitor.expect(None)
        return got, cycles, core_cycles, stalls

    async def abort(self, v: int, beats: list[int], gaps, at: int) -> None:
        """Start an inference and reset the core in its cycle ``at`` (rst high for two cycles)."""
        dut = self.dut
        send = await self._begin(f"vector {v} (reset in cycle {at})", beats, gaps)
        if at > 1:
            await ClockCycles(dut.clk, at - 1)
        dut.rst.value = 1
        await RisingEdge(dut.clk)
        send.cancel()
        self.protocol.end()
        self.monitor.expect(None)
        dut.in_valid.value = 0
        dut.out_ready.value = 1
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)


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
    stall = float(os.environ.get("HWFLOW_TB_STALL") or 0)
    seed = int(os.environ.get("HWFLOW_TB_SEED") or 0)
    resets = os.environ.get("HWFLOW_TB_RESET", "") == "1"
    limit = int(os.environ.get("HWFLOW_TB_TIMEOUT") or (4 * predicted + 1000) / (1 - stall))
    checker = Checker(model, predicted)
    bench = Bench(dut, in_map.shape[0], out_map.shape[0], limit)
    rng = np.random.default_rng(seed)
    result = {"vectors": vectors, "predicted_cycles": predicted, "error": "", "resets": 0}

    weights = os.environ.get("HWFLOW_TB_WEIGHTS")
    if weights:
        dut.wload_valid.value = 0
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await _reset(dut)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    t_sim0 = get_sim_time("ns")
    bench.start()
    try:
        if weights:  # the weight-load phase, once, before the first vector
            words = read_words(weights)
            result["load_cycles"] = await WeightLoader(dut).load(words, 4 * len(words) + 1000)
            result["predicted_load_cycles"] = int(os.environ.get("HWFLOW_TB_LOAD_CYCLES") or -1)
        for v in range(vectors):
            beats = pack(inputs[v], in_map, in_bits)
            if resets:
                at = int(rng.integers(1, max(predicted, 2)))
                await bench.abort(v, beats, stream_gaps(rng, stall, len(beats), out_map.shape[0]), at)
                result["resets"] += 1
                if weights:  # reset clears ``loaded``: the image goes in again, in the same cycles
                    again = await WeightLoader(dut).load(words, 4 * len(words) + 1000)
                    if again != result["load_cycles"]:
                        bench.protocol.violation(f"the weight load after the reset took {again} cycles, "
                                                 f"the first {result['load_cycles']}")
            gaps = stream_gaps(rng, stall, len(beats), out_map.shape[0])
            got, cycles, core_cycles, stalls = await bench.infer(v, beats, gaps)
            try:
                codes = unpack(got, out_map, out_bits)
            except ValueError:
                codes = []  # wrong number of beats: a violation, and a mismatch
            checker.check(v, codes, cycles, core_cycles, stalls)
    except TimeoutError as exc:
        result["error"] = str(exc) if str(exc).startswith("weight load") else f"vector {len(checker.cycles)}: {exc}"
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    sim_cycles = round((get_sim_time("ns") - t_sim0) / PERIOD_NS)
    result.update(
        mismatches=checker.mismatches + (vectors - len(checker.cycles)),
        first_mismatch=checker.first_mismatch,
        cycles=checker.cycles,
        core_cycles=checker.core_cycles,
        stall_cycles=checker.stall_cycles,
        stall_probability=stall,
        violations=bench.protocol.messages,
        violation_count=bench.protocol.count,
        outputs=checker.outputs,
        sim_cycles=sim_cycles,
        wall_time=wall,
        cpu_time=cpu,
    )
    with open(os.environ["HWFLOW_TB_RESULT"], "w") as f:
        json.dump(result, f)
    assert not result["error"], result["error"]
