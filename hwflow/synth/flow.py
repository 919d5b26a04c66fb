"""``synthesize(build)``: Yosys then nextpnr on a BUILD directory; the report is recorded in it."""

from __future__ import annotations

import json
from pathlib import Path

from .._files import atomic_directory
from ..build import BuildDir, load_build
from ..errors import BuildError, OptionError, TargetError, ToolError
from .bundle import HANDOFF_FILE, write_handoff, yosys_script
from .ecp5_dsp import absorb_registers_file
from .nextpnr import read_report, run_nextpnr
from .report import build_report
from .yosys import read_stat, run_yosys

__all__ = ["SYNTH_DIR", "synthesize"]

SYNTH_DIR = "synth"  # tool outputs and logs, replaced as a whole on each run


def _handoff(build: BuildDir, target) -> dict:
    """The BUILD's hand-off (written now if the BUILD has none)."""
    path = build.path / HANDOFF_FILE
    if not path.exists():
        m = build.manifest
        return write_handoff(build.path, m["verilog"], m["top"], target, lanes=m.get("stream", {}).get("lanes", 1))
    try:
        handoff = json.loads(path.read_text(encoding="utf-8"))
        handoff["synth_top"], handoff["sources"], handoff["constraints"]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"cannot read {path} ({exc!r}); re-run hwflow compile (or delete it and "
                         "rerun hwflow synth to write the bundle again)") from None
    return handoff


def synthesize(build: str | Path | BuildDir, pnr: bool = True, seed: int = 1) -> dict:
    """Synthesize (and place and route) a BUILD; record the report as ``BUILD/synth.json``.

    Synthesis must see exactly the Verilog that was verified, so the BUILD is checked
    as for simulation (:func:`hwflow.build.load_build`).

    Parameters
    ----------
    build : str, Path or BuildDir
        A directory written by ``hwflow compile`` (``manifest.json`` + Verilog). The
        hand-off bundle is written first if it is not there yet.
    pnr : bool
        Run nextpnr after Yosys. Without it, figures come from Yosys and timing is unknown.
    seed : int
        nextpnr's placer seed (recorded in the report).

    Returns
    -------
    dict
        The report (see :mod:`hwflow.synth.report`) plus ``top``, ``synth_top``,
        ``seed``, ``pnr`` and ``seconds``. Tool outputs and logs are in ``BUILD/synth/``.

    Raises
    ------
    BuildError, TargetError, ToolError, OptionError
        Bad build directory, generic target, missing or failing tools, a bad seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise OptionError(f"seed must be an integer, not {seed!r}")
    build = load_build(build, simulate=False)
    target = build.target()
    if target.unlimited:
        raise TargetError(f"{build.path} was compiled for target {target.name!r}, which has no "
                          "device; recompile with --target fpga-tiny, fpga-small or fpga-medium")
    handoff = _handoff(build, target)
    top = handoff["synth_top"]
    # YoWASP tools see only their working directory: run in BUILD, with relative paths
    # into a scratch directory that replaces BUILD/synth when the tools have run (also
    # when one failed, so its log is where the message says).
    failed = None
    with atomic_directory(build.path / SYNTH_DIR) as work:
        rel = work.name
        try:
            (work / "synth.ys").write_text(yosys_script(
                target, top, handoff["sources"], f"{rel}/{top}.json", f"{rel}/yosys_stat.json"),
                encoding="utf-8")
            seconds = {"yosys": run_yosys(f"{rel}/synth.ys", build.path, work / "yosys.log")}
            stat = read_stat(work / "yosys_stat.json", target.family)
            estimate = build.manifest.get("estimate")
            report = build_report(target, stat, io_used=handoff["io_pins_used"], estimate=estimate)
            if pnr and report["fits"]:
                if target.family == "ecp5":
                    absorb_registers_file(work / f"{top}.json")
                out = f"{top}.asc" if target.family == "ice40" else f"{top}.config"
                seconds["nextpnr"] = run_nextpnr(
                    target, f"{rel}/{top}.json", handoff["constraints"], f"{rel}/nextpnr_report.json",
                    f"{rel}/{out}", build.path, work / "nextpnr.log", seed)
                report = build_report(target, stat, read_report(work / "nextpnr_report.json", target.family),
                                      estimate=estimate)
        except ToolError as exc:
            failed = str(exc).replace(str(work), str(build.path / SYNTH_DIR))
    if failed is not None:
        raise ToolError(failed)
    report.update(top=handoff["top"], synth_top=top, pnr=pnr, seed=seed,
                  seconds={k: round(v, 2) for k, v in seconds.items()})
    build.record("synth", report)
    return report
