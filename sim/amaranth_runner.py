"""Drive an accelerator core in Amaranth's own simulator.

The core has the port protocol of :class:`hwflow.rtl.accelerator.Accelerator`: pulse
``start``; stream the input beats in (valid/ready); the core streams the output beats out
and pulses ``done``; ``cycles`` then holds the cycles from the cycle in which ``start``
was sampled high to the cycle in which ``done`` is high. Codes become beats and back
through the stream maps (:mod:`.beats`).

The testbench is a single loop that samples every port at each clock edge, so the
cycle count it keeps is exact by construction: ``start`` is high during cycle 0, and
``done`` is high in cycle ``k``, the count. With ``stall`` the stream partners stall as in
the cocotb testbench (:func:`~hwflow.sim.beats.stream_gaps`, drawn in the same order from
the same seed: the same stalls), and every inference must take the prediction plus its
stall cycles.

A core with a weight-load port is loaded first, counted the same way: ``wload_valid`` is
high from cycle 0 (one word a cycle), and the first edge at which ``loaded`` is sampled
high ends cycle ``k``, the load's count.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .beats import identity_map, pack, stream_gaps, unpack
from .result import SimResult, compare_outputs

__all__ = ["run_amaranth"]


def run_amaranth(
    dut,
    inputs: np.ndarray,
    expected: np.ndarray | None,
    predicted_cycles: int,
    *,
    output_size: int | None = None,
    stream: tuple[np.ndarray, np.ndarray] | None = None,
    vcd: str | Path | None = None,
    timeout: int | None = None,
    stall: float = 0.0,
    seed: int = 0,
    load: tuple[list[int], int] | None = None,
) -> SimResult:
    """Stream ``inputs`` through ``dut`` and compare with ``expected``.

    Parameters
    ----------
    dut : amaranth.lib.wiring.Component
        The core (a fresh instance; the simulator elaborates it).
    inputs : numpy.ndarray
        ``(vectors, input_size)`` integer codes (trailing dimensions are flattened).
    expected : numpy.ndarray or None
        ``(vectors, output_size)`` reference codes, or ``None`` to only collect outputs.
    predicted_cycles : int
        The schedule's start→done prediction.
    output_size : int, optional
        Codes per vector on the out-stream (default: ``expected``'s row size).
    stream : (in_map, out_map), optional
        The beat maps (:meth:`hwflow.schedule.Program.stream_maps`); default one code per beat.
    vcd : path, optional
        Write a VCD waveform here.
    timeout : int, optional
        Cycles to wait for ``done`` per vector before giving up (default
        ``4 * predicted_cycles + 1000``, divided by ``1 - stall``).
    stall : float
        Probability that a stream partner stalls in a cycle.
    seed : int
        Seed of the stalls.
    load : (words, predicted_cycles), optional
        The weight image to stream into the weight-load port first (a core with
        ``program.weight_load``), and the load cycles the schedule predicts.

    Returns
    -------
    SimResult
    """
    from amaranth.sim import Simulator

    inputs = np.asarray(inputs)
    vectors = inputs.shape[0]
    inputs = inputs.reshape(vectors, -1)
    if output_size is None:
        if expected is None:
            raise ValueError("give output_size when expected is None")
        output_size = int(np.asarray(expected).reshape(vectors, -1).shape[1])
    limit = timeout if timeout is not None else int((4 * int(predicted_cycles) + 1000) / (1 - stall))
    rng = np.random.default_rng(seed)
    in_map, out_map = stream if stream is not None else (identity_map(inputs.shape[1]), identity_map(output_size))
    in_bits = len(dut.in_data) // in_map.shape[1]
    out_bits = len(dut.out_data) // out_map.shape[1]

    got: list[list[int]] = []
    counts: list[int] = []
    core_counts: list[int] = []
    stalls: list[int] = []
    total = {"ticks": 0}
    loaded_in: list[int] = []

    async def load_weights(ctx, words: list[int], limit: int) -> int:
        """Stream ``words`` into the weight-load port; the cycles until ``loaded``."""
        ctx.set(dut.wload_valid, 1)
        ctx.set(dut.wload_data, words[0])
        sent = k = 0
        while True:
            _, _, ready, loaded = await ctx.tick().sample(dut.wload_ready, dut.loaded)
            if loaded:
                break
            if ready and sent < len(words):
                sent += 1
                if sent < len(words):
                    ctx.set(dut.wload_data, words[sent])
                else:
                    ctx.set(dut.wload_valid, 0)
            k += 1
            if k > limit:
                raise TimeoutError(f"weight load: no loaded after {limit} cycles ({sent}/{len(words)} words accepted)")
        ctx.set(dut.wload_valid, 0)
        return k

    async def testbench(ctx):
        ticks = 0
        ctx.set(dut.out_ready, 1)
        for _ in range(2):  # a couple of idle cycles after reset
            await ctx.tick()
            ticks += 1
        if load is not None:
            k = await load_weights(ctx, load[0], 4 * len(load[0]) + 1000)
            loaded_in.append(k)
            ticks += k + 1
        for v in range(vectors):
            codes = pack(inputs[v], in_map, in_bits)
            gaps_in, gaps_out = stream_gaps(rng, stall, len(codes), out_map.shape[0])
            outs: list[int] = []
            sent, offered, wait_in, wait_out, stalled = 0, False, int(gaps_in[0]), None, 0
            ctx.set(dut.start, 1)
            k = 0  # cycles since the one in which start is high
            while True:
                # The source offers beat ``sent`` after its gap and holds it until taken; the
                # sink refuses each output beat for its gap.
                if sent < len(codes) and not offered:
                    if wait_in:
                        wait_in -= 1
                    else:
                        offered = True
                        ctx.set(dut.in_data, codes[sent])
                ctx.set(dut.in_valid, int(offered))
                ovalid = ctx.get(dut.out_valid)
                if ovalid and wait_out is None:
                    wait_out = int(gaps_out[len(outs)]) if len(outs) < len(gaps_out) else 0
                ordy = not ovalid or wait_out == 0
                ctx.set(dut.out_ready, int(ordy))
                ready, odata = ctx.get(dut.in_ready), ctx.get(dut.out_data)
                stalled += (ready and not offered) + (ovalid and not ordy)
                if ctx.get(dut.done):
                    break
                await ctx.tick()
                ticks += 1
                if k == 0:
                    ctx.set(dut.start, 0)
                if offered and ready:
                    sent, offered = sent + 1, False
                    wait_in = int(gaps_in[sent]) if sent < len(codes) else 0
                if ovalid:
                    if ordy:
                        outs.append(int(odata))
                        wait_out = None
                    else:
                        wait_out -= 1
                k += 1
                if k > limit:
                    raise TimeoutError(
                        f"vector {v}: no done after {limit} cycles "
                        f"({sent}/{len(codes)} input beats accepted, {len(outs)} output beats)"
                    )
            ctx.set(dut.in_valid, 0)
            counts.append(k)
            stalls.append(stalled)
            await ctx.tick()
            ticks += 1
            core_counts.append(int(ctx.get(dut.cycles)))  # as the core's port says after done
            try:
                got.append(unpack(outs, out_map, out_bits))
            except ValueError:
                got.append([])  # wrong number of beats: a mismatch
        total["ticks"] = ticks

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    t0, c0 = time.perf_counter(), time.process_time()
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    ref = None if expected is None else np.asarray(expected).reshape(vectors, -1)
    mismatches, first = compare_outputs(got, ref)
    if expected is None:
        mismatches = sum(len(o) != output_size for o in got)
        first = "" if not mismatches else f"expected {output_size} output codes per vector"
    outputs = np.array(got, dtype=np.int64) if all(len(o) == output_size for o in got) else None
    return SimResult(
        simulator="amaranth",
        vectors=vectors,
        mismatches=mismatches,
        cycles=counts,
        core_cycles=core_counts,
        predicted_cycles=int(predicted_cycles),
        sim_cycles=total["ticks"],
        wall_time=wall,
        cpu_time=cpu,
        outputs=outputs,
        first_mismatch=first,
        stall_cycles=stalls,
        stall_probability=float(stall),
        load_cycles=loaded_in[0] if loaded_in else None,
        predicted_load_cycles=None if load is None else int(load[1]),
    )
