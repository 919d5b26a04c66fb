"""The exporter fixtures (tests/fixtures/digits) through hwflow: the acceptance table of issue 12.

Per fixture, as its exporter wrote it (tf2onnx, Brevitas' export_qonnx, skl2onnx, torch):

- accuracy on the shipped test data: the framework's float model (``float``; for
  Brevitas the QAT model in torch), qonnx's executor (``QAT``, Brevitas only, from
  MANIFEST.json), and hwflow's integer reference (``hwflow``, what the hardware computes;
  hwflow's defaults, with the fixture's calibration data where it has some);
- ``int=qonnx``: Brevitas only, whether hwflow's integer outputs equal qonnx's on every
  test vector (the real outputs within qonnx's float32 rounding, < 2**-10 of an output
  step plus 2**-18 of the largest logit), else on how many; and how many samples have
  tied integer logits (their argmax may differ);
- the build (``hwflow compile --target T``, fpga-small unless the memory cannot fit):
  weight ROM bits, cycles per inference;
- ``exact``: ``hwflow simulate`` on the BUILD's first stored vectors (Amaranth for the
  small builds, Icarus for the large ones, or ``--simulator``): bit- and cycle-exact.

    python bench/exporters.py [--models keras_dscnn,...] [--simulator verilator] [--limit 2]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hwflow
from hwflow.data import input_codes, load_data
from hwflow.flow import load_graph, quantize_graph
from hwflow.quant.evaluate import evaluate

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "tests" / "fixtures" / "digits"
MANIFEST = json.loads((DIGITS / "MANIFEST.json").read_text())
MODELS = [n for n in sorted(MANIFEST) if "zipmap" not in n]
#: fixture -> target where it is not fpga-small (every one fits it now)
TARGET: dict[str, str] = {}
EXPORTER = {"keras": "tf2onnx", "brevitas": "brevitas", "skl": "skl2onnx", "torch": "torch"}
LARGE = ("keras_resnet8", "keras_dscnn", "torch_mlp784_image")


def _qonnx_check(name: str, qg) -> str:
    """'yes (T tied)' when hwflow's integer logits are qonnx's on every test vector."""
    from hwflow.quant.reference import run_int_batch

    with np.load(DIGITS / f"{name}.npz") as d:
        x, q = d["x"], d["qonnx"].astype(np.float64)
    codes = run_int_batch(qg, input_codes(x, qg.tensors[qg.input], shape=qg.input_shape)).reshape(len(x), -1)
    out = qg.tensors[qg.output]
    scale = np.asarray(out.scale, np.float64).reshape(-1) * np.ones(codes.shape[1])
    offset = np.zeros(codes.shape[1])
    tail = qg.host_tail.graph
    for node in tail.nodes:  # a per-class Mul / Add by constants
        c = np.asarray(tail.const(node.inputs[1]), np.float64).reshape(-1)
        scale, offset = (scale * c, offset * c) if node.op == "Mul" else (scale, offset + c)
    k = (q.reshape(codes.shape) - offset) / scale + np.asarray(out.zero_point).reshape(-1)
    real = scale * (codes - np.asarray(out.zero_point).reshape(-1)) + offset
    tied = int(((real == real.max(1, keepdims=True)).sum(1) > 1).sum())
    # qonnx's float32: within 2**-24 of the largest logit of a code; a sample further off had an
    # activation within float32 rounding of a tie (tests/fixtures/test_digits_hwflow.py FLOAT_TIES)
    off = int((np.abs(k - codes) >= 2**-10 + 2**-18 * np.abs(k).max(1, keepdims=True)).any(1).sum())
    return f"{'yes' if not off else f'{len(x) - off}/{len(x)}'} ({tied} tied)"


def run(name: str, simulator: str | None, limit: int, work: Path) -> dict:
    entry = MANIFEST[name]
    calib = DIGITS / f"{name}_calib.npz"
    calib = calib if calib.exists() else None
    graph = load_graph(DIGITS / f"{name}.onnx")
    shape = graph.shape(graph.inputs[0])
    x, y = load_data(DIGITS / f"{name}.npz", shape)
    qg = quantize_graph(graph, load_data(calib, shape)[0] if calib else None).qgraph
    res = evaluate(graph, qg, x, y)
    acc = entry["accuracy"]
    row = {"fixture": name, "exporter": EXPORTER[name.split("_")[0]],
           "n": len(x), "float": res["float_accuracy"], "qat": acc.get("qonnx"), "hwflow": res["quant_accuracy"],
           "int=qonnx": _qonnx_check(name, qg) if "qonnx" in acc else "-"}
    target = TARGET.get(name, "fpga-small")
    t0 = time.perf_counter()
    build = hwflow.compile(DIGITS / f"{name}.onnx", target=target, calib=calib, out=work / name, vectors=limit)
    row.update(target=target, rom_bits=build.manifest["memory"]["weight_rom_bits"], cycles=build.manifest["cycles"],
               compile_s=time.perf_counter() - t0)
    sim = simulator or ("icarus" if name in LARGE else "amaranth")
    r = build.simulate(sim, limit=limit)
    ok = r.passed and r.cycles == [r.predicted_cycles] * r.vectors == r.core_cycles
    row["exact"] = f"{'yes' if ok else 'NO'} ({sim}, {r.vectors})"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--simulator", choices=("amaranth", "icarus", "verilator"))
    ap.add_argument("--limit", type=int, default=1, help="vectors to simulate per build")
    args = ap.parse_args(argv)
    print("command: python bench/" + Path(__file__).name + " " + shlex.join(sys.argv[1:] if argv is None else argv))
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}"  # noqa: E731
    head = f"{'fixture':24} {'exporter':10} {'n':>4} {'float %':>8} {'QAT %':>7} {'hwflow %':>8} " \
           f"{'int=qonnx':>14} {'target':11} {'ROM bits':>9} {'cycles':>8} exact"
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = run(name, args.simulator, args.limit, Path(tmp))
            print(f"{r['fixture']:24} {r['exporter']:10} {r['n']:>4} {pct(r['float']):>8} {pct(r['qat']):>7} "
                  f"{pct(r['hwflow']):>8} {r['int=qonnx']:>14} {r['target']:11} {r['rom_bits']:>9,} "
                  f"{r['cycles']:>8,} {r['exact']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
