"""Simulate a BUILD and record the result in it (``hwflow simulate``, ``Build.simulate``).

Pass means: every output code equals the integer reference's, every inference takes
exactly the predicted cycles plus the cycles its streams stalled, from start to done (the
testbench's count and the core's own counter), and the stream interface rules hold
(:mod:`.tb_accelerator`). A BUILD whose weights are loaded after reset
(manifest ``load``) streams ``weights_load.hex`` into the weight-load port first, and the
load must take exactly its predicted cycles (after a ``--reset`` too: reset clears ``loaded``).

Simulators: ``icarus`` and ``verilator`` run the BUILD's Verilog file through cocotb
(:mod:`.cocotb_runner`); ``amaranth`` rebuilds the Amaranth design by re-scheduling
``quant.json`` with the recorded target and schedule options (checked against
``schedule.json``) and runs Amaranth's simulator (:mod:`.amaranth_runner`).

Beyond the RTL with an always-ready partner (all but ``stall`` need Icarus or Verilator):

- ``netlist``: the core after the target family's Yosys synthesis, with the family's cell
  models (:mod:`hwflow.synth.netlist`);
- ``stall``: the source drops ``in_valid`` and the sink ``out_ready`` with this probability
  each cycle (seeded by ``seed``);
- ``resets``: before each vector, an inference reset in a random cycle;
- ``x_unique``: Verilator only, registers and RAM start from random values (seed
  ``seed + 1``), see :mod:`.cocotb_runner`.

The result is recorded as ``BUILD/simulation.json`` (:meth:`hwflow.build.BuildDir.record`):
:meth:`SimResult.to_json` plus ``inputs``, which says what was run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import OptionError, ToolError
from .result import SimResult

__all__ = ["SIMULATORS", "check_simulator", "simulate", "run_build"]

SIMULATORS = ("amaranth", "icarus", "verilator")


def check_simulator(simulator: str) -> None:
    """OptionError unless ``simulator`` is one of :data:`SIMULATORS`; ToolError if it is missing."""
    if simulator not in SIMULATORS:
        raise OptionError(f"unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}")
    if simulator != "amaranth":
        from .cocotb_runner import require_simulator

        require_simulator(simulator)


def check_probability(value, name: str = "stall") -> float:
    """``value`` as a float in [0, 1); OptionError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise OptionError(f"{name} must be a probability with 0 <= P < 1, not {value!r}")
    return float(value)


def run_build(build, simulator: str, inputs: np.ndarray, expected: np.ndarray | None, *,
              vcd: str | Path | None = None, timeout: int | None = None, stall: float = 0.0,
              seed: int = 0, resets: bool = False, x_unique: bool = False,
              netlist=None) -> SimResult:
    """Stream ``inputs`` through a loaded BUILD's hardware and compare with ``expected``.

    Parameters
    ----------
    build : hwflow.build.BuildDir
    simulator : {"amaranth", "icarus", "verilator"}
    inputs : numpy.ndarray
        ``(vectors, *input_shape[1:])`` input codes, in the model's own layout.
    expected : numpy.ndarray or None
        The reference's output codes for them (None: only collect outputs).
    vcd : path, optional
        Write a VCD waveform here.
    timeout : int, optional
        Cycles to wait for done per vector (default 4x the prediction + 1000).
    stall, seed, resets, x_unique :
        See the module docstring.
    netlist : hwflow.synth.netlist.SimNetlist, optional
        Simulate this netlist of the core instead of its RTL.

    Returns
    -------
    SimResult
    """
    predicted = build.predicted_cycles
    size = build.manifest["output_size"]
    spec = build.manifest.get("load")
    load = None
    if spec:  # weights in a memory the bitstream cannot initialise: the image goes in first
        from .beats import read_words

        load = (read_words(build.path / spec["file"]), int(spec["cycles"]))
    if simulator == "amaranth":
        from ..rtl.accelerator import Accelerator
        from .amaranth_runner import run_amaranth

        try:
            return run_amaranth(Accelerator(build.program()), inputs, expected, predicted, output_size=size,
                                stream=build.stream_maps(), vcd=vcd, timeout=timeout, stall=stall, seed=seed,
                                load=load)
        except TimeoutError as exc:
            raise ToolError(f"amaranth simulation of {build.top}: {exc}") from None
    from .cocotb_runner import run_cocotb

    verilog, sim_dir, models, includes, defines = build.verilog_path, simulator, (), (), {}
    if netlist is not None:
        verilog, models, includes = netlist.path, netlist.models, netlist.includes
        defines = netlist.defines(simulator)
        sim_dir = f"netlist-{netlist.family}-{simulator}"
    result = run_cocotb(verilog, build.top, inputs, expected, predicted, simulator, build.path / "sim_build" / sim_dir,
                        output_size=size, stream=build.stream_maps(), vcd=vcd, timeout=timeout, stall=stall,
                        seed=seed, resets=resets, x_seed=seed + 1 if x_unique else None, models=models,
                        includes=includes, defines=defines, load=load)
    if netlist is not None:
        result.design = f"{netlist.family} netlist"
    return result


def simulate(build, simulator: str = "icarus", *, inputs=None, random: int | None = None, seed: int = 0,
             limit: int | None = None, vcd: str | Path | None = None, timeout: int | None = None,
             record: bool = True, stall: float = 0.0, resets: bool = False, x_unique: bool = False,
             netlist: bool = False) -> SimResult:
    """Simulate a BUILD against the integer reference and record the result.

    Parameters
    ----------
    build : hwflow.build.BuildDir, str or Path
        The BUILD (a path is loaded and checked first).
    simulator : {"amaranth", "icarus", "verilator"}
    inputs : array-like, str or Path, optional
        Input vectors: integer codes, or floats quantized with the input's scale and zero
        point (:func:`hwflow.data.input_codes`); a path is a ``.npy``/``.npz`` file of them.
        Default: the BUILD's stored test vectors.
    random : int, optional
        Run this many vectors of uniform random codes instead.
    seed : int
        Seed of ``random``, of the stalls and reset cycles, and (plus one) of the random
        initial values.
    limit : int, optional
        Run only the first ``limit`` vectors.
    vcd : path, optional
        Write a VCD waveform here.
    timeout : int, optional
        Cycles to wait for done per vector (default 4x the prediction + 1000).
    record : bool
        Write the result to ``BUILD/simulation.json`` (replacing an earlier one).
    stall : float
        Probability per cycle that the source drops ``in_valid`` and the sink ``out_ready``.
    resets : bool
        Before each vector, reset the core in a random cycle of an inference on it.
    x_unique : bool
        Verilator: start registers and RAM from random values instead of their initial ones.
    netlist : bool
        Simulate the core as the target family's Yosys synthesis leaves it (Icarus or
        Verilator, with the family's cell models).

    Returns
    -------
    SimResult
        ``passed`` is False on a mismatch in outputs or cycles (a result, not an error).

    Raises
    ------
    OptionError, DataError, BuildError, TargetError, ToolError
        Bad options or inputs, a bad BUILD, a target without a device for ``netlist``,
        a missing simulator or tool, or a failed run.
    """
    from ..build import load_build
    from ..data import input_codes, load_inputs, random_codes

    if inputs is not None and random is not None:
        raise OptionError("give either inputs or random vectors, not both")
    for name, value in (("random", random), ("limit", limit), ("timeout", timeout)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OptionError(f"{name} must be a positive integer, not {value!r}")
    stall = check_probability(stall)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptionError(f"seed must be a non-negative integer, not {seed!r}")
    if simulator == "amaranth":
        for name, on in (("--netlist", netlist), ("--reset", resets), ("--x-unique", x_unique)):
            if on:
                raise OptionError(f"{name} runs in icarus or verilator, not in amaranth")
    if x_unique and simulator != "verilator":
        raise OptionError("--x-unique needs --simulator verilator (random initial values)")
    check_simulator(simulator)  # a missing tool is reported before any work
    build = load_build(build)
    if inputs is None and random is None:
        x, expected = build.inputs(), build.expected()
        what = f"the BUILD's {len(x)} test vectors"
    else:
        from ..quant.reference import run_int_batch

        qg = build.qgraph()
        tin, shape = qg.tensors[qg.input], qg.input_shape
        if random is not None:
            x, what = random_codes(tin, random, seed, shape), f"{random} uniform random vectors (seed {seed})"
        elif isinstance(inputs, (str, Path)):
            x, what = load_inputs(inputs, tin, shape), f"inputs from {Path(inputs).name}"
        else:
            x = input_codes(inputs, tin, shape=shape)
            what = f"{len(x)} given vectors"
        expected = run_int_batch(qg, x).astype(np.int64)
    if limit is not None and limit < len(x):
        x, expected = x[:limit], expected[:limit]
        what += f", the first {limit}"
    sim_netlist = None
    if netlist:
        from ..synth.netlist import sim_netlist as synthesize_netlist

        sim_netlist = synthesize_netlist(build)
    result = run_build(build, simulator, x, expected, vcd=vcd, timeout=timeout, stall=stall, seed=seed,
                       resets=resets, x_unique=x_unique, netlist=sim_netlist)
    if sim_netlist is not None:
        result.extra["synthesis_seconds"] = round(sim_netlist.seconds, 2)
    if record:
        build.record("simulation", {**result.to_json(), "inputs": what})
    return result
