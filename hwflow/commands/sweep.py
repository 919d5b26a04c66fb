"""``hwflow sweep``: compile a grid of array shapes and weight widths, tabulate, mark the Pareto front."""

from __future__ import annotations

import json

import click

__all__ = ["sweep_cmd"]


@click.command("sweep")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", default="fpga-small", show_default=True,
              help="Target name (see `hwflow targets`) or a target TOML file.")
@click.option("--pe", default="4,8,16", show_default=True, metavar="LIST", help="PE values, comma-separated.")
@click.option("--simd", default="4,8", show_default=True, metavar="LIST", help="SIMD values, comma-separated.")
@click.option("--wbits", default="8,4", show_default=True, metavar="LIST", help="Weight widths, comma-separated.")
@click.option("--abits", type=int, default=8, show_default=True, help="Activation bits of every point.")
@click.option("--calib", default=None, type=click.Path(dir_okay=False),
              help="Calibration data (.npz with x, or .npy) for quantization.")
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="Test data (.npz with x and optional labels y): accuracy and agreement per point.")
@click.option("--jobs", "-j", type=int, default=None, help="Parallel worker processes (default: CPU count).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Run the points on this Dask cluster instead of local processes (pip install 'hwflow[dask]'; "
                   "the workers must see the model, data and output paths).")
@click.option("-o", "--output", "output", default=None, type=click.Path(file_okay=False),
              help="Output directory (default: sweep/<model stem>): builds, sweep.json, pareto.png.")
@click.option("--json", "as_json", is_flag=True, help="Print sweep.json instead of the table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def sweep_cmd(model, target, pe, simd, wbits, abits, calib, data, jobs, output, as_json, quiet, scheduler):
    """Compile MODEL for every PE x SIMD x wbits combination, in parallel processes
    (or on a Dask cluster: --scheduler tcp://HOST:PORT).

    Prints latency (cycles and µs at the target clock), estimated LUT/FF/DSP/BRAM,
    weight storage and, with --data, accuracy (or agreement without labels), and marks
    the Pareto front: points no other point beats in latency, LUTs, DSPs and accuracy
    at once. The front is plotted as pareto.png in the output directory. Exit status 1
    when no point compiles (e.g. none fits the target).

    \b
    Example:
      hwflow sweep examples/models/digits_mlp.onnx --pe 4,8,16 --simd 4,8 --wbits 8,4 \\
          --calib examples/models/digits_mlp_calib.npz --data examples/models/digits_mlp_test.npz -j 2
    """
    from ..report.sweep import format_table, run_sweep

    doc = run_sweep(model, target, pe, simd, wbits, abits=abits, calib=calib, data=data, jobs=jobs,
                    out_dir=output, quiet=quiet, scheduler=scheduler)
    failed = all(r.get("error") for r in doc["rows"])
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return 1 if failed else 0
    click.echo(f"sweep of {doc['model']} on {doc['target']} ({len(doc['rows'])} points) → {doc['path']}")
    click.echo(format_table(doc["rows"], doc["clock_mhz"]))
    click.echo(f"Pareto (*): not beaten in {', '.join(doc['objectives'])} at once by any other point")
    click.echo(f"plot: {doc['plot']}")
    if failed:
        click.echo("hwflow: no point of the sweep compiled (see the errors above)", err=True)
    return 1 if failed else 0
