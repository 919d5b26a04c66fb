"""``synthesize(build)``: Yosys then nextpnr on a BUILD directory, and the report."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import BuildError, TargetError, ToolError
from ..flow import load_build
from ..targets import load_target
from .bundle import HANDOFF_FILE, write_handoff, yosys_script
from .nextpnr import read_report, run_nextpnr
from .report import build_report
from .yosys import read_stat, run_yosys

__all__ = ["SYNTH_DIR", "SYNTH_JSON", "read_manifest", "synthesize"]

SYNTH_DIR = "synth"        # tool outputs and logs, replaced as a whole on each run
SYNTH_JSON = "synth.json"  # the report


def read_manifest(build_dir: Path) -> dict:
    """``BUILD/manifest.json``, after checking the build is complete and unedited.

    Synthesis must see exactly the Verilog that was verified, so it applies the same
    check as ``hwflow simulate`` (:func:`hwflow.flow.load_build`).
    """
    return load_build(build_dir, simulate=False).manifest


def synthesize(build_dir: str | Path, pnr: bool = True) -> dict:
    """Synthesize (and place and route) a build directory; write ``synth.json``.

    Parameters
    ----------
    build_dir : str or Path
        A directory written by ``hwflow compile`` (``manifest.json`` + Verilog). The
        hand-off bundle is written first if it is not there yet.
    pnr : bool
        Run nextpnr after Yosys. Without it, figures come from Yosys and timing is unknown.

    Returns
    -------
    dict
        The report (see :mod:`hwflow.synth.report`) plus ``top`` and ``seconds``.
        Tool outputs and logs are in ``BUILD/synth/``.

    Raises
    ------
    BuildError, TargetError, ToolError
        Bad build directory, generic target, missing or failing tools.
    """
    build = Path(build_dir)
    manifest = read_manifest(build)
    # A user's own target file is recorded by path in "target_source"; its "target" is
    # only a name.
    target = load_target(manifest.get("target_source") or manifest["target"])
    if target.unlimited:
        raise TargetError(f"{build} was compiled for target {target.name!r}, which has no "
                          "device; recompile with --target fpga-tiny, fpga-small or fpga-medium")
    handoff_path = build / HANDOFF_FILE
    if handoff_path.exists():
        try:
            handoff = json.loads(handoff_path.read_text(encoding="utf-8"))
            handoff["synth_top"], handoff["sources"], handoff["constraints"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BuildError(f"cannot read {handoff_path} ({exc!r}); delete it and rerun "
                             "hwflow synth to write the bundle again") from None
    else:
        handoff = write_handoff(build, manifest["verilog"], manifest["top"], target,
                                lanes=manifest.get("stream", {}).get("lanes", 1))
    top = handoff["synth_top"]

    # YoWASP tools see only their working directory: run in BUILD, with relative paths
    # into a scratch directory that replaces BUILD/synth when everything has run.
    work = Path(tempfile.mkdtemp(prefix=".synth-", dir=build))
    rel = work.name
    try:
        (work / "synth.ys").write_text(yosys_script(
            target, top, handoff["sources"], f"{rel}/{top}.json", f"{rel}/yosys_stat.json"),
            encoding="utf-8")
        seconds = {"yosys": run_yosys(f"{rel}/synth.ys", build, work / "yosys.log")}
        stat = read_stat(work / "yosys_stat.json", target.family)
        report = build_report(target, stat, io_used=handoff["io_pins_used"])
        if pnr and report["fits"]:
            out = f"{top}.asc" if target.family == "ice40" else f"{top}.config"
            seconds["nextpnr"] = run_nextpnr(
                target, f"{rel}/{top}.json", handoff["constraints"],
                f"{rel}/nextpnr_report.json", f"{rel}/{out}", build, work / "nextpnr.log")
            report = build_report(target, stat, read_report(work / "nextpnr_report.json",
                                                            target.family))
        _replace_dir(work, build / SYNTH_DIR)
    except ToolError as exc:
        # Keep the failed run's logs where the message says they are.
        _replace_dir(work, build / SYNTH_DIR)
        raise ToolError(str(exc).replace(str(work), str(build / SYNTH_DIR))) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["top"] = handoff["top"]
    report["synth_top"] = top
    report["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    tmp = build / f".{SYNTH_JSON}.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, build / SYNTH_JSON)
    return report


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        old = dst.with_name(f".{dst.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        dst.rename(old)
        shutil.rmtree(old)
    src.rename(dst)
