"""Synthesis benchmark: every example model on every device target, with real tools.

For each (model, target) it runs ``hwflow compile`` (with the model's calibration data)
and ``hwflow synth`` (YoWASP Yosys + nextpnr), and prints one row: resources used
against available, the scheduler's estimate error against the synthesized figures,
Fmax against the clock goal, latency (predicted cycles / Fmax) and tool times.

    python bench/synth.py                        # the digits examples x fpga-tiny, fpga-small, fpga-medium
    python bench/synth.py --models digits_cnn --targets fpga-small
    python bench/synth.py --json results.json    # also write the rows
    python bench/synth.py --seeds 3              # nextpnr seeds 1..3: Fmax worst and median

Fmax is the worst over the seeds (the median beside it); the critical path is the worst seed's.

Estimate error is (estimate - synthesized) / synthesized for LUT and FF; DSP and each
memory kind (BRAM, and the iCE40's SPRAM) are shown as estimate/synthesized (the goal is
that they are equal).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
TARGETS = ("fpga-tiny", "fpga-small", "fpga-medium")
_EST = {"lut": "luts", "ff": "ffs", "dsp": "dsps", "bram": "bram_blocks", "spram": "spram_blocks"}


def run_one(model: Path, target: str, workdir: Path, shape: tuple[int, int] | None = None,
            seeds: tuple[int, ...] = (1,)) -> dict:
    """Compile and synthesize one model for one target (at its default array, or ``shape``) with
    each nextpnr seed; a row dict (resources of the first seed, Fmax the worst)."""
    from hwflow.errors import HwflowError
    from hwflow.flow import compile_model
    from hwflow.synth import synthesize

    row = {"model": model.stem, "target": target}
    calib = model.with_name(f"{model.stem}_calib.npz")
    build = workdir / (f"{model.stem}-{target}" + (f"-{shape[0]}x{shape[1]}" if shape else ""))
    t0 = time.perf_counter()
    try:
        manifest = compile_model(model, target, build, calib_path=calib if calib.exists() else None,
                                 pe=shape[0] if shape else None, simd=shape[1] if shape else None)
    except HwflowError as exc:
        row["error"] = f"compile: {exc}"
        return row
    row["compile_s"] = round(time.perf_counter() - t0, 1)
    row.update(pe=manifest["pe"], simd=manifest["simd"], cycles=manifest["cycles"],
               estimate=manifest.get("estimate") or {})
    reps = []
    for seed in seeds:
        try:
            reps.append(synthesize(build, seed=seed))
        except HwflowError as exc:
            row["error"] = f"synth --seed {seed}: {exc}"
            return row
    fmax = [r["fmax_mhz"] for r in reps]
    rep = reps[0] if None in fmax else reps[fmax.index(min(fmax))]
    row.update(resources=reps[0]["resources"], other=reps[0]["other"], fmax_mhz=rep["fmax_mhz"],
               fmax_all=fmax, fmax_median=None if None in fmax else statistics.median(fmax),
               clock_mhz=rep["clock_mhz"], fits=all(r["fits"] for r in reps),
               meets_timing=all(r["meets_timing"] for r in reps),
               seconds=reps[0]["seconds"], critical_path=rep.get("critical_path"))
    if rep["fmax_mhz"]:
        row["latency_us"] = round(manifest["cycles"] / rep["fmax_mhz"], 2)
    return row


def _res(row: dict, key: str) -> str:
    r = row["resources"].get(key)
    return "-" if r is None else f"{r['used']}/{r['available']}"


def _err(row: dict, key: str) -> str:
    est = row["estimate"].get(_EST[key])
    if est is None or key not in row["resources"]:
        return "-"
    used = row["resources"][key]["used"]
    if key in ("dsp", "bram", "spram"):
        return f"{est}/{used}" + ("" if est == used else " !")
    return f"{100 * (est - used) / used:+.0f}%" if used else "-"


def table(rows: list[dict]) -> str:
    head = ("model", "target", "PExSIMD", "LUT", "est", "FF", "est", "DSP", "est/syn",
            "BRAM", "est/syn", "SPRAM", "est/syn", "Fmax worst", "Fmax med", "goal", "cycles", "latency us", "yosys s",
            "pnr s", "result")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append((r["model"], r["target"], "", *[""] * (len(head) - 4), r["error"]))
            continue
        verdict = ("ok" if r["fits"] and r["meets_timing"] else
                   "does not fit" if not r["fits"] else "misses timing")
        lines.append((r["model"], r["target"], f"{r['pe']}x{r['simd']}",
                      _res(r, "lut"), _err(r, "lut"), _res(r, "ff"), _err(r, "ff"),
                      _res(r, "dsp"), _err(r, "dsp"), _res(r, "bram"), _err(r, "bram"),
                      _res(r, "spram"), _err(r, "spram"),
                      f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-",
                      f"{r['fmax_median']:.1f}" if r.get("fmax_median") else "-",
                      f"{r['clock_mhz']:g}", str(r["cycles"]),
                      f"{r['latency_us']:.2f}" if "latency_us" in r else "-",
                      f"{r['seconds'].get('yosys', 0):.1f}",
                      f"{r['seconds'].get('nextpnr', 0):.1f}", verdict))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "-" * len(out[0]))
    out += [f"{r['model']} {r['target']}: critical path {c['from']} -> {c['to']}, {c['delay_ns']} ns (worst seed)"
            for r in rows if (c := r.get("critical_path"))]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None,
                    help="comma-separated model stems (default: the digits examples; "
                         "bench/mlperf_tiny.py covers the MLPerf Tiny ones)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    ap.add_argument("--keep", default=None, help="keep the BUILD directories under this path")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--shape", default=None, metavar="PExSIMD", help="array shape (default: each target's)")
    ap.add_argument("--seeds", type=int, default=1, help="nextpnr seeds per row (1..N; default 1)")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.lower().split("x")) if args.shape else None
    if args.models:
        wanted = args.models.split(",")
        models = [m for m in sorted(MODELS.glob("*.onnx")) if m.stem in wanted]
    else:
        models = sorted(MODELS.glob("digits*.onnx"))
    targets = args.targets.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="hwflow-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for model in models:
            for target in targets:
                print(f"... {model.stem} on {target}", file=sys.stderr, flush=True)
                rows.append(run_one(model, target, work, shape, tuple(range(1, args.seeds + 1))))
    print("$ python bench/synth.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
