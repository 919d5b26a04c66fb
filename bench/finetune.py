"""``hwflow finetune`` against post-training quantization (issue 16's goals).

For each row: the float model's and the post-training quantization's test accuracy
(``hwflow eval MODEL --calib CALIB --wbits W --abits A``), then ``hwflow finetune`` run
as a user would (the command line, timed), and the fine-tuned model's test accuracy
(``hwflow eval OUT.onnx``, the integer network ``compile`` builds from it).

The best epoch is chosen on validation data (10 % of the training split, held out and
not trained on), never on the test set; the test set is only measured. ``finetune``'s
own figure (on the validation data) is checked against ``hwflow eval OUT.onnx`` on the
same data: they must be equal.

Rows: the ResNet-8 (examples/models/ic_resnet8.onnx, MLPerf Tiny IC, trained in float
on digits upsampled to 32x32x3 by examples/mlperf_tiny.py), w2a4, w2a2, and w2a2 with
the last layer's output (the logits) at 8 bits; the digits CNN (8x8) at w2a4 and w2a2
with 8-bit logits, and with pot4 weights (``--weights pot``, 8-bit activations); the
SFC-shaped MLP on digits-28 (examples/models/digits784_sfc.onnx, examples/sfc_mlp.py)
at w1a1: binary weights and sign activations in the hidden layers, the first and last
layer at 8 bits (``--weights binary --abits 1``). The last column compares finetune's
figure with ``hwflow eval OUT.onnx`` and with the compiled BUILD's ``Build.predict`` on
the validation data.

    python bench/finetune.py [--epochs 3] [--rows w2a4,w2a2] [--train-samples N] [--train-opts "--distill 0.5 ..."]
                             [--out bench/results/finetune.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
sys.path.insert(0, str(ROOT / "examples"))

#: row name -> (model stem, extra quantization options, goal: max pp below float, or (as a string) the least
#: accuracy in %)
ROWS = {
    "w2a4": ("ic_resnet8", ["--wbits", "2", "--abits", "4"], 1.0),
    "w2a2": ("ic_resnet8", ["--wbits", "2", "--abits", "2"], 3.0),
    # the logits at 2 bits are 4 levels for 10 classes (ties): the output layer at 8 bits
    "w2a2-fc8": ("ic_resnet8", ["--wbits", "2", "--abits", "2", "--bits", "fc=2/8"], 3.0),
    # the digits CNN (8x8): no residual Add, so its QONNX output compiles since the exact QONNX importer
    "cnn-w2a4": ("digits_cnn", ["--wbits", "2", "--abits", "4"], 1.0),
    "cnn-w2a2-fc8": ("digits_cnn", ["--wbits", "2", "--abits", "2", "--bits", "fc=2/8"], 3.0),
    "cnn-pot4": ("digits_cnn", ["--weights", "pot"], 0.3),
    "sfc-w1a1": ("digits784_sfc", ["--weights", "binary", "--abits", "1"], "95"),
}
#: model -> the digits (N, 1, 8, 8) as its input, as it was trained
INPUTS = {"ic_resnet8": lambda x: __import__("mlperf_tiny").upsample(x, 32), "digits_cnn": lambda x: x,
          "digits784_sfc": lambda x: __import__("digits").upsample28(x)}
#: model -> the stem of its shipped calibration and test files (the SFC shares the 784-input MLP's)
DATA = {"digits784_sfc": "digits784_tanh_mlp"}


def _goal(goal, fl: float, fa: float) -> str:
    if isinstance(goal, str):
        return f"≥ {goal} %: {'met' if fa >= float(goal) else 'MISSED'}"
    return f"≤ {goal:.1f} pp below: {'met' if fl - fa <= goal else 'MISSED'}"
HWFLOW = [sys.executable, "-m", "hwflow.cli"]


def _hwflow(args: list[str]) -> dict:
    p = subprocess.run([*HWFLOW, *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"hwflow {' '.join(map(str, args))} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def _train_data(stem: str, tmp: Path, samples: int | None = None) -> tuple[Path, Path]:
    """The digits training split (examples/digits.py's, as the model was trained), 10 % held out;
    of the rest, the first ``samples`` (a seeded shuffle) are trained on."""
    from digits import load_splits

    x, y = load_splits()["train"]
    x = INPUTS[stem](x)
    held = np.random.default_rng(0).permutation(len(y))
    n = len(y) // 10
    train = held[n:] if samples is None else held[n:n + samples]
    np.savez(tmp / "train.npz", x=x[train], y=y[train])
    np.savez(tmp / "val.npz", x=x[held[:n]], y=y[held[:n]])
    return tmp / "train.npz", tmp / "val.npz"


def _build_accuracy(model: Path, data: Path, out: Path) -> float:
    """The compiled BUILD's accuracy on ``data`` (``Build.predict``: the integer reference the
    hardware is simulated against), for target generic (no fit check)."""
    import hwflow

    build = hwflow.compile(model, target="generic", out=out)
    d = np.load(data)
    return float(np.mean(build.predict(d["x"]).reshape(len(d["y"]), -1).argmax(1) == d["y"]))


def _child_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: on a shared machine the
    wall time also counts other jobs' load."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-2)
    ap.add_argument("--train-samples", type=int, default=None,
                    help="train on this many of the training split (default all 1,024 not held out)")
    ap.add_argument("--train-opts", default="", help="more finetune options, e.g. '--warmup 0.1 --distill 0.5'")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args(argv)
    t_all = time.monotonic()
    lines, commands = [], []
    with tempfile.TemporaryDirectory(prefix="hwflow-bench-finetune-") as tmp:
        tmp = Path(tmp)
        for row in args.rows.split(","):
            stem, qopts, goal = ROWS[row]
            data = DATA.get(stem, stem)
            model, calib, test = MODELS / f"{stem}.onnx", MODELS / f"{data}_calib.npz", MODELS / f"{data}_test.npz"
            train, val = _train_data(stem, tmp, args.train_samples)
            ptq = _hwflow(["eval", model, "--data", test, "--calib", calib, *qopts, "--json"])
            out = tmp / f"{stem}_{row}.onnx"
            cmd = ["finetune", model, "--data", train, "--val", val, "--calib", calib, *qopts, "--epochs", args.epochs,
                   "--lr", args.lr, *shlex.split(args.train_opts), "--json", "-o", out]
            t0, c0 = time.monotonic(), _child_cpu()
            ft = _hwflow(cmd)
            seconds, cpu = time.monotonic() - t0, _child_cpu() - c0
            commands.append("hwflow " + shlex.join([_rel(Path(a)) if isinstance(a, Path) else str(a) for a in cmd])
                            .replace(str(tmp) + "/", "").replace("train.npz", "TRAIN.npz").replace("val.npz", "VAL.npz"))
            after = _hwflow(["eval", out, "--data", test, "--calib", calib, *qopts, "--json"])
            # finetune's own figure is the integer network's on the validation data: re-measure it there
            check = _hwflow(["eval", out, "--data", val, "--calib", calib, *qopts, "--json"])
            built = _build_accuracy(out, val, tmp / f"BUILD_{row}")
            equal = check["quant_accuracy"] == ft["accuracy"] == built
            fl, pq, fa = 100 * ptq["float_accuracy"], 100 * ptq["quant_accuracy"], 100 * after["quant_accuracy"]
            lines.append(f"| {stem}, {row} | {fl:.2f} | {pq:.2f} ({pq - fl:+.2f}) | {fa:.2f} ({fa - fl:+.2f}) "
                         f"| {_goal(goal, fl, fa)} | {ft['best_epoch']}/"
                         f"{args.epochs} | {seconds:.0f} ({cpu:.0f}) | {'equal' if equal else 'DIFFERENT'} |")
            print(lines[-1], flush=True)
    sub = f" --lr {args.lr:g}" if args.lr != 3e-2 else ""
    sub += f" --train-samples {args.train_samples}" if args.train_samples else ""
    sub += f" --train-opts {shlex.quote(args.train_opts)}" if args.train_opts else ""
    head = [f"# Produced by: python bench/finetune.py --epochs {args.epochs} --rows {args.rows}{sub}   "
            f"({time.strftime('%Y-%m-%d')}, {time.monotonic() - t_all:.0f} s)",
            "",
            "Test accuracy (%, 360 test samples) of the integer network compile builds; best epoch chosen on "
            f"10 % of the training split held out. Load average at the end: {os.getloadavg()[0]:.1f} (2 cores).",
            "",
            "| model, setting | float | post-training | after finetune | goal | best epoch | finetune s (CPU s) "
            "| finetune figure vs eval vs BUILD |",
            "|---|---|---|---|---|---|---|---|"]
    tail = ["", "finetune commands (TRAIN/VAL: the model's digits training split, 10 % held out as VAL; OUT.onnx then "
            "measured with hwflow eval OUT.onnx --data TEST --calib CALIB):",
            *[f"  {c}" for c in commands]]
    text = "\n".join(head + lines + tail)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
