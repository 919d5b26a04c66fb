"""Train and export an SFC-shaped binarizing MLP (FINN's SFC topology) on the 28x28 digits.

``python examples/sfc_mlp.py`` trains it in float (numpy only; about a minute on two
cores) and writes ``examples/models/digits784_sfc.onnx`` and ``examples/models/sfc_mlp.json``;
``--check`` only runs the shipped model in onnxruntime on the shipped test data and
compares with the JSON.

``digits784_sfc.onnx``, input ``(N, 784)``, ONNX opset 13::

    Gemm 784->256 -> BatchNormalization -> Sign
    Gemm 256->256 -> BatchNormalization -> Sign
    Gemm 256->256 -> BatchNormalization -> Sign
    Gemm 256->10 (logits) -> Softmax

The layer sizes are those of FINN's SFC (the binarized MNIST MLP of the FINN paper),
whose hidden activations are signs. The weights are float: the network is trained with
the signs in place (their gradient passed straight through where ``|x| <= 1``, as for
binarized networks) but without binarizing its weights, so it is the float model that
post-training quantization to binary weights starts from (``bench/lowbit.py``;
retraining with binary weights is ``hwflow finetune``'s job). The first layer reads
8-bit pixels and the last writes logits, so hwflow keeps them at 8 bits under
``--weights binary --abits 1``.

The data are ``examples/digits.py``'s: the digits upsampled to 28x28 with the same
train / calib / test splits, so the model uses ``digits784_tanh_mlp_calib.npz`` and
``digits784_tanh_mlp_test.npz``. A fixed seed makes a run deterministic on one machine
(training goes through BLAS, so another CPU may land a sample or two away).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import DEFAULT_OUT, SEED, _init, _model, load_splits, ort_accuracy, upsample28  # noqa: E402

NAME = "digits784_sfc"
SIZES = (784, 256, 256, 256, 10)
EPS = 1e-5
MOMENTUM = 0.1  # of the running statistics, torch's convention
DATA = "digits784_tanh_mlp"  # the data files it shares


class SFC:
    """The float SFC MLP with sign activations, float32 numpy, forward/backward for training."""

    def __init__(self, rng: np.random.Generator):
        self.p: dict[str, np.ndarray] = {}
        for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
            self.p[f"fc{i}.weight"] = rng.normal(0.0, np.sqrt(1.0 / n_in), (n_out, n_in)).astype(np.float32)
            self.p[f"fc{i}.bias"] = np.zeros(n_out, np.float32)
            if i < len(SIZES) - 2:
                self.p[f"bn{i}.weight"] = np.ones(n_out, np.float32)
                self.p[f"bn{i}.bias"] = np.zeros(n_out, np.float32)
        self.stats = {i: (np.zeros(n, np.float32), np.ones(n, np.float32)) for i, n in enumerate(SIZES[1:-1])}

    def forward(self, x: np.ndarray, train: bool):
        p, cache, a = self.p, [], x
        for i in range(len(SIZES) - 1):
            z = a @ p[f"fc{i}.weight"].T + p[f"fc{i}.bias"]
            if i == len(SIZES) - 2:
                cache.append((a,))
                return z, cache
            if train:
                mu, var = z.mean(0), z.var(0)
                m0, v0 = self.stats[i]
                n = len(z)
                self.stats[i] = ((1 - MOMENTUM) * m0 + MOMENTUM * mu, (1 - MOMENTUM) * v0 + MOMENTUM * var * n / (n - 1))
            else:
                mu, var = self.stats[i]
            inv = 1.0 / np.sqrt(var + EPS)
            xhat = (z - mu) * inv
            y = p[f"bn{i}.weight"] * xhat + p[f"bn{i}.bias"]
            cache.append((a, xhat, inv, y))
            a = np.where(y >= 0, 1.0, -1.0).astype(np.float32)

    def backward(self, dz: np.ndarray, cache) -> dict[str, np.ndarray]:
        p, g = self.p, {}
        last = len(SIZES) - 2
        for i in range(last, -1, -1):
            a = cache[i][0]
            if i < last:
                _, xhat, inv, y = cache[i]
                dy = dz * (np.abs(y) <= 1.0)  # straight-through estimator of the sign
                g[f"bn{i}.weight"] = (dy * xhat).sum(0)
                g[f"bn{i}.bias"] = dy.sum(0)
                dxhat = dy * p[f"bn{i}.weight"]
                n = len(dy)
                dz = inv / n * (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0))
            g[f"fc{i}.weight"] = dz.T @ a
            g[f"fc{i}.bias"] = dz.sum(0)
            dz = dz @ p[f"fc{i}.weight"]
        return g

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x.astype(np.float32), train=False)[0].argmax(1)


def train(x: np.ndarray, y: np.ndarray, epochs: int = 60, batch: int = 64, lr: float = 3e-3) -> SFC:
    """Mini-batch Adam on softmax cross-entropy, cosine learning rate, light L2 on the weights."""
    rng = np.random.default_rng(SEED)
    net = SFC(rng)
    m = {k: np.zeros_like(v) for k, v in net.p.items()}
    v = {k: np.zeros_like(v) for k, v in net.p.items()}
    b1, b2, t = 0.9, 0.999, 0
    x = x.astype(np.float32)
    for epoch in range(epochs):
        step_lr = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            if len(idx) < 2:  # batch statistics need two samples
                continue
            logits, cache = net.forward(x[idx], train=True)
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1.0
            grads = net.backward((prob / len(idx)).astype(np.float32), cache)
            t += 1
            for k, gk in grads.items():
                if k.startswith("fc") and k.endswith("weight"):
                    gk = gk + 1e-4 * net.p[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mhat, vhat = m[k] / (1 - b1 ** t), v[k] / (1 - b2 ** t)
                net.p[k] = (net.p[k] - step_lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(np.float32)
    return net


def to_onnx(net: SFC) -> onnx.ModelProto:
    """Gemm (transB=1) -> BatchNormalization -> Sign per hidden layer, Gemm -> Softmax."""
    nodes, inits, cur = [], [], "input"
    for i in range(len(SIZES) - 1):
        inits += [_init(f"fc{i}.weight", net.p[f"fc{i}.weight"]), _init(f"fc{i}.bias", net.p[f"fc{i}.bias"])]
        nodes.append(helper.make_node("Gemm", [cur, f"fc{i}.weight", f"fc{i}.bias"], [f"fc{i}"], name=f"fc{i}",
                                      transB=1))
        cur = f"fc{i}"
        if i == len(SIZES) - 2:
            break
        mu, var = net.stats[i]
        inits += [_init(f"bn{i}.weight", net.p[f"bn{i}.weight"]), _init(f"bn{i}.bias", net.p[f"bn{i}.bias"]),
                  _init(f"bn{i}.running_mean", mu), _init(f"bn{i}.running_var", var)]
        nodes.append(helper.make_node(
            "BatchNormalization", [cur, f"bn{i}.weight", f"bn{i}.bias", f"bn{i}.running_mean", f"bn{i}.running_var"],
            [f"bn{i}"], name=f"bn{i}", epsilon=EPS, momentum=1 - MOMENTUM))
        nodes.append(helper.make_node("Sign", [f"bn{i}"], [f"sign{i}"], name=f"sign{i}"))
        cur = f"sign{i}"
    nodes.append(helper.make_node("Softmax", [cur], ["probabilities"], name="softmax", axis=1))
    doc = ("784-256-256-256-10 MLP (FINN's SFC shape) with BatchNorm + Sign hidden activations and float weights, "
           "on sklearn digits upsampled to 28x28")
    return _model(NAME, nodes, inits, [SIZES[0]], "probabilities", [SIZES[-1]], doc)


def build(out: Path) -> dict[str, float]:
    """Train, write the model and its JSON to ``out``; return the measured accuracies."""
    s = load_splits()
    (xtr, ytr), (_, _), (xte, yte) = s["train"], s["calib"], s["test"]
    x28tr, x28te = upsample28(xtr), upsample28(xte)
    net = train(x28tr, ytr)
    onnx.save(to_onnx(net), out / f"{NAME}.onnx")
    metrics = {"train_framework": float((net.predict(x28te) == yte).mean()),
               "onnxruntime": ort_accuracy(out / f"{NAME}.onnx", x28te, yte), "n_test": int(len(yte)),
               "data": DATA}
    (out / "sfc_mlp.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def check(out: Path) -> bool:
    """Run the shipped model on the shipped test data; compare with sfc_mlp.json."""
    want = json.loads((out / "sfc_mlp.json").read_text())
    onnx.checker.check_model(onnx.load(out / f"{NAME}.onnx"), full_check=True)
    with np.load(out / f"{DATA}_test.npz") as d:
        acc = ort_accuracy(out / f"{NAME}.onnx", d["x"], d["y"])
    ok = acc == want["onnxruntime"]
    print(f"{NAME} test accuracy {acc:.4f}  (sfc_mlp.json {want['onnxruntime']:.4f}) {'ok' if ok else 'MISMATCH'}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default examples/models)")
    ap.add_argument("--check", action="store_true", help="only evaluate the shipped model, do not train")
    args = ap.parse_args(argv)
    if args.check:
        return 0 if check(args.out) else 1
    args.out.mkdir(parents=True, exist_ok=True)
    m = build(args.out)
    print(f"{NAME} test accuracy {m['onnxruntime']:.4f} (onnxruntime, {m['n_test']} samples; "
          f"training framework {m['train_framework']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
