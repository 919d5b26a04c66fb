"""``hwflow simulate``: run a BUILD's hardware in a simulator and prove it bit- and cycle-exact.

Pass means: every output code equals the integer reference's, and every inference
takes exactly the predicted cycles from start to done (the testbench's count and the
core's own counter). Exit 0 on pass, 1 on a mismatch (a result), 2 on a user error.

Simulators: ``icarus`` and ``verilator`` run the BUILD's Verilog file through cocotb;
``amaranth`` rebuilds the Amaranth design by re-scheduling ``quant.json`` with the
recorded target and array shape (checked against ``schedule.json``) and runs
Amaranth's simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import OptionError

__all__ = ["simulate_cmd", "simulate_build"]

SIMULATORS = ("amaranth", "icarus", "verilator")


def simulate_build(build, simulator: str = "icarus", inputs=None, expected=None, *,
                   vcd: str | Path | None = None, timeout: int | None = None):
    """Simulate a loaded BUILD (:class:`hwflow.flow.Build`) on ``inputs``.

    ``inputs`` defaults to the BUILD's stored vectors and ``expected`` to their stored
    reference outputs; give both (or use :func:`hwflow.flow.reference_outputs`).

    Returns
    -------
    hwflow.sim.result.SimResult
    """
    import numpy as np

    if simulator not in SIMULATORS:
        raise OptionError(f"unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}")
    if inputs is None:
        inputs, expected = build.inputs(), build.expected()
    inputs = np.asarray(inputs)
    predicted = build.predicted_cycles
    if simulator == "amaranth":
        from ..rtl.accelerator import Accelerator
        from ..sim.amaranth_runner import run_amaranth

        from ..errors import ToolError

        try:
            return run_amaranth(Accelerator(build.program()), inputs, expected, predicted,
                                output_size=build.manifest["output_size"], stream=build.stream_maps(),
                                vcd=vcd, timeout=timeout)
        except TimeoutError as exc:
            raise ToolError(f"amaranth simulation of {build.top}: {exc}") from None
    from ..sim.cocotb_runner import run_cocotb

    return run_cocotb(build.verilog_path, build.top, inputs, expected, predicted, simulator,
                      build.path / "sim_build" / simulator,
                      output_size=build.manifest["output_size"], stream=build.stream_maps(),
                      vcd=vcd, timeout=timeout)


@click.command("simulate")
@click.argument("build_dir", metavar="BUILD", type=click.Path(file_okay=False))
@click.option("--simulator", "-s", default="icarus", show_default=True, metavar="|".join(SIMULATORS),
              help="amaranth (no external tool), icarus (iverilog) or verilator (fastest).")
@click.option("--inputs", "inputs_path", default=None, type=click.Path(dir_okay=False),
              help="Test inputs (.npy/.npz): integer codes, or floats to quantize with the input's scale.")
@click.option("--random", "random_n", type=int, default=None, metavar="N",
              help="Run N vectors of uniform random input codes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random.")
@click.option("--limit", type=int, default=None, metavar="N", help="Run only the first N vectors.")
@click.option("--vcd", default=None, type=click.Path(dir_okay=False), help="Write a VCD waveform to FILE.")
@click.option("--timeout", type=int, default=None, metavar="CYCLES",
              help="Cycles to wait for done per vector (default 4x the prediction + 1000).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def simulate_cmd(build_dir, simulator, inputs_path, random_n, seed, limit, vcd, timeout, as_json):
    """Simulate BUILD and check it against the integer reference, bit- and cycle-exact.

    Without --inputs/--random, the BUILD's stored test vectors are used. Exit status:
    0 pass, 1 mismatch (outputs or cycles), 2 usage error.

    \b
    Examples:
      hwflow simulate build/digits_cnn --simulator verilator --random 1000
      hwflow simulate build/digits_cnn --inputs x.npy --json
    """
    from ..flow import load_build, load_inputs, random_codes, reference_outputs

    if simulator not in SIMULATORS:
        raise OptionError(f"unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}")
    if inputs_path is not None and random_n is not None:
        raise OptionError("give either --inputs or --random, not both")
    for name, value in (("--random", random_n), ("--limit", limit), ("--timeout", timeout)):
        if value is not None and value < 1:
            raise OptionError(f"{name} must be a positive integer, not {value!r}")
    build = load_build(build_dir)
    if simulator != "amaranth":
        from ..sim.cocotb_runner import require_simulator

        require_simulator(simulator)  # a missing tool is reported before any work
    if inputs_path is None and random_n is None:
        inputs, expected = build.inputs(), build.expected()
    else:
        qg = build.qgraph()
        if inputs_path is not None:
            inputs = load_inputs(inputs_path, build)
        else:
            inputs = random_codes(qg.tensors[qg.input], random_n, seed)
        expected = reference_outputs(qg, inputs)
    if limit is not None:
        inputs, expected = inputs[:limit], expected[:limit]
    from ..report.progress import progress

    with progress(f"simulating {len(inputs)} vectors in {simulator}", quiet=as_json):
        result = simulate_build(build, simulator, inputs, expected, vcd=vcd, timeout=timeout)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        click.echo(result.summary())
    return 0 if result.passed else 1
