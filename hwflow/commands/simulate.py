"""``hwflow simulate``: run a BUILD's hardware in a simulator and prove it bit- and cycle-exact.

Pass means: every output code equals the integer reference's, every inference takes
exactly the predicted cycles plus the cycles its streams stalled, from start to done (the
testbench's count and the core's own counter), and the stream interface rules hold.
Exit 0 on pass, 1 on a mismatch (a result), 2 on a user error.
The result is recorded in the BUILD (``simulation.json``); the work is
:meth:`hwflow.Build.simulate` (:mod:`hwflow.sim.build_runner`).
"""

from __future__ import annotations

import json

import click

from ..config import check_positive
from ..errors import OptionError
from ..sim.build_runner import SIMULATORS, check_probability
from ._checks import checked

__all__ = ["simulate_cmd"]


@click.command("simulate")
@click.argument("build_dir", metavar="BUILD", type=click.Path(file_okay=False))
@click.option("--simulator", "-s", default="icarus", show_default=True, metavar="|".join(SIMULATORS),
              help="amaranth (no external tool), icarus (iverilog) or verilator (fastest).")
@click.option("--inputs", "inputs_path", default=None, type=click.Path(dir_okay=False),
              help="Test inputs (.npy/.npz): integer codes, or floats to quantize with the input's scale.")
@click.option("--random", "random_n", type=int, default=None, metavar="N",
              callback=checked(check_positive, "--random"), help="Run N vectors of uniform random input codes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for --random, --stall and --reset (and, plus one, --x-unique).")
@click.option("--limit", type=int, default=None, metavar="N", callback=checked(check_positive, "--limit"),
              help="Run only the first N vectors.")
@click.option("--vcd", default=None, type=click.Path(dir_okay=False), help="Write a VCD waveform to FILE.")
@click.option("--timeout", type=int, default=None, metavar="CYCLES",
              callback=checked(check_positive, "--timeout"),
              help="Cycles to wait for done per vector (default 4x the prediction + 1000).")
@click.option("--netlist", is_flag=True,
              help="Simulate the core after the target family's Yosys synthesis (synth_ecp5/synth_ice40), "
                   "with the family's cell models (icarus or verilator).")
@click.option("--stall", type=float, default=0.0, metavar="P", callback=checked(check_probability, "--stall"),
              help="Each cycle, the source drops in_valid and the sink out_ready with probability P "
                   "(0 <= P < 1); every inference must take the prediction plus its stall cycles.")
@click.option("--reset", "resets", is_flag=True,
              help="Before each vector, reset the core in a random cycle of an inference on it.")
@click.option("--x-unique", "x_unique", is_flag=True,
              help="Verilator: start registers and RAM from random values (--x-initial/--x-assign unique) "
                   "instead of their initial ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def simulate_cmd(build_dir, simulator, inputs_path, random_n, seed, limit, vcd, timeout, netlist, stall,
                 resets, x_unique, as_json):
    """Simulate BUILD and check it against the integer reference, bit- and cycle-exact.

    Without --inputs/--random, the BUILD's stored test vectors are used. The result is
    recorded in BUILD/simulation.json (the report shows it). Exit status: 0 pass,
    1 mismatch (outputs or cycles), 2 usage error.

    \b
    Examples:
      hwflow simulate build/digits_cnn --simulator verilator --random 1000
      hwflow simulate build/digits_cnn --inputs x.npy --json
      hwflow simulate build/digits_cnn --netlist --simulator verilator
      hwflow simulate build/digits_cnn --simulator verilator --random 100 --stall 0.3 --seed 4
      hwflow simulate build/digits_cnn --simulator verilator --reset --x-unique
    """
    from ..api import load
    from ..report.progress import progress

    if inputs_path is not None and random_n is not None:
        raise OptionError("give either --inputs or --random, not both")
    build = load(build_dir)
    what = f"synthesizing, then simulating the netlist in {simulator}" if netlist else f"simulating in {simulator}"
    with progress(what, quiet=as_json):
        result = build.simulate(simulator, inputs=inputs_path, random=random_n, seed=seed, limit=limit,
                                vcd=vcd, timeout=timeout, stall=stall, resets=resets, x_unique=x_unique,
                                netlist=netlist)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        click.echo(result.summary())
    return 0 if result.passed else 1
