#!/usr/bin/env python3
"""Quantization-aware fine-tuning of the ResNet-8 on digits-32, then hardware.

The float model is ``examples/models/ic_resnet8.onnx`` (the MLPerf Tiny IC ResNet-8,
trained in float on scikit-learn's digits upsampled to 32x32x3 by
``examples/mlperf_tiny.py``). For each setting (default w2a4 and w2a2) this script

1. fine-tunes it under the quantization ``compile`` builds (``hwflow.finetune``; the
   training data are the digits-32 training split, the validation data the shipped
   test split, the calibration the shipped calibration split),
2. compiles the fine-tuned QONNX model (``hwflow.compile``, the same options),
3. checks that the compiled BUILD's integer reference (``Build.predict``) has exactly
   the accuracy ``finetune`` reported, on the same data,
4. simulates the hardware against that reference (bit- and cycle-exact).

``--model digits_cnn`` does the same for the shipped digits CNN (8x8), and ``--model
digits784_sfc`` for the SFC-shaped MLP on digits-28 (``examples/sfc_mlp.py``). A setting
is ``wNaM`` (``w1``: binary weights, which keep the first and last layer at 8 bits, as
``--abits 1`` does), or ``potNaM`` (pot weights of N bits), e.g. ``w2a4``, ``pot4a8``,
``w1a1`` (the SFC's binary hidden layers with sign activations).

hwflow reads the fine-tuned QONNX model exactly as qonnx's executor computes it
(:mod:`hwflow.quant.qonnx`, residual Adds included). CI runs the quick
``--model digits_cnn`` run below.

Needs ``pip install 'hwflow[train]'`` (PyTorch CPU). Exit status 1 if a check fails.

Usage::

    python examples/finetune_resnet8.py                       # w2a4 and w2a2, 3 epochs each
    python examples/finetune_resnet8.py --model digits_cnn --settings w2a4 --epochs 1 \\
        --train-samples 256 --vectors 1 --out /tmp/ft        # the quick run CI does
    python examples/finetune_resnet8.py --model digits784_sfc --settings w1a1 --epochs 6
    python examples/finetune_resnet8.py --model digits_cnn --settings pot4a8 --epochs 10 --lr 0.003 \\
        --ranges fixed --distill 0.5
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from digits import load_splits, upsample28  # noqa: E402  (the shared train/calib/test split)
from mlperf_tiny import upsample  # noqa: E402  (digits -> 32x32x3, as the model was trained)

MODELS = HERE / "models"
#: model -> the digits (N, 1, 8, 8) as its input, as it was trained
INPUTS = {"ic_resnet8": lambda x: upsample(x, 32), "digits_cnn": lambda x: x, "digits784_sfc": upsample28}
#: model -> the stem of its shipped calibration and test files (the SFC shares the 784-input MLP's)
DATA = {"digits784_sfc": "digits784_tanh_mlp"}


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(logits).reshape(len(y), -1).argmax(1) == y).mean())


def parse_setting(text: str):
    """The QuantConfig of ``wNaM`` (``w1``: binary weights) or ``potNaM``."""
    import hwflow

    m = re.fullmatch(r"(w|pot)(\d+)a(\d+)", text)
    if m is None:
        raise SystemExit(f"setting {text!r} is not wNaM or potNaM (e.g. w2a4, w1a1, pot4a8)")
    wbits, abits = int(m[2]), int(m[3])
    weights = "pot" if m[1] == "pot" else "binary" if wbits == 1 else "int"
    return hwflow.QuantConfig(weights=weights, wbits=wbits, abits=abits)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ic_resnet8", choices=sorted(INPUTS),
                    help="ic_resnet8 (digits at 32x32x3), digits_cnn (8x8) or digits784_sfc (28x28, the SFC MLP): "
                         "the shipped float model")
    ap.add_argument("--settings", default="w2a4,w2a2",
                    help="comma-separated wNaM or potNaM; w1 is binary (default: w2a4,w2a2)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-2)
    ap.add_argument("--ranges", default="learned", help="learned or fixed (hwflow finetune --ranges)")
    ap.add_argument("--distill", type=float, default=0.0, help="hwflow finetune --distill")
    ap.add_argument("--train-samples", type=int, default=None, help="use the first N training samples")
    ap.add_argument("--val-samples", type=int, default=None, help="use the first N test samples")
    ap.add_argument("--calib-samples", type=int, default=None, help="use the first N calibration samples")
    ap.add_argument("--simulator", default="verilator", help="amaranth, icarus, verilator, or none")
    ap.add_argument("--vectors", type=int, default=2, help="test vectors to simulate")
    ap.add_argument("--target", default="fpga-medium")
    ap.add_argument("--out", type=Path, default=Path("build/finetune_resnet8"))
    args = ap.parse_args(argv)

    import hwflow

    x, y = load_splits()["train"]
    x = INPUTS[args.model](x)[: args.train_samples]
    y = y[: args.train_samples]
    data = DATA.get(args.model, args.model)
    test = np.load(MODELS / f"{data}_test.npz")
    xv, yv = test["x"][: args.val_samples], test["y"][: args.val_samples]
    calib = MODELS / f"{data}_calib.npz"
    if args.calib_samples is not None:
        c = np.load(calib)
        calib = args.out / "calib.npz"
        args.out.mkdir(parents=True, exist_ok=True)
        np.savez(calib, x=c["x"][: args.calib_samples], y=c["y"][: args.calib_samples])
    args.out.mkdir(parents=True, exist_ok=True)
    ok = True
    print(f"{'setting':<8} {'float':>7} {'post-train':>10} {'finetuned':>9} {'BUILD':>7} {'epoch':>5} "
          f"{'train s':>7} {'simulation':>10}")
    for setting in args.settings.split(","):
        quant = parse_setting(setting)
        t0 = time.monotonic()
        res = hwflow.finetune(MODELS / f"{args.model}.onnx", (x, y), val=(xv, yv), calib=calib, quant=quant,
                              train=hwflow.TrainConfig(epochs=args.epochs, lr=args.lr, ranges=args.ranges,
                                                       distill=args.distill),
                              out=args.out / f"{args.model}_{setting}.onnx")
        seconds = time.monotonic() - t0
        build = hwflow.compile(res.path, args.target, calib=calib, quant=quant, out=args.out / setting,
                               vectors=args.vectors)
        build_acc = accuracy(build.predict(xv), yv)
        ok &= build_acc == res.accuracy
        sim = "-"
        if args.simulator != "none":
            r = build.simulate(args.simulator)
            sim = "exact" if r.passed else "MISMATCH"
            ok &= r.passed
        print(f"{setting:<8} {100 * res.float_accuracy:>6.2f}% {100 * res.ptq_accuracy:>9.2f}% "
              f"{100 * res.accuracy:>8.2f}% {100 * build_acc:>6.2f}% {res.best_epoch:>5} {seconds:>7.0f} {sim:>10}",
              flush=True)
    print("accuracy: finetune == BUILD (integer reference); hardware == reference" if ok else "CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
