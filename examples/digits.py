"""Train and export hwflow's example networks on scikit-learn's 8x8 digits.

Run ``python examples/digits.py`` to regenerate every file in ``examples/models/``
(no torch, no network; about 10 s).  The same seed gives the same
files and the same accuracies.  ``python examples/digits.py --check`` only loads the
shipped models, runs them in onnxruntime on the shipped test data and compares the
accuracies with ``examples/models/metrics.json``.

The models, all ONNX opset 13 with a symbolic batch dimension ``N``:

``digits_mlp.onnx``
    64-32-10 MLP with ReLU, trained by scikit-learn's ``MLPClassifier`` and written
    the way TensorFlow/sklearn-style exporters write it: MatMul+Add+Relu, MatMul+Add,
    Softmax tail.  Input ``(N, 64)``.
``digits_cnn.onnx``
    Conv 1->8 3x3 (no bias) -> BatchNormalization -> Relu -> MaxPool 2x2 ->
    Conv 8->16 3x3 -> Relu -> MaxPool 2x2 -> Flatten -> Gemm 64->10 (logits),
    trained here in numpy (im2col backprop, Adam).  The BatchNormalization node keeps
    its running mean and variance, so importing it exercises BN folding.
    Input ``(N, 1, 8, 8)``.
``digits784_tanh_mlp.onnx``
    784-100-10 MLP with tanh (the shape of LeNet-style MNIST MLPs) on the digits
    upsampled to 28x28; written the way torch writes ``nn.Linear``: Gemm (transB=1) ->
    Tanh -> Gemm -> Softmax.  Input ``(N, 784)``.

Every model ships with ``<model>_calib.npz`` (300 samples) and ``<model>_test.npz``
(360 samples): ``x`` float32 in [0, 1] shaped like the model input, ``y`` int64 labels.
The three splits (train 1137 / calib 300 / test 360) are disjoint and the same for
all models.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 0
N_TEST = 360
N_CALIB = 300
OPSET = 13
IR_VERSION = 8  # the IR version that goes with opset 13 in onnx 1.10+
MODELS = ("digits_mlp", "digits_cnn", "digits784_tanh_mlp")
DEFAULT_OUT = Path(__file__).resolve().parent / "models"


# ---------------------------------------------------------------- data


def load_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The digits scaled to [0, 1] as (N, 1, 8, 8) float32, split train/calib/test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    perm = np.random.default_rng(SEED).permutation(len(y))
    idx = {
        "test": perm[:N_TEST],
        "calib": perm[N_TEST : N_TEST + N_CALIB],
        "train": perm[N_TEST + N_CALIB :],
    }
    return {k: (x[i], y[i]) for k, i in idx.items()}


def upsample28(x: np.ndarray) -> np.ndarray:
    """(N, 1, 8, 8) digits -> (N, 784) 28x28 images, quantized to k/255 like MNIST."""
    from scipy.ndimage import gaussian_filter, zoom

    big = zoom(x[:, 0].astype(np.float64), (1, 3.5, 3.5), order=1)  # bilinear, 8*3.5 = 28
    big = gaussian_filter(big, sigma=(0, 0.5, 0.5))  # soften the bilinear ridges
    big = np.clip(np.round(big * 255.0), 0, 255) / 255.0
    return big.reshape(len(x), 784).astype(np.float32)


# ---------------------------------------------------------------- ONNX helpers


def _init(name: str, a: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), name)


def _model(name: str, nodes, inits, in_shape, out_name: str, out_shape, doc: str):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *in_shape])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["N", *out_shape])
    graph = helper.make_graph(nodes, name, [x], [y], initializer=inits, doc_string=doc)
    model = helper.make_model(
        graph,
        producer_name="hwflow-examples",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def mlp_to_onnx(weights, biases, act: str, style: str, name: str, doc: str) -> onnx.ModelProto:
    """An MLP as ONNX: ``style`` "matmul" (MatMul+Add) or "gemm" (Gemm, transB=1).

    ``weights[i]`` is (in, out) as in sklearn's ``coefs_``.  Hidden layers use ``act``;
    the last layer is followed by a Softmax (a host-side tail for hwflow).
    """
    nodes, inits, cur = [], [], "input"
    for i, (w, b) in enumerate(zip(weights, biases)):
        out = f"fc{i}"
        if style == "matmul":
            inits += [_init(f"fc{i}.weight", w), _init(f"fc{i}.bias", b)]
            nodes.append(helper.make_node("MatMul", [cur, f"fc{i}.weight"], [f"{out}_mm"], name=f"fc{i}_matmul"))
            nodes.append(helper.make_node("Add", [f"{out}_mm", f"fc{i}.bias"], [out], name=f"fc{i}_add"))
        else:  # torch nn.Linear layout: weight (out, in), Gemm transB=1
            inits += [_init(f"fc{i}.weight", w.T), _init(f"fc{i}.bias", b)]
            nodes.append(
                helper.make_node("Gemm", [cur, f"fc{i}.weight", f"fc{i}.bias"], [out], name=f"fc{i}", transB=1)
            )
        cur = out
        if i < len(weights) - 1:
            nodes.append(helper.make_node(act, [cur], [f"{act.lower()}{i}"], name=f"{act.lower()}{i}"))
            cur = f"{act.lower()}{i}"
    nodes.append(helper.make_node("Softmax", [cur], ["probabilities"], name="softmax", axis=1))
    return _model(name, nodes, inits, [weights[0].shape[0]], "probabilities", [weights[-1].shape[1]], doc)


# ---------------------------------------------------------------- sklearn MLPs


def train_sklearn_mlp(x, y, hidden: int, act: str, max_iter: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        hidden_layer_sizes=(hidden,),
        activation=act,
        solver="adam",
        alpha=1e-4,
        batch_size=32,
        learning_rate_init=1e-3,
        max_iter=max_iter,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return clf


# ---------------------------------------------------------------- numpy CNN


def _im2col3(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C*9) patches of a 3x3, pad 1, stride 1 convolution."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=2)
    return cols.transpose(0, 3, 4, 1, 2).reshape(n * h * w, c * 9)


def _col2im3(dcols: np.ndarray, shape) -> np.ndarray:
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 9).transpose(0, 3, 4, 1, 2)  # (N, C, 9, H, W)
    dxp = np.zeros((n, c, h + 2, w + 2), dtype=dcols.dtype)
    for k in range(9):
        i, j = divmod(k, 3)
        dxp[:, :, i : i + h, j : j + w] += d[:, :, k]
    return dxp[:, :, 1:-1, 1:-1]


def _conv(x, w, b):
    n, _, h, wd = x.shape
    cols = _im2col3(x)
    out = cols @ w.reshape(len(w), -1).T
    if b is not None:
        out += b
    return out.reshape(n, h, wd, len(w)).transpose(0, 3, 1, 2), cols


def _conv_back(dout, cols, w, xshape):
    o = len(w)
    d = dout.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (d.T @ cols).reshape(w.shape)
    db = d.sum(0)
    dx = _col2im3(d @ w.reshape(o, -1), xshape)
    return dx, dw, db


def _pool(x):
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(-1)
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], arg


def _pool_back(dout, arg, xshape):
    n, c, h, w = xshape
    dwin = np.zeros((n, c, h // 2, w // 2, 4), dtype=dout.dtype)
    np.put_along_axis(dwin, arg[..., None], dout[..., None], -1)
    return dwin.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(xshape)


class DigitsCNN:
    """The example CNN, float64 numpy, with forward/backward for training."""

    EPS = 1e-5
    MOMENTUM = 0.1  # torch's convention for the running statistics

    def __init__(self, rng: np.random.Generator):
        def he(shape, fan_in):
            return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)

        self.p = {
            "conv1.weight": he((8, 1, 3, 3), 9),
            "bn1.weight": np.ones(8),
            "bn1.bias": np.zeros(8),
            "conv2.weight": he((16, 8, 3, 3), 72),
            "conv2.bias": np.zeros(16),
            "fc.weight": he((10, 64), 64),
            "fc.bias": np.zeros(10),
        }
        self.running_mean = np.zeros(8)
        self.running_var = np.ones(8)

    def forward(self, x, train: bool):
        p, c = self.p, {}
        z1, c["cols1"] = _conv(x, p["conv1.weight"], None)
        if train:
            mu, var = z1.mean((0, 2, 3)), z1.var((0, 2, 3))
            m = z1.size // z1.shape[1]
            self.running_mean = (1 - self.MOMENTUM) * self.running_mean + self.MOMENTUM * mu
            self.running_var = (1 - self.MOMENTUM) * self.running_var + self.MOMENTUM * var * m / (m - 1)
        else:
            mu, var = self.running_mean, self.running_var
        inv = 1.0 / np.sqrt(var + self.EPS)
        xhat = (z1 - mu[:, None, None]) * inv[:, None, None]
        a1 = np.maximum(p["bn1.weight"][:, None, None] * xhat + p["bn1.bias"][:, None, None], 0.0)
        p1, c["arg1"] = _pool(a1)
        z2, c["cols2"] = _conv(p1, p["conv2.weight"], p["conv2.bias"])
        a2 = np.maximum(z2, 0.0)
        p2, c["arg2"] = _pool(a2)
        flat = p2.reshape(len(x), -1)
        logits = flat @ p["fc.weight"].T + p["fc.bias"]
        c.update(x=x, z1=z1, inv=inv, xhat=xhat, a1=a1, p1=p1, a2=a2, flat=flat)
        return logits, c

    def backward(self, dlogits, c):
        p, g = self.p, {}
        g["fc.weight"] = dlogits.T @ c["flat"]
        g["fc.bias"] = dlogits.sum(0)
        dp2 = (dlogits @ p["fc.weight"]).reshape(-1, 16, 2, 2)
        da2 = _pool_back(dp2, c["arg2"], c["a2"].shape) * (c["a2"] > 0)
        dp1, g["conv2.weight"], g["conv2.bias"] = _conv_back(da2, c["cols2"], p["conv2.weight"], c["p1"].shape)
        dbn = _pool_back(dp1, c["arg1"], c["a1"].shape) * (c["a1"] > 0)
        xhat = c["xhat"]
        g["bn1.weight"] = (dbn * xhat).sum((0, 2, 3))
        g["bn1.bias"] = dbn.sum((0, 2, 3))
        dxhat = dbn * p["bn1.weight"][:, None, None]
        m = dbn.size // dbn.shape[1]
        dz1 = (
            c["inv"][:, None, None]
            / m
            * (
                m * dxhat
                - dxhat.sum((0, 2, 3))[:, None, None]
                - xhat * (dxhat * xhat).sum((0, 2, 3))[:, None, None]
            )
        )
        _, g["conv1.weight"], _ = _conv_back(dz1, c["cols1"], p["conv1.weight"], c["x"].shape)
        return g

    def predict(self, x):
        return self.forward(x.astype(np.float64), train=False)[0].argmax(1)


def train_cnn(x, y, epochs: int = 30, batch: int = 32, lr: float = 3e-3) -> DigitsCNN:
    """Mini-batch Adam on softmax cross-entropy with light L2 on the weights."""
    rng = np.random.default_rng(SEED)
    net = DigitsCNN(rng)
    m = {k: np.zeros_like(v) for k, v in net.p.items()}
    v = {k: np.zeros_like(v) for k, v in net.p.items()}
    b1, b2, t = 0.9, 0.999, 0
    x = x.astype(np.float64)
    for epoch in range(epochs):
        step_lr = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s : s + batch]
            if len(idx) < 2:  # batch statistics need at least two samples
                continue
            logits, cache = net.forward(x[idx], train=True)
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(idx)), y[idx]] -= 1.0
            grads = net.backward(prob / len(idx), cache)
            t += 1
            for k, gk in grads.items():
                if k.endswith("weight") and not k.startswith("bn"):
                    gk = gk + 1e-4 * net.p[k]
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                mhat, vhat = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
                net.p[k] -= step_lr * mhat / (np.sqrt(vhat) + 1e-8)
    return net


def cnn_to_onnx(net: DigitsCNN, doc: str) -> onnx.ModelProto:
    p = net.p
    inits = [
        _init("conv1.weight", p["conv1.weight"]),
        _init("bn1.weight", p["bn1.weight"]),
        _init("bn1.bias", p["bn1.bias"]),
        _init("bn1.running_mean", net.running_mean),
        _init("bn1.running_var", net.running_var),
        _init("conv2.weight", p["conv2.weight"]),
        _init("conv2.bias", p["conv2.bias"]),
        _init("fc.weight", p["fc.weight"]),
        _init("fc.bias", p["fc.bias"]),
    ]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    n = helper.make_node
    nodes = [
        n("Conv", ["input", "conv1.weight"], ["conv1"], name="conv1", **conv),
        n(
            "BatchNormalization",
            ["conv1", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"],
            ["bn1"],
            name="bn1",
            epsilon=DigitsCNN.EPS,
            momentum=1 - DigitsCNN.MOMENTUM,  # ONNX momentum weighs the old running value
        ),
        n("Relu", ["bn1"], ["relu1"], name="relu1"),
        n("MaxPool", ["relu1"], ["pool1"], name="pool1", **pool),
        n("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], name="conv2", **conv),
        n("Relu", ["conv2"], ["relu2"], name="relu2"),
        n("MaxPool", ["relu2"], ["pool2"], name="pool2", **pool),
        n("Flatten", ["pool2"], ["flat"], name="flatten", axis=1),
        n("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
    ]
    return _model("digits_cnn", nodes, inits, [1, 8, 8], "logits", [10], doc)


# ---------------------------------------------------------------- driver


def ort_accuracy(model_path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an ONNX model in onnxruntime."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float((out.argmax(1) == y).mean())


def _save_npz(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    np.savez_compressed(path, x=x.astype(np.float32), y=y.astype(np.int64))


def flat(a: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, features)."""
    return a.reshape(len(a), -1)


def build(out: Path) -> dict[str, dict[str, float]]:
    """Train every example, write it to ``out``, return the measured accuracies."""
    out.mkdir(parents=True, exist_ok=True)
    s = load_splits()
    (xtr, ytr), (xca, yca), (xte, yte) = s["train"], s["calib"], s["test"]
    metrics: dict[str, dict[str, float]] = {}

    # (a) 64-32-10 ReLU MLP
    clf = train_sklearn_mlp(flat(xtr), ytr, 32, "relu", max_iter=300)
    mlp = mlp_to_onnx(
        clf.coefs_, clf.intercepts_, "Relu", "matmul", "digits_mlp",
        "64-32-10 ReLU MLP on sklearn digits (x/16), trained by sklearn MLPClassifier",
    )
    data = {"digits_mlp": (flat(xca), flat(xte))}
    onnx.save(mlp, out / "digits_mlp.onnx")
    metrics["digits_mlp"] = {"train_framework": float(clf.score(flat(xte), yte))}

    # (b) numpy CNN with a real BatchNormalization node
    net = train_cnn(xtr, ytr)
    onnx.save(cnn_to_onnx(net, "Conv-BN-Relu-MaxPool-Conv-Relu-MaxPool-Flatten-Gemm on sklearn digits (x/16)"),
              out / "digits_cnn.onnx")
    data["digits_cnn"] = (xca, xte)
    metrics["digits_cnn"] = {"train_framework": float((net.predict(xte) == yte).mean())}

    # (c) 784-100-10 tanh MLP on digits upsampled to 28x28
    x28tr, x28ca, x28te = upsample28(xtr), upsample28(xca), upsample28(xte)
    clf28 = train_sklearn_mlp(x28tr, ytr, 100, "tanh", max_iter=200)
    onnx.save(
        mlp_to_onnx(
            clf28.coefs_, clf28.intercepts_, "Tanh", "gemm", "digits784_tanh_mlp",
            "784-100-10 tanh MLP on sklearn digits upsampled to 28x28, trained by sklearn MLPClassifier",
        ),
        out / "digits784_tanh_mlp.onnx",
    )
    data["digits784_tanh_mlp"] = (x28ca, x28te)
    metrics["digits784_tanh_mlp"] = {"train_framework": float(clf28.score(x28te, yte))}

    for name, (xc, xt) in data.items():
        _save_npz(out / f"{name}_calib.npz", xc, yca)
        _save_npz(out / f"{name}_test.npz", xt, yte)
        metrics[name]["onnxruntime"] = ort_accuracy(out / f"{name}.onnx", xt, yte)
        metrics[name]["n_test"] = int(len(yte))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def check(out: Path) -> bool:
    """Run the shipped models on the shipped test data; compare with metrics.json."""
    want = json.loads((out / "metrics.json").read_text())
    ok = True
    for name in MODELS:
        onnx.checker.check_model(onnx.load(out / f"{name}.onnx"), full_check=True)
        with np.load(out / f"{name}_test.npz") as d:
            acc = ort_accuracy(out / f"{name}.onnx", d["x"], d["y"])
        good = acc == want[name]["onnxruntime"]
        ok &= good
        print(f"{name:20s} test accuracy {acc:.4f}  (metrics.json {want[name]['onnxruntime']:.4f}) "
              f"{'ok' if good else 'MISMATCH'}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default examples/models)")
    ap.add_argument("--check", action="store_true", help="only evaluate the shipped models, do not train")
    args = ap.parse_args(argv)
    if args.check:
        return 0 if check(args.out) else 1
    metrics = build(args.out)
    for name, m in metrics.items():
        print(f"{name:20s} test accuracy {m['onnxruntime']:.4f} (onnxruntime, {m['n_test']} samples; "
              f"training framework {m['train_framework']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
