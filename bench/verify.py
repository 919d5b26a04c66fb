"""Issue 18's acceptance table: every shipped example x target x check, pass/fail and cost.

    .venv/bin/python bench/verify.py [--out bench/results/verify.txt] [--work /tmp/hwflow-verify]

Per example (examples/models) and target (fpga-small, fpga-tiny where the design fits):
compile, then run ``hwflow simulate`` in Verilator (the netlist in Icarus, which builds a
gate-level netlist in seconds where Verilator's C++ compile takes minutes) as

- RTL:      --random 100
- netlist:  --netlist --simulator icarus (the 8 stored vectors; Yosys synthesis included)
- stall:    --random 100 --stall 0.3 --seed 1
- reset:    --random 20 --reset --stall 0.3 --seed 2
- x-unique: --x-unique --reset with seeds 1, 2, 3 (all three must pass)

Each cell: PASS/FAIL, wall seconds and the peak resident memory of any process of the run
(``/usr/bin/time``'s maximum RSS). Times include building the simulation on first use, and
synthesis unless a kept netlist was reused; the netlist cell names Yosys' own time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "examples" / "models"
EXAMPLES = ["digits_mlp", "digits_cnn", "digits784_tanh_mlp"]
TARGETS = ["fpga-small", "fpga-tiny"]
HWFLOW = str(Path(sys.executable).with_name("hwflow"))
CHECKS = {
    "RTL": [["--random", "100"]],
    "netlist": [["--netlist", "--simulator", "icarus"]],
    "stall 0.3": [["--random", "100", "--stall", "0.3", "--seed", "1"]],
    "reset": [["--random", "20", "--reset", "--stall", "0.3", "--seed", "2"]],
    "x-unique": [["--x-unique", "--reset", "--seed", str(s)] for s in (1, 2, 3)],
}


def run(argv: list[str]) -> tuple[int, str, float, int]:
    """(exit code, stdout, wall seconds, peak RSS in MB) of ``argv`` under /usr/bin/time."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", *argv], capture_output=True, text=True)
    rss = max((int(line.split()[1]) for line in p.stderr.splitlines() if line.startswith("MAXRSS ")), default=0)
    return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0, rss // 1024


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "verify.txt"))
    ap.add_argument("--work", default="/tmp/hwflow-verify")
    ap.add_argument("--examples", nargs="*", default=EXAMPLES)
    ap.add_argument("--targets", nargs="*", default=TARGETS)
    ap.add_argument("--checks", nargs="*", default=list(CHECKS))
    ap.add_argument("--netlist-sim", default="icarus", choices=("icarus", "verilator"),
                    help="simulator of the netlist check (Icarus builds in seconds but runs a gate-level "
                         "netlist at tens to hundreds of cycles/s; Verilator compiles for minutes, then runs fast)")
    ap.add_argument("--reuse", action="store_true", help="keep a BUILD already in --work (no recompile)")
    ap.add_argument("--netlist-limit", type=int, default=None, help="vectors of the netlist check (default: all 8)")
    args = ap.parse_args()
    CHECKS["netlist"] = [["--netlist", "--simulator", args.netlist_sim]
                         + ([] if args.netlist_limit is None else ["--limit", str(args.netlist_limit)])]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for ex in args.examples:
        for target in args.targets:
            build = work / f"{ex}-{target}"
            rc, out = 0, ""
            if not (args.reuse and (build / "manifest.json").is_file()):
                rc, out, _, _ = run([HWFLOW, "compile", str(MODELS / f"{ex}.onnx"), "--calib",
                                     str(MODELS / f"{ex}_calib.npz"), "-t", target, "-o", str(build)])
            if rc != 0:
                rows.append((ex, target, {c: "does not fit" for c in args.checks}, out.strip().splitlines()[-1]))
                print(ex, target, "does not fit", flush=True)
                continue
            cycles = json.loads((build / "manifest.json").read_text())["cycles"]
            cells = {}
            for check in args.checks:
                ok, secs, rss, notes = True, 0.0, 0, []
                for extra in CHECKS[check]:
                    sim = [] if "--simulator" in extra else ["--simulator", "verilator"]
                    rc, out, t, m = run([HWFLOW, "simulate", str(build), *sim, "--json", *extra])
                    secs, rss = secs + t, max(rss, m)
                    try:
                        doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
                    except ValueError:
                        doc = {}
                    if rc != 0 or not doc.get("passed"):
                        ok = False
                        notes.append(out.strip().splitlines()[-1] if out.strip() else f"exit {rc}")
                    if doc.get("stall_cycles"):
                        notes.append(f"{doc['stall_cycles']} stall cycles")
                cells[check] = f"{'PASS' if ok else 'FAIL'} {secs:.0f} s {rss} MB"
                kept = sorted(build.glob("sim_build/netlist-*/netlist.json"))
                if check == "netlist" and kept:  # Yosys' time, also when this run reused its netlist
                    cells[check] += f" (Yosys {json.loads(kept[0].read_text())['seconds']:.0f} s)"
                print(ex, target, check, cells[check], "; ".join(notes), flush=True)
            rows.append((ex, target, cells, f"{cycles} cycles"))
    head = ["example", "target", *args.checks, "note"]
    table = [head] + [[ex, t, *(c.get(k, "") for k in args.checks), note] for ex, t, c, note in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
    text = "\n".join([f"$ .venv/bin/python bench/verify.py {' '.join(sys.argv[1:])}".rstrip(),
                      f"(Verilator, the netlist in {args.netlist_sim}; each cell: result, wall time incl. synthesis and "
                      "building the simulation, peak RSS; 2 cores shared with other jobs)",
                      *lines, ""])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
