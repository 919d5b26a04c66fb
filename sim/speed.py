"""Simulation speed: cycles per second per simulator on a BUILD, and a table printer.

For ``bench/hw_efficiency.py`` (and anyone measuring)::

    from hwflow.sim.speed import measure_speed, speed_table
    rows = measure_speed("build/digits_cnn", ["amaranth", "icarus", "verilator"])
    print(speed_table(rows))

or from a shell: ``python -m hwflow.sim.speed build/digits_cnn [--repeat 4]``.

Each row is one simulator run over the BUILD's stored vectors (repeated ``repeat``
times); ``cycles_per_second`` counts every simulated clock cycle over the wall time of
the simulation loop itself (simulator start-up and the build step excluded; the build
time is reported separately).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

__all__ = ["measure_speed", "speed_table"]


def measure_speed(build_dir: str | Path, simulators=("amaranth", "icarus", "verilator"), *,
                  repeat: int = 1, limit: int | None = None) -> list[dict]:
    """Run the BUILD's vectors in each simulator and report speed and verdict.

    Parameters
    ----------
    build_dir : path
        A BUILD written by ``hwflow compile``.
    simulators : sequence of str
    repeat : int
        Stream the stored vectors this many times (longer runs, steadier figures).
    limit : int, optional
        Use only the first ``limit`` stored vectors (before repeating).

    Returns
    -------
    list of dict
        ``simulator, vectors, passed, cycles, predicted_cycles, sim_cycles,
        wall_seconds, cycles_per_second, cycles_per_cpu_second, total_seconds`` (total
        includes the build; per CPU second is steady on a busy machine).
    """
    from ..commands.simulate import simulate_build
    from ..flow import load_build

    build = load_build(build_dir)
    x, e = build.inputs()[:limit], build.expected()[:limit]
    x, e = np.concatenate([x] * repeat), np.concatenate([e] * repeat)
    rows = []
    for sim in simulators:
        t0 = time.perf_counter()
        r = simulate_build(build, sim, x, e)
        rows.append({
            "build": str(build_dir),
            "simulator": sim,
            "vectors": r.vectors,
            "passed": r.passed,
            "cycles": r.cycles_summary,
            "predicted_cycles": r.predicted_cycles,
            "sim_cycles": r.sim_cycles,
            "wall_seconds": r.wall_time,
            "cycles_per_second": r.cycles_per_second,
            "cycles_per_cpu_second": r.cycles_per_cpu_second,
            "total_seconds": time.perf_counter() - t0,
        })
    return rows


def speed_table(rows: list[dict]) -> str:
    """A fixed-width table of :func:`measure_speed` rows."""
    head = ("build", "simulator", "vectors", "result", "cycles", "predicted", "sim cycles",
            "cycles/s", "cycles/CPU s", "run s", "total s")
    body = [(Path(r["build"]).name, r["simulator"], str(r["vectors"]), "PASS" if r["passed"] else "FAIL",
             str(r["cycles"]), str(r["predicted_cycles"]), f"{r['sim_cycles']:,}",
             f"{r['cycles_per_second']:,.0f}", f"{r.get('cycles_per_cpu_second', 0):,.0f}",
             f"{r['wall_seconds']:.2f}", f"{r['total_seconds']:.1f}")
            for r in rows]
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in [head] + body)


def _main(argv=None) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m hwflow.sim.speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="+", help="BUILD directories")
    ap.add_argument("--simulators", default="amaranth,icarus,verilator")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    from ..errors import HwflowError

    rows = []
    try:
        for b in args.builds:
            rows += measure_speed(b, args.simulators.split(","), repeat=args.repeat, limit=args.limit)
    except HwflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"$ python -m hwflow.sim.speed {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(speed_table(rows))
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(_main())
