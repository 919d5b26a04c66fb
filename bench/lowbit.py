"""Low-bit post-training quantization (issue 15, the quantizer half): pot, ternary, binary.

Three tables, all without retraining, on the shipped examples (360 test samples, the
300 calibration samples, hwflow's defaults otherwise: asymmetric, per-channel, MSE
calibration, CLE, bias correction, GPTQ rounding):

1. pot4 (4-bit power-of-two weight codes) on the digits CNN and the 784-100-10 tanh MLP
   against float and against int4 weights. Goals: accuracy within 1 pp of float, logit
   SQNR within 3 dB of int4 weights. The weight SQNR column is the network's weights
   (after cross-layer equalization, as the quantizer sees them) against their
   dequantized codes: the error pot's grid makes before any compensation.
2. Ternary and binary weights with 8-bit activations on the digits CNN, with and
   without bias correction: the first and last layers keep int8 (the default), or every
   layer takes the format (``--weights conv1=F --weights fc=F``).
3. The SFC-shaped MLP (examples/sfc_mlp.py: 784-256-256-256-10, BatchNorm + Sign hidden
   activations, float weights) with binary hidden weights and 1-bit activations, 8-bit
   first and last layers. FINN's SFC-max (w1a1, MNIST, trained binarized) reaches
   95.83 %; this is post-training quantization of a float-weight network on the 28x28
   digits, a different data set (retraining is ``hwflow finetune``, issue 16).

4. Hardware (the issue's hardware half): each configuration compiled (``hwflow compile``
   with the flags shown) and, with ``--synth``, synthesised (``hwflow synth``: Yosys and
   nextpnr); the lane type the array runs, its shape, the cycles per inference and the
   latency (at the placed Fmax with ``--synth``, else the target's clock goal), the weight
   ROM's bits and their ratio to the layers' own bits (each weight at its code width,
   binary 1), LUTs and DSPs (estimate, and placed with ``--synth``), the binary MACs per
   cycle where the hidden layers are binary (the XNOR-popcount unit's ``xrows x simd`` when it
   runs them, rtl/xnor_array.py; else the array's PE x SIMD). The LUT cost of one lane by type: ``bench/lanes.py``.

Every row's configuration column is the ``hwflow eval`` flags that reproduce it.

    python bench/lowbit.py [--tables 1,2,3,4] [--synth] [--models digits784_sfc]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from hwflow.flow import load_graph
from hwflow.quant import QuantConfig, quantize
from hwflow.quant._lower import lower
from hwflow.quant.evaluate import compare, float_logits, quant_logits, sqnr_db
from hwflow.quant.recover import equalize

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"


def _data(model: str, data: str | None = None):
    d = data or model
    calib = np.load(MODELS / f"{d}_calib.npz")["x"]
    test = np.load(MODELS / f"{d}_test.npz")
    return load_graph(MODELS / f"{model}.onnx"), calib, test["x"], test["y"]


def _weight_sqnr(graph, qg) -> float:
    """Weights the quantizer saw (lowered, equalized) against ``codes * scale``, all layers."""
    plan = lower(graph)
    equalize(plan)
    w = {l.name: l.weight for l in plan.layers if l.has_weight}
    ref, deq = [], []
    for layer in qg.layers:
        if layer.weight is not None:
            s = np.asarray(layer.attrs["w_scale"]).reshape((-1,) + (1,) * (layer.weight.ndim - 1))
            ref.append(w[layer.name].ravel())
            deq.append((layer.weight * s).ravel())
    return sqnr_db(np.concatenate(ref), np.concatenate(deq))


def _run(graph, calib, x, y, flags: str) -> dict:
    cfg = _config(flags)
    t0 = time.time()
    qg = quantize(graph, cfg, calib)
    res = compare(float_logits(graph, qg, x), quant_logits(qg, x), y)
    res["weight_sqnr_db"] = _weight_sqnr(graph, qg)
    res["seconds"] = time.time() - t0
    res["formats"] = " ".join(f"{l.wformat}{l.wbits}" for l in qg.layers if l.weight is not None)
    return res


def _config(flags: str) -> QuantConfig:
    """The QuantConfig ``hwflow eval MODEL --data D --calib C FLAGS`` builds (click parses the flags)."""
    from hwflow.commands._quant_options import quant_config
    from hwflow.commands.eval import eval_cmd

    ctx = eval_cmd.make_context("eval", ["model.onnx", "--data", "d.npz", "--calib", "c.npz", *shlex.split(flags)])
    return quant_config(ctx.params.pop("calib"), **ctx.params)


def _row(flags: str, r: dict, extra: str = "") -> str:
    return (f"| `{flags or '(defaults: int8)'}` | {100 * r['quant_accuracy']:.2f} | {100 * r['agreement']:.2f} | "
            f"{r['sqnr_db']:.2f} | {r['weight_sqnr_db']:.2f} | {r['formats']} |{extra}")


HEAD = "| configuration (`hwflow eval` flags) | accuracy % | agreement % | logit SQNR dB | weight SQNR dB | weights |"
RULE = "|---|---:|---:|---:|---:|---|"


def table_pot() -> None:
    print("\n## 1. pot4 weights without retraining\n")
    goals = []
    for model in ("digits_cnn", "digits784_tanh_mlp"):
        graph, calib, x, y = _data(model)
        rows = {f: _run(graph, calib, x, y, f) for f in (
            "--wbits 8", "--wbits 4", "--weights pot", "--weights pot --rounding nearest",
            "--weights pot --wbits 3", "--wbits 4 --scheme pow2", "--weights pot --scheme pow2")}
        fa = rows["--wbits 4"]["float_accuracy"]
        print(f"### {model}  (float accuracy {100 * fa:.2f} %)\n")
        print(HEAD + " Δacc pp | ΔSQNR vs int4 dB |")
        print(RULE + "---:|---:|")
        for f, r in rows.items():
            ref = rows["--wbits 4 --scheme pow2" if "pow2" in f else "--wbits 4"]
            print(_row(f, r, f" {100 * (r['quant_accuracy'] - fa):+.2f} | {r['sqnr_db'] - ref['sqnr_db']:+.2f} |"))
        print()
        for f, ref in (("--weights pot", "--wbits 4"), ("--weights pot --scheme pow2", "--wbits 4 --scheme pow2")):
            r, i4 = rows[f], rows[ref]
            goals.append((model, f, 100 * (r["quant_accuracy"] - fa), r["sqnr_db"] - i4["sqnr_db"]))
    print("### Goals (pot4 vs float accuracy; logit SQNR vs int4 with the same scheme)\n")
    print("| model | configuration | Δaccuracy pp (goal ≥ -1) | ΔSQNR dB (goal ≥ -3) |")
    print("|---|---|---:|---:|")
    for model, f, dacc, dsqnr in goals:
        print(f"| {model} | `{f}` | {dacc:+.2f} {'met' if dacc >= -1 else 'MISSED'} | "
              f"{dsqnr:+.2f} {'met' if dsqnr >= -3 else 'MISSED'} |")


def table_ternary_binary() -> None:
    print("\n## 2. Ternary and binary weights, 8-bit activations, digits CNN\n")
    graph, calib, x, y = _data("digits_cnn")
    rows = {}
    for fmt in ("ternary", "binary"):
        for every in (False, True):
            for bc in (True, False):
                flags = f"--weights {fmt}" + (f" --weights conv1={fmt} --weights fc={fmt}" if every else "")
                flags += "" if bc else " --no-bias-correction"
                rows[flags] = _run(graph, calib, x, y, flags)
    print(f"float accuracy {100 * next(iter(rows.values()))['float_accuracy']:.2f} %\n")
    print(HEAD)
    print(RULE)
    for flags, r in rows.items():
        print(_row(flags, r))


def table_sfc() -> None:
    print("\n## 3. SFC-shaped MLP 784-256-256-256-10 (sign activations), post-training\n")
    graph, calib, x, y = _data("digits784_sfc", "digits784_tanh_mlp")
    rows = {}
    for flags in ("", "--abits 1", "--weights binary --abits 1", "--weights binary --abits 1 --no-bias-correction",
                  "--weights binary --abits 1 --rounding nearest", "--weights binary --abits 1 --scheme pow2",
                  "--weights ternary --abits 1", "--weights pot --abits 1"):
        rows[flags] = _run(graph, calib, x, y, flags)
    print(f"float accuracy {100 * rows['']['float_accuracy']:.2f} % (float weights, Sign activations); "
          f"FINN SFC-max anchor: 95.83 % (w1a1 trained binarized, MNIST)\n")
    print(HEAD + " s |")
    print(RULE + "---:|")
    for flags, r in rows.items():
        print(_row(flags, r, f" {r['seconds']:.0f} |"))


#: table 4's rows: (model, calib, target, compile flags)
HW_ROWS = [
    ("digits_cnn", "digits_cnn_calib", "fpga-small", ""),
    ("digits_cnn", "digits_cnn_calib", "fpga-small", "--scheme pow2 --weights pot --wbits 4 --pe 4 --simd 4"),
    ("digits_cnn", "digits_cnn_calib", "fpga-small", "--scheme pow2 --weights pot --wbits 4"),
    ("digits_cnn", "digits_cnn_calib", "fpga-small", "--weights ternary --weights conv1=ternary --weights fc=ternary"),
    ("digits784_sfc", "digits784_tanh_mlp_calib", "fpga-tiny", "--weights binary --abits 1"),
    ("digits784_sfc", "digits784_tanh_mlp_calib", "fpga-tiny", "--weights binary --abits 1 --bits fc0=4/1"),
    ("digits784_sfc", "digits784_tanh_mlp_calib", "fpga-medium", "--weights binary --abits 1"),
]


def table_hw(synth: bool = False, models: str = "") -> None:
    import json
    import tempfile

    from hwflow.build import load_build
    from hwflow.cli import main as cli
    from hwflow.targets import load_target

    print("\n## 4. Hardware: lane type, cycles, LUTs and DSPs" + (" (placed: hwflow synth)" if synth else "") + "\n")
    print("| model | target | flags | lane | PE x SIMD | bin MACs/cyc | cycles | us | ROM bits | / own | "
          "est. LUT | est. DSP | LUT | DSP | Fmax MHz |")
    print("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (model, calib, target, flags) in enumerate(HW_ROWS):
            if models and model not in models.split(","):
                continue
            out = Path(tmp) / f"b{i}"
            rc = cli(["compile", str(MODELS / f"{model}.onnx"), "--calib", str(MODELS / f"{calib}.npz"),
                      "--target", target, "-o", str(out), *shlex.split(flags)])
            if rc != 0:
                print(f"| {model} | {target} | `{flags}` | compile failed (exit {rc}) |" + " |" * 11)
                continue
            sch = json.loads((out / "schedule.json").read_text())
            est = sch["estimate"]
            # the array's lane type, and the XNOR unit's when it runs some layers
            lane = " / ".join(dict.fromkeys(d["lane"] for d in sch["lanes"])) if sch.get("lanes") else sch["lane"]
            placed = ["", "", ""]
            if synth:
                rep = out / "synth.json"
                cli(["synth", str(out)])
                if rep.exists():
                    r = json.loads(rep.read_text())
                    res = r.get("resources", r)
                    placed = [str(res.get("lut", {}).get("used", "")) if isinstance(res.get("lut"), dict) else "",
                              str(res.get("dsp", {}).get("used", "")) if isinstance(res.get("dsp"), dict) else "",
                              f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else ""]
            # The ROM against each layer's weights at its own code width (binary: 1 bit).
            b = load_build(out)
            prog, qg = b.program(), b.qgraph()
            own = sum(l.weight.size * (1 if l.wformat == "binary" else l.wbits) for l in qg.layers if l.weight is not None)
            binary = any(l.wformat == "binary" for l in qg.layers if l.weight is not None)
            mhz = float(placed[2]) if placed[2] else load_target(target).clock_mhz
            # binary MACs a cycle: the XNOR unit's when it runs the binary layers, else the array's
            bin_macs = sch["xnor"]["binary_macs"] if sch.get("xnor") else sch["pe"] * sch["simd"]
            print(f"| {model} | {target} | `{flags}` | {lane} | {sch['pe']} x {sch['simd']} | "
                  f"{bin_macs if binary else '-'} | {sch['cycles']:,} | {sch['cycles'] / mhz:,.1f} | "
                  f"{prog.weight_rom_bits:,} | {prog.weight_rom_bits / own:.3f} | "
                  f"{est['luts']} | {est['dsps']} | {' | '.join(placed)} |")


TABLES = {"1": table_pot, "2": table_ternary_binary, "3": table_sfc, "4": table_hw}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default="1,2,3,4",
                    help="which tables (1: pot4, 2: ternary/binary CNN, 3: SFC, 4: hardware)")
    ap.add_argument("--synth", action="store_true", help="table 4: synthesise each build (Yosys and nextpnr)")
    ap.add_argument("--models", default="", help="table 4: only these models (comma-separated)")
    args = ap.parse_args(argv)
    t0 = time.time()
    cmd = ("python bench/lowbit.py" + (f" --tables {args.tables}" if args.tables != "1,2,3,4" else "")
           + (" --synth" if args.synth else "") + (f" --models {args.models}" if args.models else ""))
    print(f"# Produced by: {cmd}")
    for t in args.tables.split(","):
        TABLES[t.strip()](args.synth, args.models) if t.strip() == "4" else TABLES[t.strip()]()
    print(f"\ncommand: {cmd}   ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
