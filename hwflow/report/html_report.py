"""``write_report``: one self-contained HTML page explaining a BUILD.

Sections (each ``<section id=...>``, images embedded as base64 PNG):

========== ==========================================================================
id         content
========== ==========================================================================
summary    model, target, array, cycles, memory, estimate at a glance
weights    per-layer weight histogram on a powers-of-two axis with the grid and limits
errors     per-layer quantization error distribution and SQNR
accuracy   float against quantized accuracy and agreement (``--data``)
schedule   Gantt chart: cycles per layer on the array
memory     memory map of the ROMs and the activation RAM, fill of the block RAMs
resources  estimated against synthesized resources and Fmax (``BUILD/synth.json``)
simulation the simulation result (``BUILD/simulation.json``)
========== ==========================================================================
"""

from __future__ import annotations

import datetime
from pathlib import Path

from .. import __version__
from ._context import load_context
from ._html import Section, esc, table
from .accuracy import accuracy_section
from .gantt import gantt_section
from .memmap import memmap_section
from .progress import progress
from .qerror import errors_section
from .resources import resources_section, simulation_section
from .weights import weights_section

__all__ = ["SECTIONS", "write_report", "render_report"]

#: Section ids in page order.
SECTIONS = ("summary", "weights", "errors", "accuracy", "schedule", "memory", "resources", "simulation")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:64rem;margin:1.5rem auto;
padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;
margin-top:2rem}
nav a{margin-right:.8rem}table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.note{color:#7a5a00;background:#fff8e0;padding:.4rem .6rem}
img.fig{display:block;max-width:100%;margin:.6rem 0}.meta{color:#666;font-size:.85rem}
"""


def _summary(ctx) -> Section:
    m = ctx.manifest
    mem = m["memory"]
    est = m.get("estimate") or {}
    rows = [["model", Path(m["model"]).name], ["target", f"{m['target']} ({ctx.target.device or 'no device'}, "
                                                           f"{ctx.clock_mhz:g} MHz)"],
            ["layers", ", ".join(f"{o['name']} ({o['op']})" for o in m["ops"])],
            ["host tail", ", ".join(m["host_tail"]["ops"]) or "none"],
            ["array", f"PE {m['pe']} x SIMD {m['simd']}"],
            ["cycles per inference", f"{m['cycles']:,} ({m['cycles'] / ctx.clock_mhz:.2f} µs at "
                                     f"{ctx.clock_mhz:g} MHz; ideal {m['ideal_cycles']:,.0f})"],
            ["on-chip memory", f"{mem['total_bits']:,} bit (weights {mem['weight_rom_bits']:,}, activations "
                               f"{mem['activation_bits']:,}, channel {mem['channel_rom_bits']:,}, LUT "
                               f"{mem['lut_rom_bits']:,})"],
            ["estimate", ", ".join(f"{k} {v:,}" for k, v in est.items() if isinstance(v, int))],
            ["quantization", _quant_text(m)]]
    return Section("summary", "Summary", table(["", ""], rows))


def _quant_text(m: dict) -> str:
    q = (m.get("options") or {}).get("quant") or {}
    if not q:
        return "?"
    parts = [q.get("scheme", "?"), "per-channel" if q.get("per_channel") else "per-tensor",
             f"w{q.get('wbits')}/a{q.get('abits')}", f"calibration {q.get('calibration')}",
             f"rounding {q.get('rounding')}"]
    parts += [k for k in ("cle", "bias_correction") if q.get(k)]
    if q.get("layer_bits"):
        parts.append(f"per-layer bits {q['layer_bits']}")
    return ", ".join(str(p) for p in parts)


_BUILDERS = (("weights", weights_section), ("errors", errors_section), ("accuracy", accuracy_section),
             ("schedule", gantt_section), ("memory", memmap_section), ("resources", resources_section),
             ("simulation", simulation_section))


def render_report(ctx, *, quiet: bool = False) -> str:
    """The report page for a loaded :class:`~hwflow.report._context.Context`."""
    sections = [_summary(ctx)]
    with progress("report", total=len(_BUILDERS), quiet=quiet) as bar:
        for name, build in _BUILDERS:
            bar.update(description=f"report: {name}")
            sections.append(build(ctx))
            bar.advance()
    nav = " ".join(f'<a href="#{s.id}">{esc(s.title.split(":")[0])}</a>' for s in sections)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"hwflow report: {ctx.manifest['top']} on {ctx.manifest['target']}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">BUILD {esc(ctx.path)} · hwflow {esc(__version__)} · {stamp}</p>',
        f"<nav>{nav}</nav>",
        *(s.render() for s in sections),
        "</body></html>\n"])


def write_report(build, output: str | Path | None = None, *, data: str | Path | None = None,
                 simulate: str | None = None, quiet: bool = False) -> Path:
    """Write the HTML report of a BUILD, from whatever directory.

    Everything comes from the BUILD: its files, its copy of the model, and its result
    records (``simulation.json``, ``synth.json``).

    Parameters
    ----------
    build : str, Path or hwflow.build.BuildDir
        A BUILD written by ``hwflow compile``.
    output : path, optional
        The HTML file (default ``BUILD/report.html``); written atomically.
    data : path, optional
        Test data (``.npz`` with ``x`` and optional ``y``) for the accuracy section and
        the per-layer errors (else the BUILD's test vectors are used).
    simulate : {"amaranth", "icarus", "verilator"}, optional
        Make sure the simulation section has a result of this simulator: one recorded in
        the BUILD is used as it is, otherwise the stored test vectors are simulated now
        (and the result recorded).
    quiet : bool
        No progress display.

    Returns
    -------
    Path
        The report file.

    Raises
    ------
    BuildError, DataError, OptionError, ToolError
        One line each: bad BUILD or result record, bad data, unknown simulator, missing
        simulator.
    """
    from .._files import atomic_write
    from ..build import load_build

    build = load_build(build)
    if simulate is not None:
        recorded = build.result("simulation")
        if recorded is None or recorded.get("simulator") != simulate:
            from ..sim.build_runner import simulate as run

            with progress(f"simulating {len(build.inputs())} vectors ({simulate})", quiet=quiet):
                run(build, simulate)
    ctx = load_context(build, data=data)
    page = render_report(ctx, quiet=quiet)
    return atomic_write(Path(output) if output is not None else ctx.path / "report.html", page)
