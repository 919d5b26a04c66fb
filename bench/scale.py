"""The compiler at scale: time and peak memory against parameter count, with log-log slopes.

Every point is one ``hwflow compile`` (through the API) in a fresh Python process, so its
peak resident memory is its own (``ru_maxrss``, Python and its libraries included):

- MLPs 784-H-10, H = 100 ... 6400 (79 k ... 5.1 M parameters), ``--target generic``;
- CNNs of C = 8 ... 128 channels (3x32x32 input; conv C, conv C, pool, conv 2C, conv 2C,
  pool, Gemm 10; 1.7 k ... 1.2 M parameters), ``--target generic``;
- SqueezeNet 1.0 (1.2 M parameters, the ONNX "light" model in the onnx wheel),
  ``--target generic``;
- ResNet-50 and VGG-19 (25.6 M and 144 M): ``hwflow inspect --target fpga-medium`` (the fit
  check) only, and the refusal ``hwflow compile --target fpga-medium`` gives.

The MLPs and CNNs have random weights and 64 random calibration samples (calibration,
GPTQ and bias correction run); the light models have their own constant weights and no
data (``--calibration none``). The slope is the least-squares fit of log(seconds) (and
log(peak MB)) against log(parameters) over the points of a family from 100 k parameters
up. Steps: the compile flow's (:data:`hwflow.flow.STEPS`).

    python bench/scale.py [--quick] [--families mlp,cnn,squeezenet,big]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HIDDEN = (100, 200, 400, 800, 1600, 3200, 6400)
CHANNELS = (8, 16, 32, 64, 128)
STEPS = ("fit", "quantize", "schedule", "generate", "vectors", "write")


def light(name: str) -> Path:
    import onnx

    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def mlp(path: Path, hidden: int) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(hidden)
    inits, nodes, x, prev = [], [], "x", 784
    for i, n in enumerate((hidden, 10)):
        w = (rng.standard_normal((prev, n)) / math.sqrt(prev)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"g{i}"]))
        x = f"g{i}"
        if i == 0:
            nodes.append(helper.make_node("Relu", [x], ["r0"]))
            x = "r0"
        prev = n
    _save(path, nodes, inits, [1, 784], x, [1, 10])


def cnn(path: Path, c: int) -> None:
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(c)
    inits, nodes, x, cin = [], [], "x", 3
    for i, cout in enumerate((c, c, "pool", 2 * c, 2 * c, "pool")):
        if cout == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"p{i}"
            continue
        w = (rng.standard_normal((cout, cin, 3, 3)) / math.sqrt(9 * cin)).astype(np.float32)
        b = (0.1 * rng.standard_normal(cout)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        x, cin = f"r{i}", cout
    nodes.append(helper.make_node("Flatten", [x], ["f"]))
    w = (rng.standard_normal((10, cin * 64)) / math.sqrt(cin * 64)).astype(np.float32)
    inits += [numpy_helper.from_array(w, "wf"), numpy_helper.from_array(np.zeros(10, np.float32), "bf")]
    nodes.append(helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1))
    _save(path, nodes, inits, [1, 3, 32, 32], "y", [1, 10])


def _save(path, nodes, inits, in_shape, out, out_shape) -> None:
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))


# ---- one point, in a child process ----------------------------------------------------------

def child(spec: dict) -> dict:
    """Run one point; returns its figures (printed as JSON by the child)."""
    from hwflow.commands.inspect import layer_stats
    from hwflow.flow import compile_model, load_graph
    from hwflow.schedule.fit import fit_check

    t0 = time.perf_counter()
    model = Path(spec["model"])
    out: dict = {}
    if spec["mode"] == "compile":
        m = compile_model(model, "generic", Path(spec["tmp"]) / "build", calib_path=spec.get("calib"),
                          quant_config=_quant(spec))
        out["steps"] = m["compile_seconds"]
        out["verilog_mb"] = (Path(m["path"]) / m["verilog"]).stat().st_size / 1e6
        out["cycles"] = m["cycles"]
    else:  # inspect and fit check, then the refused compile
        g = load_graph(model)
        t1 = time.perf_counter()
        rep = fit_check(g, "fpga-medium")
        out["steps"] = {"load+optimize": t1 - t0, "fit": time.perf_counter() - t1}
        out["verdict"] = rep.verdict
        out["message"] = rep.message()
        out["params"] = sum(r["params"] for r in layer_stats(g))
        out["macs"] = sum(r["macs"] for r in layer_stats(g))
    out["seconds"] = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_mb"] = ru.ru_maxrss / 1024
    out["cpu"] = ru.ru_utime + ru.ru_stime  # the whole process: imports included
    return out


def _quant(spec):
    from hwflow.config import QuantConfig

    return QuantConfig(calibration="none") if spec.get("calib") is None else QuantConfig()


def refuse(model: Path) -> dict:
    """``hwflow compile MODEL --target fpga-medium``: wall time, peak memory, exit status, message."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-m", "hwflow.cli", "compile", str(model), "--target", "fpga-medium",
                              "-o", str(Path(tmp) / "b")], stdout=subprocess.DEVNULL, stderr=err, text=True)
        _, status, ru = os.wait4(p.pid, 0)  # this child's own peak (RUSAGE_CHILDREN is the max of all so far)
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        secs = time.perf_counter() - t0
        built = (Path(tmp) / "b").exists()
        err.seek(0)
        line = err.read().strip()
    return {"seconds": secs, "peak_mb": ru.ru_maxrss / 1024, "exit": p.returncode,
            "line": line, "build": built}


def run_point(spec: dict) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{spec}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def params_macs(model: Path) -> tuple[int, int]:
    from hwflow.commands.inspect import layer_stats
    from hwflow.flow import load_graph

    rows = layer_stats(load_graph(model))
    return sum(r["params"] for r in rows), sum(r["macs"] for r in rows)


def slope(xs, ys, params=None) -> float:
    """The log-log slope of ``ys`` against ``xs`` over the points of >= 100 k parameters
    (``params``, default ``xs``)."""
    params = xs if params is None else params
    pts = [(math.log(x), math.log(y)) for x, y, p in zip(xs, ys, params) if p >= 1e5 and y > 0]
    if len(pts) < 2:
        return float("nan")
    a = np.array(pts)
    return float(np.polyfit(a[:, 0], a[:, 1], 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="MLPs up to H = 1600, CNNs up to 64 channels.")
    ap.add_argument("--families", default="mlp,cnn,squeezenet,big")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    fams = args.families.split(",")
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ)
    print(f"$ {env + ' ' if env else ''}python bench/scale.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    print(f"load average at start: {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(other jobs share the machine: compare CPU seconds, not only wall)")
    print(f"(hwflow compile --target generic per point, each in its own process; {time.strftime('%Y-%m-%d')})\n")
    head = (f"{'model':<22}{'params':>11}{'MACs':>14}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}  "
            + "".join(f"{s:>9}" for s in STEPS))
    print(head + f"{'Verilog MB':>11}")
    rows: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        points = []
        if "mlp" in fams:
            points += [("mlp", f"mlp 784-{h}-10", lambda p, h=h: mlp(p, h)) for h in HIDDEN
                       if not args.quick or h <= 1600]
        if "cnn" in fams:
            points += [("cnn", f"cnn C={c}", lambda p, c=c: cnn(p, c)) for c in CHANNELS if not args.quick or c <= 64]
        for fam, name, make in points:
            model = tmp / f"{name.replace(' ', '_').replace('=', '')}.onnx"
            make(model)
            shape = (784,) if fam == "mlp" else (3, 32, 32)
            calib = tmp / "calib.npz"
            np.savez(calib, x=np.random.default_rng(0).standard_normal((64, *shape)).astype(np.float32))
            r = run_point({"mode": "compile", "model": str(model), "calib": str(calib), "tmp": str(tmp)})
            _row(rows, fam, name, *params_macs(model), r)
        if "squeezenet" in fams:
            model = light("squeezenet")
            r = run_point({"mode": "compile", "model": str(model), "tmp": str(tmp)})
            _row(rows, "squeezenet", "squeezenet 1.0", *params_macs(model), r)
    for fam, pts in rows.items():
        if len(pts) > 1:
            xs = [p[0] for p in pts]
            print(f"slope {fam:<8} (>= 100 k params): time {slope(xs, [p[1] for p in pts]):.2f}, "
                  f"CPU time {slope(xs, [p[3] for p in pts]):.2f}, peak memory {slope(xs, [p[2] for p in pts]):.2f}; "
                  f"MACs against params {slope(xs, [p[4] for p in pts]):.2f}, "
                  f"CPU time against MACs {slope([p[4] for p in pts], [p[3] for p in pts], xs):.2f}")
    if "big" in fams:
        print("\nfit check only (hwflow inspect MODEL --target fpga-medium), and the refused compile:")
        for name in ("resnet50", "vgg19"):
            r = run_point({"mode": "inspect", "model": str(light(name))})
            print(f"{name:<10}{r['params']:>13,} params: inspect+fit {r['seconds']:.2f} s ({r['cpu']:.2f} CPU s) "
                  f"(load+optimize {r['steps']['load+optimize']:.2f}, fit {r['steps']['fit']:.2f}), "
                  f"peak {r['peak_mb']:.0f} MB: {r['verdict']}")
            c = refuse(light(name))
            print(f"{'':<10}compile --target fpga-medium: exit {c['exit']} in {c['seconds']:.2f} s, peak {c['peak_mb']:.0f} MB, "
                  f"BUILD written: {'yes' if c['build'] else 'no'}")
            print(f"{'':<10}{c['line']}")
    return 0


def _row(rows, fam, name, params, macs, r) -> None:
    steps = r["steps"]
    print(f"{name:<22}{params:>11,}{macs:>14,}{r['seconds']:>9.2f}{r['cpu']:>8.2f}{r['peak_mb']:>9.0f}  "
          + "".join(f"{steps.get(s, 0):>9.2f}" for s in STEPS) + f"{r['verilog_mb']:>11.1f}", flush=True)
    rows.setdefault(fam, []).append((params, r["seconds"], r["peak_mb"], r["cpu"], macs))


if __name__ == "__main__":
    sys.exit(main())
