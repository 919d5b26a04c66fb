"""``hwflow simulate``: run a BUILD's hardware in a simulator and prove it bit- and cycle-exact.

Pass means: every output code equals the integer reference's, and every inference
takes exactly the predicted cycles from start to done (the testbench's count and the
core's own counter). Exit 0 on pass, 1 on a mismatch (a result), 2 on a user error.
The result is recorded in the BUILD (``simulation.json``); the work is
:meth:`hwflow.Build.simulate` (:mod:`hwflow.sim.build_runner`).
"""

from __future__ import annotations

import json

import click

from ..config import check_positive
from ..errors import OptionError
from ..sim.build_runner import SIMULATORS
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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random.")
@click.option("--limit", type=int, default=None, metavar="N", callback=checked(check_positive, "--limit"),
              help="Run only the first N vectors.")
@click.option("--vcd", default=None, type=click.Path(dir_okay=False), help="Write a VCD waveform to FILE.")
@click.option("--timeout", type=int, default=None, metavar="CYCLES",
              callback=checked(check_positive, "--timeout"),
              help="Cycles to wait for done per vector (default 4x the prediction + 1000).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def simulate_cmd(build_dir, simulator, inputs_path, random_n, seed, limit, vcd, timeout, as_json):
    """Simulate BUILD and check it against the integer reference, bit- and cycle-exact.

    Without --inputs/--random, the BUILD's stored test vectors are used. The result is
    recorded in BUILD/simulation.json (the report shows it). Exit status: 0 pass,
    1 mismatch (outputs or cycles), 2 usage error.

    \b
    Examples:
      hwflow simulate build/digits_cnn --simulator verilator --random 1000
      hwflow simulate build/digits_cnn --inputs x.npy --json
    """
    from ..api import load
    from ..report.progress import progress

    if inputs_path is not None and random_n is not None:
        raise OptionError("give either --inputs or --random, not both")
    build = load(build_dir)
    with progress(f"simulating in {simulator}", quiet=as_json):
        result = build.simulate(simulator, inputs=inputs_path, random=random_n, seed=seed, limit=limit,
                                vcd=vcd, timeout=timeout)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=1))
    else:
        click.echo(result.summary())
    return 0 if result.passed else 1
