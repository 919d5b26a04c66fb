"""Hardware efficiency of the shipped examples: cycles against the array's ideal.

One row per model and array shape: MACs, ideal cycles (MACs / (PE*SIMD)), scheduled cycles
(start to done, exact: the simulators reproduce it), compute cycles (the layers only, without
streaming the input in and the output out, one SIMD-lane word per cycle each), the two ratios, the
generated Verilog's line count and the compile time (schedule + Verilog generation).

With ``--sim SIM`` (``amaranth``, ``icarus``, ``verilator``; repeatable) it also measures
simulation speed in cycles per second with the sim package's runners on random vectors, and
checks bit- and cycle-exactness on the way.

Usage::

    python bench/hw_efficiency.py [--shapes 4x4,8x8] [--sim verilator] [--vectors 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
EXAMPLES = ("digits_mlp", "digits_cnn", "digits784_tanh_mlp")


def _qgraph(name: str):
    from hwflow.data import load_data
    from hwflow.ir import load_model
    from hwflow.passes import optimize
    from hwflow.quant import QuantConfig, quantize

    g = optimize(load_model(MODELS / f"{name}.onnx"))
    calib_path = MODELS / f"{name}_calib.npz"
    calib = load_data(calib_path, g.shape(g.inputs[0]))[0] if calib_path.exists() else None
    return quantize(g, QuantConfig(), calib)


def _sim_speed(prog, qg, sim: str, vectors: int) -> float:
    """Cycles per second of ``sim`` on random vectors (the sim package's runner); checks
    bit- and cycle-exactness on the way."""
    import numpy as np

    from hwflow.quant.reference import run_int
    from hwflow.sim import run_vectors

    rng = np.random.default_rng(0)
    t = qg.tensors[qg.input]
    lo, hi = t.range
    xs = [rng.integers(lo, hi + 1, size=t.shape) for _ in range(vectors)]
    refs = [run_int(qg, x).reshape(-1) for x in xs]
    res = run_vectors(prog, xs, simulator=sim, expected=refs)
    if res.mismatches or list(res.cycles) != [prog.cycles] * vectors:
        raise SystemExit(f"{sim}: {res.mismatches} mismatches, cycles {res.cycles} vs {prog.cycles}")
    return res.cycles_per_second


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(EXAMPLES))
    ap.add_argument("--shapes", default="4x4,8x8", help="PExSIMD list (default 4x4,8x8)")
    ap.add_argument("--target", default="generic")
    ap.add_argument("--sim", action="append", default=[], choices=("amaranth", "icarus", "verilator"))
    ap.add_argument("--vectors", type=int, default=2)
    args = ap.parse_args(argv)

    from hwflow.rtl.accelerator import to_verilog
    from hwflow.schedule import schedule

    cols = ["model", "PExSIMD", "MACs", "ideal", "cycles", "ratio", "compute", "c.ratio", "v.lines", "compile s"]
    cols += [f"{s} cyc/s" for s in args.sim]
    rows = []
    for name in args.models.split(","):
        qg = _qgraph(name)
        for shape in args.shapes.split(","):
            pe, simd = (int(v) for v in shape.lower().split("x"))
            t0 = time.perf_counter()
            prog = schedule(qg, args.target, pe=pe, simd=simd)
            text = to_verilog(prog, name)
            dt = time.perf_counter() - t0
            compute = sum(l.cycles for l in prog.layers)
            row = [name, f"{pe}x{simd}", prog.macs, f"{prog.ideal_cycles:.0f}", prog.cycles,
                   f"{prog.cycles / prog.ideal_cycles:.2f}", compute, f"{compute / prog.ideal_cycles:.2f}",
                   text.count("\n"), f"{dt:.2f}"]
            for sim in args.sim:
                row.append(f"{_sim_speed(prog, qg, sim, args.vectors):,.0f}")
            rows.append([str(v) for v in row])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("$ python bench/hw_efficiency.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))
    print("ratio = cycles / ideal (start to done, streams included); "
          "c.ratio = layer cycles / ideal (streams excluded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
