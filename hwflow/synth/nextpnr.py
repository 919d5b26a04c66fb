"""Running nextpnr (iCE40 / ECP5) and reading its ``--report`` JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ToolError
from ..targets import Target
from ._tools import find_tool, run_tool
from .bundle import nextpnr_args

__all__ = ["find_nextpnr", "run_nextpnr", "parse_report", "read_report"]

# nextpnr's utilisation keys for hwflow's resource names.
_BELS = {
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
             "bram": "DP16KD", "io": "TRELLIS_IO"},
    "ice40": {"lut": "ICESTORM_LC", "dsp": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
              "spram": "ICESTORM_SPRAM", "io": "SB_IO"},
}
# Constant nets that nextpnr promotes to a global buffer show up as "clocks".
_NOT_CLOCKS = ("$PACKER_GND_NET", "$PACKER_VCC_NET")


def find_nextpnr(family: str, search_path: str | None = None) -> list[str]:
    """argv prefix for nextpnr-<family>: the YoWASP build, else a system binary.

    Raises
    ------
    ToolError
        Neither is installed; the message gives the pip command.
    """
    if family not in _BELS:
        raise ValueError(f"family must be 'ice40' or 'ecp5', not {family!r}")
    name = f"nextpnr-{family}"
    return find_tool([f"yowasp-{name}", name], f"yowasp_nextpnr_{family}", f"yowasp-{name}",
                     search_path=search_path)


def run_nextpnr(target: Target, netlist: str, constraints: str, report: str, output: str,
                cwd: Path, log: Path, seed: int = 1) -> float:
    """Place and route ``netlist`` for ``target`` (paths relative to ``cwd``) with placer
    seed ``seed``; seconds taken."""
    argv = [*find_nextpnr(target.family), "-q", *nextpnr_args(
        target, netlist, constraints, report, output, seed)]
    return run_tool(argv, cwd, log, target.pnr_tool)


def parse_report(data: dict, family: str) -> dict:
    """Resource use and Fmax from a nextpnr ``--report`` JSON.

    Returns
    -------
    dict
        ``fmax_mhz`` (the slowest real clock; None without clocked logic), ``clocks``
        (name -> {achieved, constraint}), and for each of ``lut``, ``ff`` (ECP5 only),
        ``dsp``, ``bram``, ``io``, ``spram`` (iCE40 only) the count used;
        ``available`` holds the device's counts under the same names;
        ``critical_path`` is ``{from, to, delay_ns}`` (first and last cell) or None.
    """
    if family not in _BELS:
        raise ValueError(f"family must be 'ice40' or 'ecp5', not {family!r}")
    util = data["utilization"]
    out: dict = {"available": {}}
    for name, bel in _BELS[family].items():
        entry = util.get(bel, {"used": 0, "available": 0})
        out[name] = int(entry["used"])
        out["available"][name] = int(entry["available"])
    clocks = {name: {"achieved": float(c["achieved"]), "constraint": float(c["constraint"])}
              for name, c in data.get("fmax", {}).items()
              if not name.startswith(_NOT_CLOCKS)}
    out["clocks"] = clocks
    out["fmax_mhz"] = min((c["achieved"] for c in clocks.values()), default=None)
    out["critical_path"] = _critical_path(data.get("critical_paths", []))
    return out


def _critical_path(paths: list[dict]) -> dict | None:
    """The longest register-to-register path: first and last cell and its delay (ns)."""
    best = None
    for p in paths:
        if "<async>" in (p.get("from"), p.get("to")) or not p.get("path"):
            continue
        delay = sum(step["delay"] for step in p["path"])
        if best is None or delay > best["delay_ns"]:
            best = {"from": p["path"][0]["from"]["cell"], "to": p["path"][-1]["to"]["cell"],
                    "delay_ns": round(delay, 3)}
    return best


def read_report(path: Path, family: str) -> dict:
    """:func:`parse_report` of the file at ``path``; ToolError if it is missing or garbled."""
    try:
        return parse_report(json.loads(Path(path).read_text(encoding="utf-8")), family)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(f"cannot read the nextpnr report {path}: {exc!r}") from None
