"""hwflow's quantizer side by side with onnxruntime.quantization.quantize_static.

For each model (examples/models: the CNN, the Gemm+Tanh MLP, and the MLP whose
MatMul+Add is left unfused — hwflow reads that one without the optimizer), on the
same test set and calibration subsets (one per seed), prints accuracy, top-1
agreement with float, logit SQNR and weight storage for every hwflow configuration
and for onnxruntime (quant_pre_process, then quantize_static with MinMax, Entropy,
Percentile; per-tensor and per-channel; QDQ int8), run as a user would (default
session) and with graph optimizations off (plain QDQ semantics: on x86 without VNNI
the fused u8s8 kernels can saturate). The goals compare against the best ORT row.

    python bench/quant_vs_ort.py [--seeds 3] [--calib-size 200] [--models digits_mlp,...] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization as oq
from onnxruntime.quantization.shape_inference import quant_pre_process

from hwflow.ir.onnx_import import load_model
from hwflow.passes import optimize
from hwflow.quant import QuantConfig, quantize
from hwflow.quant.evaluate import compare, float_logits, quant_logits

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
#: model -> whether hwflow runs the optimizer first (digits_mlp stays MatMul+Add)
MODEL_LIST = {"digits_mlp": False, "digits784_tanh_mlp": True, "digits_cnn": True}


def logits_model(path: Path) -> onnx.ModelProto:
    """The model without a trailing Softmax/LogSoftmax, so both sides compare logits."""
    m = onnx.load(str(path))
    last = m.graph.node[-1]
    if last.op_type in ("Softmax", "LogSoftmax"):
        out = m.graph.output[0]
        m.graph.node.remove(last)
        vi = onnx.helper.make_tensor_value_info(last.input[0], out.type.tensor_type.elem_type, None)
        vi.type.CopyFrom(out.type)
        m.graph.output.remove(out)
        m.graph.output.append(vi)
    return m


class _Reader(oq.CalibrationDataReader):
    def __init__(self, name: str, x: np.ndarray):
        self.items = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.items, None)


def ort_logits(model: onnx.ModelProto, calib: np.ndarray, test: np.ndarray, method: str, per_channel: bool):
    """Quantize with onnxruntime (after its own pre-processing, which folds BatchNorm) and
    run it; returns (logits with default session options, logits with graph
    optimizations off = plain QDQ semantics, weight bits)."""
    with tempfile.TemporaryDirectory() as d:
        src, pre, dst = Path(d) / "f.onnx", Path(d) / "p.onnx", Path(d) / "q.onnx"
        onnx.save(model, str(src))
        quant_pre_process(str(src), str(pre))
        name = model.graph.input[0].name
        oq.quantize_static(str(pre), str(dst), _Reader(name, calib), quant_format=oq.QuantFormat.QDQ,
                           per_channel=per_channel, calibrate_method=getattr(oq.CalibrationMethod, method),
                           activation_type=oq.QuantType.QInt8, weight_type=oq.QuantType.QInt8)
        sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
        y = sess.run(None, {name: test})[0]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        y_plain = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"]).run(None, {name: test})[0]
        q = onnx.load(str(dst))
        wbits = sum(int(np.prod(i.dims)) * 8 for i in q.graph.initializer
                    if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2)
    return y.reshape(len(test), -1), y_plain.reshape(len(test), -1), wbits


def hwflow_configs(quick: bool) -> list[tuple[str, QuantConfig]]:
    out = []
    schemes = ["pow2", "symmetric", "asymmetric"]
    for scheme, pc, wb, rec in itertools.product(schemes, [False, True], [8, 4, 3], [False, True]):
        if quick and (rec or wb == 3):
            continue
        name = f"{scheme} {'pc' if pc else 'pt'} w{wb}a8{' +cle+bc' if rec else ' -cle-bc'}"
        out.append((name, QuantConfig(scheme=scheme, per_channel=pc, wbits=wb, cle=rec, bias_correction=rec)))
    return out


def fmt(vals, pct=False, digits=2):
    a = np.asarray(vals, dtype=np.float64) * (100 if pct else 1)
    return f"{a.mean():.{digits}f}±{a.std():.{digits}f}" if len(a) > 1 else f"{a.mean():.{digits}f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--calib-size", type=int, default=200)
    ap.add_argument("--models", default=",".join(MODEL_LIST))
    ap.add_argument("--quick", action="store_true", help="fewer hwflow configurations")
    args = ap.parse_args(argv)
    cmd = "python bench/quant_vs_ort.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    t0 = time.time()
    goals = {}
    for model_name in args.models.split(","):
        path = MODELS / f"{model_name}.onnx"
        graph = load_model(path)
        if MODEL_LIST.get(model_name, True):
            graph = optimize(graph)
        shape = graph.shape(graph.inputs[0])
        cal_all = np.load(MODELS / f"{model_name}_calib.npz")["x"].astype(np.float32).reshape(-1, *shape[1:])
        t = np.load(MODELS / f"{model_name}_test.npz")
        x, y = t["x"].astype(np.float32).reshape(-1, *shape[1:]), t["y"]
        lmodel = logits_model(path)
        rows: dict[str, list[dict]] = {}
        ref = None
        for seed in range(args.seeds):
            idx = np.random.default_rng(seed).choice(len(cal_all), min(args.calib_size, len(cal_all)), replace=False)
            cal = cal_all[idx]
            for method, pc in itertools.product(["MinMax", "Entropy", "Percentile"], [False, True]):
                lg, lg_plain, wb = ort_logits(lmodel, cal, x, method, pc)
                if ref is None:
                    probe = quantize(graph, QuantConfig(), cal)
                    ref = float_logits(graph, probe, x)
                for tag, out in (("", lg), (" (no ORT opt)", lg_plain)):
                    r = compare(ref, out, y)
                    r["weight_bits"] = wb
                    rows.setdefault(f"ORT {method} {'pc' if pc else 'pt'} w8a8{tag}", []).append(r)
            for name, cfg in hwflow_configs(args.quick):
                qg = quantize(graph, cfg, cal)
                r = compare(ref, quant_logits(qg, x), y)
                r["weight_bits"] = qg.weight_bits()
                rows.setdefault(f"hwflow {name}", []).append(r)
            # no calibration data: the declared input range of the digits data is [0, 1]
            qg = quantize(graph, QuantConfig(calibration="none", input_range=(0.0, 1.0)), None)
            r = compare(ref, quant_logits(qg, x), y)
            r["weight_bits"] = qg.weight_bits()
            rows.setdefault("hwflow asymmetric pc w8a8 no-calib", []).append(r)
        float_acc = rows[next(iter(rows))][0]["float_accuracy"]
        print(f"\n### {model_name}  (float accuracy {100 * float_acc:.2f} %, {len(x)} test samples, "
              f"{args.seeds} calibration subsets of {min(args.calib_size, len(cal_all))}"
              f"{'; hwflow without the optimizer: MatMul+Add unfused' if not MODEL_LIST.get(model_name, True) else ''})\n")
        print(f"| {'configuration':<36} | {'accuracy %':>12} | {'agreement %':>12} | {'SQNR dB':>12} | {'weight bits':>11} |")
        print(f"|{'-' * 38}|{'-' * 14}:|{'-' * 14}:|{'-' * 14}:|{'-' * 12}:|")
        for name, rs in rows.items():
            print(f"| {name:<36} | {fmt([r['quant_accuracy'] for r in rs], True):>12} | "
                  f"{fmt([r['agreement'] for r in rs], True):>12} | {fmt([r['sqnr_db'] for r in rs]):>12} | "
                  f"{rs[0]['weight_bits']:>11} |")
        goals[model_name] = (float_acc, rows)
    print_goals(goals)
    print(f"\ncommand: {cmd}   ({time.time() - t0:.0f} s)")
    return 0


def _mean(rs, key):
    return float(np.mean([r[key] for r in rs]))


def print_goals(goals) -> None:
    print("\n### Goals (means over seeds; hwflow rows with its defaults: +cle+bc, GPTQ, mse)\n")
    print("ORT-relative goals are judged twice: against ORT as users run it (default session) and")
    print("against the best ORT row including plain QDQ semantics (graph optimizations off).\n")
    print("| model | configuration | goal | measured | met vs ORT as run | met vs best ORT row |")
    print("|---|---|---|---|---|---|")
    yes = lambda ok: "yes" if ok else "NO"
    for model, (facc, rows) in goals.items():
        run = [v for k, v in rows.items() if k.startswith("ORT") and "no ORT opt" not in k]
        every = [v for k, v in rows.items() if k.startswith("ORT")]
        agree_r, agree_a = (max(_mean(v, "agreement") for v in vs) for vs in (run, every))
        sqnr_r, sqnr_a = (max(_mean(v, "sqnr_db") for v in vs) for vs in (run, every))

        def line(cfg, goal, measured, ok_run, ok_all=None):
            ok_all = ok_run if ok_all is None else ok_all
            print(f"| {model} | {cfg} | {goal} | {measured} | {yes(ok_run)} | {yes(ok_all)} |")

        for scheme in ("symmetric", "asymmetric"):
            k = f"hwflow {scheme} pc w8a8 +cle+bc"
            if k in rows:
                a, s, acc = _mean(rows[k], "agreement"), _mean(rows[k], "sqnr_db"), _mean(rows[k], "quant_accuracy")
                drop_ok = facc - acc <= 0.001 + 1e-9
                line(f"int8 {scheme} per-channel",
                     f"agree ≥ {100 * agree_r:.2f}% / {100 * agree_a:.2f}%, SQNR ≥ {sqnr_r + 1:.2f} / {sqnr_a + 1:.2f} dB, "
                     f"drop ≤ 0.1 pp",
                     f"agree {100 * a:.2f}%, SQNR {s:.2f} dB, drop {100 * (facc - acc):+.2f} pp",
                     a >= agree_r and s >= sqnr_r + 1 and drop_ok, a >= agree_a and s >= sqnr_a + 1 and drop_ok)
        k = "hwflow pow2 pc w8a8 +cle+bc"
        if k in rows:
            s, acc = _mean(rows[k], "sqnr_db"), _mean(rows[k], "quant_accuracy")
            drop_ok = facc - acc <= 0.005 + 1e-9
            line("int8 power-of-2", f"drop ≤ 0.5 pp, SQNR ≥ {sqnr_r - 2:.2f} / {sqnr_a - 2:.2f} dB",
                 f"drop {100 * (facc - acc):+.2f} pp, SQNR {s:.2f} dB", drop_ok and s >= sqnr_r - 2, drop_ok and s >= sqnr_a - 2)
        for k in ("hwflow asymmetric pc w4a8 +cle+bc", "hwflow symmetric pc w4a8 +cle+bc"):
            if k in rows:
                a, s = _mean(rows[k], "agreement"), _mean(rows[k], "sqnr_db")
                line(k[7:], "agree ≥ 99.6%, SQNR ≥ 25 dB", f"agree {100 * a:.2f}%, SQNR {s:.2f} dB", a >= 0.996 and s >= 25)
        for k in ("hwflow asymmetric pt w3a8 +cle+bc", "hwflow symmetric pt w3a8 +cle+bc"):
            if k in rows:
                acc = _mean(rows[k], "quant_accuracy")
                line(k[7:], "acc ≥ float − 0.6 pp", f"acc {100 * acc:.2f}% (float {100 * facc:.2f}%)", acc >= facc - 0.006 - 1e-9)
        k = "hwflow asymmetric pc w8a8 no-calib"
        if k in rows:
            s = _mean(rows[k], "sqnr_db")
            line("no calibration data", "SQNR ≥ 37 dB (goal on the MLP)", f"SQNR {s:.2f} dB", s >= 37)


if __name__ == "__main__":
    sys.exit(main())
