"""Run the Accelerator in the Amaranth simulator on code vectors (a test helper)."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from hwflow.rtl.accelerator import Accelerator
from hwflow.sim.beats import pack, unpack

__all__ = ["assert_exact", "simulate"]


def simulate(program, inputs, stall: int = 0, seed: int = 0, vcd: str | None = None, timeout: int | None = None,
             stalls: list | None = None, watch=None):
    """Stream each input vector through a fresh run of the accelerator.

    Parameters
    ----------
    program : Program
    inputs : sequence of numpy.ndarray
        Input codes (any shape with ``program.input_size`` elements, NCHW order).
    stall : int
        0: stream partner never stalls. ``n > 0``: ``in_valid``/``out_ready`` are dropped at
        random about one cycle in ``n``.
    seed : int
        Seed for the random stalls.
    stalls : list, optional
        Gets each input's stall cycles appended: cycles with ``in_ready`` high and
        ``in_valid`` low, or ``out_valid`` high and ``out_ready`` low.
    watch : callable, optional
        ``watch(ctx, dut)`` once a cycle, before the clock edge (to observe internal signals).

    Returns
    -------
    outputs : list of numpy.ndarray
        Flat output codes per input, NCHW order.
    cycles : list of int
        The ``cycles`` port at ``done`` for each input.
    measured : list of int
        Cycles counted by the testbench from ``start`` sampled to ``done``.
    """
    dut = Accelerator(program)
    rng = np.random.default_rng(seed)
    in_map, out_map = program.stream_maps()
    vectors = [pack(x, in_map, program.in_bits) for x in inputs]
    n_out = program.output_beats
    limit = timeout or (program.cycles * (4 if stall else 1) + 1000)
    results = {"out": [], "cycles": [], "measured": []}

    async def bench(ctx):
        for vec in vectors:
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            t = 1
            i = 0
            outs = []
            done = False
            stalled = 0
            while not done:
                if t > limit:
                    raise RuntimeError(f"accelerator did not finish within {limit} cycles")
                iv = i < len(vec) and not (stall and rng.integers(stall) == 0)
                ctx.set(dut.in_valid, int(iv))
                if iv:
                    ctx.set(dut.in_data, vec[i])
                ordy = not (stall and rng.integers(stall) == 0)
                ctx.set(dut.out_ready, int(ordy))
                stalled += (ctx.get(dut.in_ready) and not iv) + (ctx.get(dut.out_valid) and not ordy)
                if ctx.get(dut.done):
                    results["cycles"].append(ctx.get(dut.cycles))
                    results["measured"].append(t)
                    done = True
                if iv and ctx.get(dut.in_ready):
                    i += 1
                if ordy and ctx.get(dut.out_valid):
                    outs.append(ctx.get(dut.out_data))
                if watch is not None:
                    watch(ctx, dut)
                await ctx.tick()
                t += 1
            ctx.set(dut.in_valid, 0)
            if stalls is not None:
                stalls.append(stalled)
            if len(outs) != n_out:
                raise RuntimeError(f"got {len(outs)} output beats, expected {n_out}")
            results["out"].append(np.array(unpack(outs, out_map, program.out_bits), dtype=np.int64))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return results["out"], results["cycles"], results["measured"]


def assert_exact(program, qgraph, inputs, msg: str = "") -> None:
    """Run ``inputs`` through the accelerator (:func:`simulate`) and check every output equals
    the integer reference's (``run_int``) and every inference takes ``program.cycles``."""
    from hwflow.quant.reference import run_int

    outs, cycles, measured = simulate(program, inputs)
    for x, o in zip(inputs, outs):
        np.testing.assert_array_equal(o, np.asarray(run_int(qgraph, x)).reshape(-1), err_msg=msg)
    assert cycles == measured == [program.cycles] * len(inputs), msg
