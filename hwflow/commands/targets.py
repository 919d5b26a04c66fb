"""``hwflow targets``: list the shipped targets and their resources."""

from __future__ import annotations

import json

import click

from ..targets import DEFAULT_TARGET, list_targets, load_target

__all__ = ["targets_cmd"]

_COLUMNS = ("target", "family", "device", "package", "LUT", "FF", "DSP", "memory", "I/O",
            "clock", "PExSIMD")


def _fmt(value) -> str:
    return "-" if value is None else str(value)


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print the targets as a JSON list.")
def targets_cmd(as_json: bool) -> None:
    """List the known targets with their resources (the default is marked *).

    \b
    Examples:
      hwflow targets
      hwflow compile model.onnx --target fpga-tiny
    """
    targets = [load_target(name) for name in list_targets()]
    if as_json:
        click.echo(json.dumps([t.to_json() for t in targets], indent=2))
        return
    rows = []
    for t in targets:
        bram = " + ".join(f"{k.blocks}x{k.block_bits // 1024}K {k.name.upper()}" for k in t.memory
                          if k.blocks is not None) or "-"
        rows.append((t.name + (" *" if t.name == DEFAULT_TARGET else ""), t.family,
                     _fmt(t.device), _fmt(t.package), _fmt(t.luts), _fmt(t.ffs), _fmt(t.dsps),
                     bram, _fmt(t.io_pins), f"{t.clock_mhz:g} MHz", f"{t.pe}x{t.simd}"))
    widths = [max(len(r[i]) for r in rows + [_COLUMNS]) for i in range(len(_COLUMNS))]
    for row in [_COLUMNS] + rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    click.echo("* default. Use --target NAME or --target path/to/own.toml.")
