"""``hwflow compile``: ONNX model → BUILD directory (Verilog, schedule, vectors, testbench)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import OptionError
from ._prune_options import prune_options
from ._quant_options import quant_options

__all__ = ["compile_cmd"]


def _bits(n: int) -> str:
    return f"{n / 1024:.1f} kbit" if n >= 1024 else f"{n} bit"


def summary(m: dict) -> str:
    """The short report ``hwflow compile`` prints."""
    ops = [o["op"] for o in m["ops"]]
    opcount = ", ".join(f"{ops.count(op)} {op}" for op in dict.fromkeys(ops))
    host = m["host_tail"]["ops"]
    mem = m["memory"]
    est = m.get("estimate") or {}
    est_text = ", ".join(f"{k} {v}" for k, v in est.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
    ratio = m["cycles"] / m["ideal_cycles"] if m["ideal_cycles"] else float("nan")
    lines = [
        f"compiled {Path(m['model']).name} for {m['target']} → {m['path']}",
        f"  layers    {len(ops)} ({opcount})" + (f"; on the host: {', '.join(host)}" if host else ""),
        f"  array     PE {m['pe']} x SIMD {m['simd']}",
        f"  cycles    {m['cycles']:,} predicted per inference "
        f"(ideal {m['ideal_cycles']:,.0f} = {m['macs']:,} MACs / {m['pe'] * m['simd']}; {ratio:.2f}x)",
        f"  memory    {_bits(mem['total_bits'])} (weights {_bits(mem['weight_rom_bits'])}, "
        f"activations {_bits(mem['activation_bits'])}, channel params {_bits(mem['channel_rom_bits'])}"
        + (f", LUT {_bits(mem['lut_rom_bits'])}" if mem["lut_rom_bits"] else "") + ")",
    ]
    if est_text:
        lines.append(f"  estimate  {est_text}")
    if m.get("pruning"):
        lines.append(f"  pruning   {json.dumps(m['pruning'].get('settings', {}))}")
    lines.append(f"  verilog   {m['verilog']} ({m['verilog_lines']:,} lines), "
                 f"{m['vectors']['count']} test vectors; {sum(m['compile_seconds'].values()):.2f} s")
    lines.append(f"  next      hwflow simulate {m['path']}")
    return "\n".join(lines)


@click.command("compile")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", "-t", default="fpga-small", show_default=True,
              help="Target name (see `hwflow targets`) or a target TOML file.")
@click.option("-o", "--output", "output", default=None, type=click.Path(file_okay=False),
              help="BUILD directory to write (default: build/<model stem>). Written atomically.")
@click.option("--calib", default=None, type=click.Path(dir_okay=False),
              help="Calibration data (.npz with x, or .npy); its first samples become the test vectors.")
@click.option("--pe", type=int, default=None, help="Output channels in parallel (default: the target's).")
@click.option("--simd", type=int, default=None, help="Inputs per PE in parallel (default: the target's).")
@click.option("--top", default=None, help="Verilog top module name (default: from the model file name).")
@click.option("--vectors", type=int, default=8, show_default=True, help="Test vectors to store in BUILD.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random test vectors (without --calib).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of the summary.")
@click.option("--report", "report", is_flag=True, help="Also write the HTML report, BUILD/report.html (see `hwflow report`).")
@quant_options
@prune_options
def compile_cmd(model, target, output, calib, pe, simd, top, vectors, seed, as_json, **options):
    """Compile MODEL (ONNX) into hardware: Verilog, schedule, test vectors and a testbench.

    \b
    Example:
      hwflow compile examples/models/digits_cnn.onnx --calib examples/models/digits_cnn_calib.npz
      hwflow simulate build/digits_cnn --simulator verilator
    """
    from ..flow import compile_model

    for name, value in (("--pe", pe), ("--simd", simd)):
        if value is not None and value < 1:
            raise OptionError(f"{name} must be a positive integer, not {value!r}")
    if vectors < 1:
        raise OptionError(f"--vectors must be a positive integer, not {vectors!r}")
    from ..flow import STEPS
    from ..report.progress import progress

    report = options.pop("report", False)
    with progress("compiling: load", total=len(STEPS), quiet=as_json) as bar:
        names = [n for n, _ in STEPS]

        def step_done(name, _seconds):
            bar.advance()
            i = names.index(name) + 1
            if i < len(names):
                bar.update(description=f"compiling: {names[i]}")

        manifest = compile_model(model, target, output, None, calib, pe, simd, top=top, vectors=vectors,
                                 seed=seed, options=options, on_step=step_done)
    if as_json:
        click.echo(json.dumps(manifest, indent=1))
    else:
        click.echo(summary(manifest))
    if report:
        from ..report import write_report

        path = write_report(manifest["path"], quiet=as_json)
        click.echo(f"  report    {path}", err=as_json)
