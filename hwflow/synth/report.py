"""The synthesis result: resources used against available, Fmax against the clock goal.

The object (recorded in ``BUILD/synth.json`` and printed by ``hwflow synth --json``)::

    {"fmax_mhz": 98.3 | None, "clock_mhz": 100.0, "fits": true,
     "meets_timing": true | None,          # None when place and route was skipped
     "resources": {"lut": {"used": 684, "available": 24288}, "ff": ..., "dsp": ..., "bram": ...,
                   "spram": ...},      # one entry per memory kind of the target (iCE40: bram, spram)
     "other": {"io": {...}},               # pins, also checked by "fits"
     "source": "nextpnr" | "yosys", "target": ..., "device": ..., "top": core module,
     "synth_top": module synthesized (the core, or its narrow I/O wrapper),
     "pnr": whether nextpnr was asked for, "seed": nextpnr's placer seed, "seconds": {...},
     "critical_path": {"from": cell, "to": cell, "delay_ns": 8.9} | None,
     "cells": {...}}                       # Yosys cell counts by type

Used figures come from nextpnr's report when place and route ran (the packed, real
figures), otherwise from Yosys (before packing). iCE40 flip-flops always come from
Yosys: nextpnr counts logic cells (LUT + FF pairs), which is the ``lut`` figure.
"""

from __future__ import annotations

from ..targets import Target

__all__ = ["RESOURCES", "build_report", "misses", "format_report"]

RESOURCES = ("lut", "ff", "dsp", "bram")  # and each further memory kind of the target (spram)
_LABELS = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM", "io": "I/O",
           "spram": "SPRAM"}


#: The compile estimate's key for each resource that has one (a memory kind ``k``: ``k_blocks``).
_EST_KEYS = {"lut": "luts", "ff": "ffs", "dsp": "dsps"}


def build_report(target: Target, stat: dict, pnr: dict | None = None, *,
                 io_used: int | None = None, estimate: dict | None = None) -> dict:
    """Combine a parsed Yosys stat and (optionally) a parsed nextpnr report.

    Parameters
    ----------
    target : Target
        Where the available counts and the clock goal come from.
    stat : dict
        :func:`hwflow.synth.yosys.parse_stat` output.
    pnr : dict, optional
        :func:`hwflow.synth.nextpnr.parse_report` output; None with ``--no-pnr``.
    io_used : int, optional
        Pins of the synthesis top, used when there is no nextpnr report.
    estimate : dict, optional
        The compile's resource estimate (``manifest["estimate"]``): each resource then
        carries its ``estimate`` beside ``used`` (memory kinds: their block counts).

    Returns
    -------
    dict
        See the module docstring.
    """
    if target.unlimited:
        raise ValueError(f"target {target.name!r} has no resources to report against")
    available = {"lut": target.luts, "ff": target.ffs, "dsp": target.dsps, "io": target.io_pins,
                 **{k.name: k.blocks for k in target.memory}}
    keys = (*RESOURCES[:3], *(k.name for k in target.memory))
    used = {}
    for key in keys:
        used[key] = pnr[key] if pnr is not None and key in pnr else stat[key]
    used["io"] = pnr["io"] if pnr is not None else io_used
    resources = {k: {"used": used[k], "available": available[k]} for k in keys}
    if estimate:
        for k, r in resources.items():
            ekey = _EST_KEYS.get(k, f"{k}_blocks")
            if ekey in estimate:
                r["estimate"] = estimate[ekey]
    other = {"io": {"used": used["io"], "available": available["io"]}}
    fits = all(r["used"] is None or r["used"] <= r["available"]
               for r in (*resources.values(), *other.values()))
    fmax = pnr["fmax_mhz"] if pnr is not None else None
    meets = None if pnr is None else (fmax is None or fmax >= target.clock_mhz)
    return {"fmax_mhz": None if fmax is None else round(fmax, 2), "clock_mhz": target.clock_mhz,
            "fits": fits, "meets_timing": meets, "resources": resources, "other": other,
            "source": "nextpnr" if pnr is not None else "yosys", "target": target.name,
            "device": f"{target.device} {target.package}",
            "critical_path": pnr.get("critical_path") if pnr is not None else None,
            "cells": stat["cells"]}


def misses(report: dict) -> list[str]:
    """One phrase per missed limit (empty when the design fits and meets timing)."""
    out = []
    for key, r in (*report["resources"].items(), *report["other"].items()):
        if r["used"] is not None and r["used"] > r["available"]:
            over = r["used"] - r["available"]
            out.append(f"{_LABELS[key]} {r['used']} used, {r['available']} available "
                       f"(over by {over}, {100 * over / r['available']:.0f}%)"
                       if r["available"] else
                       f"{_LABELS[key]} {r['used']} used, none available")
    if report["meets_timing"] is False:
        fmax, goal = report["fmax_mhz"], report["clock_mhz"]
        path = report.get("critical_path")
        via = (f"; critical path {path['from']} -> {path['to']}, {path['delay_ns']:.1f} ns"
               if path else "")
        out.append(f"Fmax {fmax:.1f} MHz is below the {goal:g} MHz clock goal "
                   f"(short by {goal - fmax:.1f} MHz, {100 * (goal - fmax) / goal:.0f}%){via}")
    return out


def format_report(report: dict) -> str:
    """The human-readable table ``hwflow synth`` prints."""
    est = any("estimate" in r for r in report["resources"].values())
    lines = [f"{'resource':8}  {'used':>7}  {'available':>9}  {'use':>6}" + ("  estimate" if est else "")]
    for key, r in (*report["resources"].items(), *report["other"].items()):
        if r["used"] is None:
            continue
        pct = f"{100 * r['used'] / r['available']:.1f}%" if r["available"] else "-"
        line = f"{_LABELS.get(key, key.upper()):8}  {r['used']:>7}  {r['available']:>9}  {pct:>6}"
        if "estimate" in r:
            line += f"  {r['estimate']:>8}"
        lines.append(line)
    if report["fmax_mhz"] is not None:
        verdict = "meets" if report["meets_timing"] else "MISSES"
        lines.append(f"Fmax      {report['fmax_mhz']:.1f} MHz ({verdict} the "
                     f"{report['clock_mhz']:g} MHz goal)")
        path = report.get("critical_path")
        if path:
            lines.append(f"critical  {path['delay_ns']:.1f} ns from {path['from']} "
                         f"to {path['to']}")
    elif report["source"] == "yosys":
        lines.append("Fmax      not known (--no-pnr: figures from Yosys, before packing)")
    return "\n".join(lines)
