"""``hwflow compile``: ONNX model → BUILD directory (Verilog, schedule, vectors, testbench)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import FUSE_MODES, ScheduleConfig, check_positive
from ._checks import checked
from ._prune_options import prune_config, prune_options
from ._quant_options import auto_bits_config, quant_config, quant_options

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
        f"(ideal {m['ideal_cycles']:,.0f} = {m['macs']:,} MACs on {m['pe'] * m['simd']} MAC lanes"
        + (f" and {m['xnor_lanes']:,} XNOR lanes" if m.get("xnor_lanes") else "") + f"; {ratio:.2f}x)",
        f"  memory    {_bits(mem['total_bits'])} (weights {_bits(mem['weight_rom_bits'])}, "
        f"activations {_bits(mem['activation_bits'])}, channel params {_bits(mem['channel_rom_bits'])}"
        + (f", LUT {_bits(mem['lut_rom_bits'])}" if mem["lut_rom_bits"] else "") + ")",
    ]
    if est_text:
        lines.append(f"  estimate  {est_text}")
    if m.get("lanes"):
        groups: dict = {}  # the array's lanes, and the XNOR unit's (rtl/xnor_array.py) if any
        for l in m["lanes"]:
            groups.setdefault(l["lane"], []).append(l)
        for i, ln in enumerate(groups.values()):
            fmts = ", ".join(f"{l['layer']} {l['weights']}" for l in ln)
            which = "for every layer" if len(groups) == 1 else "for"
            lines.append(f"  {'lanes' if i == 0 else '':<9} {ln[0]['lane']} ({ln[0]['luts']} LUTs, {ln[0]['dsps']} DSPs) "
                         f"{which}: {fmts}")
    if m.get("load"):
        ld = m["load"]
        lines.append(f"  weights   in {ld['memory']} (not set by the bitstream): load {ld['file']} through "
                     f"the weight-load port after reset, {ld['words']:,} words of {ld['word_bits']} bits, "
                     f"{ld['cycles']:,} cycles")
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
@click.option("--pe", type=int, default=None, callback=checked(check_positive, "--pe"),
              help="Output channels in parallel (default: the target's).")
@click.option("--simd", type=int, default=None, callback=checked(check_positive, "--simd"),
              help="Inputs per PE in parallel (default: the target's).")
@click.option("--fuse", type=click.Choice(FUSE_MODES), default="auto", show_default=True,
              help="Fuse a MaxPool into the convolution before it when that saves cycles (auto), "
                   "whenever legal (always), or never.")
@click.option("--argmax", is_flag=True,
              help="Compute the class index in hardware: a comparator after the last layer, one output beat.")
@click.option("--top", default=None, help="Verilog top module name (default: from the model file name).")
@click.option("--vectors", type=int, default=8, show_default=True,
              callback=checked(check_positive, "--vectors"), help="Test vectors to store in BUILD.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random test vectors (without --calib).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of the summary.")
@click.option("--report", "report", is_flag=True, help="Also write the HTML report, BUILD/report.html (see `hwflow report`).")
@quant_options
@prune_options
def compile_cmd(model, target, output, calib, pe, simd, fuse, argmax, top, vectors, seed, as_json, report, **options):
    """Compile MODEL (ONNX) into hardware: Verilog, schedule, test vectors and a testbench.

    \b
    Example:
      hwflow compile examples/models/digits_cnn.onnx --calib examples/models/digits_cnn_calib.npz
      hwflow simulate build/digits_cnn --simulator verilator
    """
    from ..api import compile as compile_build
    from ..flow import STEPS
    from ..report.progress import progress

    quant, auto_bits = quant_config(calib, **options), auto_bits_config(**options)
    prune = prune_config(**options)
    schedule = ScheduleConfig(pe=pe, simd=simd, fuse=fuse, argmax=argmax)
    with progress("compiling: load", total=len(STEPS), quiet=as_json) as bar:
        names = [n for n, _ in STEPS]

        def step_done(name, _seconds):
            bar.advance()
            i = names.index(name) + 1
            if i < len(names):
                bar.update(description=f"compiling: {names[i]}")

        build = compile_build(model, target, calib=calib, out=output, quant=quant, prune=prune,
                              auto_bits=auto_bits, schedule=schedule, top=top, vectors=vectors, seed=seed,
                              on_step=step_done)
    manifest = {**build.manifest, "compile_seconds": build.compile_seconds, "path": str(build.path)}
    if as_json:
        click.echo(json.dumps(manifest, indent=1))
    else:
        click.echo(summary(manifest))
    if report:
        path = build.report(quiet=as_json)
        click.echo(f"  report    {path}", err=as_json)
