"""``hwflow synth BUILD``: Yosys + nextpnr on a build directory, checked against the target."""

from __future__ import annotations

import json

import click

from ..synth.flow import synthesize
from ..synth.report import format_report, misses

__all__ = ["synth_cmd"]


@click.command("synth")
@click.argument("build", type=click.Path(file_okay=False, path_type=str))
@click.option("--no-pnr", is_flag=True,
              help="Run Yosys only: resources before packing, no Fmax.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="nextpnr's placer seed (Fmax varies a little with it; recorded in BUILD/synth.json).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report (as recorded in BUILD/synth.json) as JSON.")
def synth_cmd(build: str, no_pnr: bool, seed: int, as_json: bool) -> int:
    """Synthesize BUILD with Yosys and nextpnr and check it against its target.

    Prints LUT, FF, DSP and BRAM used against available and Fmax against the target's
    clock goal, and records the report in BUILD/synth.json (tool outputs and logs in
    BUILD/synth/); `hwflow report` shows it.

    \b
    Exit codes:
      0  the design fits (and, with place and route, meets the clock goal)
      1  it does not: one line on stderr names each missed limit and by how much
      2  bad input or a missing/failing tool (one line on stderr)

    \b
    Examples:
      hwflow synth build/digits_cnn
      hwflow synth build/digits_cnn --no-pnr --json
      hwflow synth build/digits_cnn --seed 7
    """
    from ..report.progress import progress

    with progress("synthesizing (Yosys" + (")" if no_pnr else ", then nextpnr)"), quiet=as_json):
        report = synthesize(build, pnr=not no_pnr, seed=seed)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        took = ", ".join(f"{tool} {s:.1f} s" for tool, s in report["seconds"].items())
        seeded = f", seed {seed}" if report["source"] == "nextpnr" else ""
        click.echo(f"{report['top']} on {report['target']} ({report['device']}{seeded}); {took}")
        click.echo(format_report(report))
    missed = misses(report)
    if missed:
        verb = "does not fit" if not report["fits"] else "does not meet timing"
        click.echo(f"hwflow: {report['top']} {verb} on {report['target']}: "
                   + "; ".join(missed), err=True)
        return 1
    if not as_json:
        click.echo("fits" + (" and meets timing" if report["meets_timing"] else ""))
    return 0
