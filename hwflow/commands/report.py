"""``hwflow report``: one self-contained HTML page explaining a BUILD."""

from __future__ import annotations

import click

__all__ = ["report_cmd"]


@click.command("report")
@click.argument("build_dir", metavar="BUILD", type=click.Path(file_okay=False))
@click.option("-o", "--output", "output", default=None, type=click.Path(dir_okay=False),
              help="HTML file to write (default: BUILD/report.html).")
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="Test data (.npz with x and optional labels y): float vs quantized accuracy and agreement.")
@click.option("--simulate", default=None, metavar="amaranth|icarus|verilator",
              help="Include a simulation in this simulator: the one recorded in BUILD, else simulate "
                   "the BUILD's test vectors now (and record the result).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def report_cmd(build_dir, output, data, simulate, quiet):
    """Write an HTML report of BUILD: weight histograms against the fixed-point grid,
    per-layer quantization error and SQNR, accuracy (--data), the schedule as a Gantt
    chart, the memory map, estimated vs synthesized resources (after `hwflow synth`)
    and the simulation result (after `hwflow simulate`). Everything is read from BUILD,
    which keeps a copy of its model, so it works from any directory. Images are
    embedded; the file stands alone.

    \b
    Example:
      hwflow compile examples/models/digits_cnn.onnx --calib examples/models/digits_cnn_calib.npz -o build/cnn
      hwflow synth build/cnn
      hwflow report build/cnn --data examples/models/digits_cnn_test.npz --simulate verilator
    """
    from ..report import write_report

    path = write_report(build_dir, output, data=data, simulate=simulate, quiet=quiet)
    click.echo(f"report written to {path}")
