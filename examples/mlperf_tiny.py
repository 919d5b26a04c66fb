"""Write the four MLPerf Tiny reference architectures as ONNX examples, with data.

How to run it (PyTorch, CPU build, is needed here and nowhere else in hwflow)::

    python -m venv /work/venvs/torch-mlperf
    /work/venvs/torch-mlperf/bin/pip install torch==2.13.0 onnx onnxruntime scikit-learn scipy numpy
    /work/venvs/torch-mlperf/bin/python examples/mlperf_tiny.py        # 3 to 5 minutes on 2 cores

(install torch's CPU wheel: the default one pulls CUDA).  It rewrites the ``ic_resnet8``,
``kws_dscnn``, ``ad_autoencoder`` and ``vww_mobilenetv1`` files of ``examples/models/`` and
``examples/models/mlperf_tiny.json``.  ``python examples/mlperf_tiny.py --check`` needs no
torch: it runs the shipped models in onnxruntime on the shipped test data and compares
with the JSON.

The architectures follow mlcommons/tiny ``benchmark/training/*/keras_model.py`` (v0.5 and
later: ResNet-8 with 16/32/64 filters, ``ds_cnn``, the ToyCar autoencoder,
``mobilenet_v1`` with 8 first-layer filters) layer for layer, in NCHW:

``ic_resnet8``  (N, 3, 32, 32) -> 10 probabilities
    Conv 16 3x3 + BN + ReLU; three stacks of Conv 3x3 + BN + ReLU, Conv 3x3 + BN, Add,
    ReLU (16, 32, 64 filters; stacks 2 and 3 start with stride 2 and take their shortcut
    through a 1x1 stride-2 Conv without BN); AveragePool 8x8; Flatten; Gemm 10; Softmax.
    Trained here on scikit-learn's digits upsampled to 32x32, in 3 channels.
``kws_dscnn``  (N, 1, 49, 10) -> 12 probabilities
    Conv 64 10x4 stride 2 + BN + ReLU; 4 x (depthwise Conv 3x3 + BN + ReLU, Conv 64 1x1 +
    BN + ReLU); AveragePool 24x5 (the reference's ``(int(49/2), int(10/2))`` over the 25x5
    map: one output, the last row is not read); Flatten; Gemm 12; Softmax.
``ad_autoencoder``  (N, 640) -> (N, 640)
    4 x (Gemm 128 + BN + ReLU), Gemm 8 + BN + ReLU, 4 x (Gemm 128 + BN + ReLU), Gemm 640.
``vww_mobilenetv1``  (N, 3, 96, 96) -> 2 probabilities
    MobileNetV1 alpha=0.25: Conv 8 3x3 stride 2 + BN + ReLU, 13 depthwise-separable blocks
    (depthwise 3x3 + BN + ReLU, pointwise + BN + ReLU; 16, 32, 32, 64, 64, 128 x 6, 256, 256
    filters, stride 2 in the 2nd, 4th, 6th and 12th depthwise), AveragePool 3x3, Flatten,
    Gemm 2, Softmax.

Every Conv and Gemm has a bias and every BatchNormalization has epsilon 1e-3 (Keras'
defaults).  The BatchNormalization nodes stay nodes of their own (exported with
``TrainingMode.PRESERVE`` from a model in eval mode; the default export folds them into
the Conv), so compiling these models exercises hwflow's BN folding.  Dropout (training
only) is left out.  Keras' ``padding='same'`` pads the odd pixel at the end (bottom/right)
when a stride-2 window does not fit evenly, which no symmetric PyTorch padding reproduces:
those convolutions are exported as ZeroPad2d + Conv, and the Pad is then folded into the
Conv's asymmetric ``pads`` (``[0, 0, 1, 1]``; ``[4, 1, 5, 1]`` for the DS-CNN's first
layer), so the graphs compute exactly what the Keras models compute.

Every model is trained here (Adam, cosine learning rate, 15 to 40 epochs on 1,137 training
samples; a few minutes of CPU in all), on small deterministic stand-ins for the reference
data sets.  The splits are those of ``examples/digits.py``: train 1,137 / calib 300 / test
360 (for VWW the first 64 calib and test images, to keep the files small).  ``x`` is
float32, shaped like the input without the batch; ``y`` int64 labels:

- ``ic_resnet8``: the digits (0..16 -> [0, 1]) upsampled bilinearly to 32x32, lightly
  blurred, rounded to k/255 like 8-bit camera pixels, repeated in 3 channels; ``y`` the
  digit.
- ``vww_mobilenetv1``: the same at 96x96; ``y`` is 1 for the digits 5..9 (a balanced
  two-class task standing in for person / no person).
- ``kws_dscnn``: MFCC-style features (30 ms Hann window, 20 ms hop, 40 mel bands up to 4
  kHz, log, DCT, 10 coefficients: the reference's settings) of 1 s of synthetic speech:
  1 to 3 syllables of one of 12 vowels, each a glottal pulse train (random 90..300 Hz
  pitch) through two formant resonators (F1 in 300/500/700 Hz, F2 in 900/1400/1900/2400
  Hz, +-8 % per speaker), in noise; ``y`` the vowel.
- ``ad_autoencoder``: 5 frames x 128 log-mel bands (1024-point FFT, hop 512, dB: the
  reference's settings) of synthetic machine hum (20 harmonics of a random 30..120 Hz
  fundamental) in noise; no ``y``: trained, like the reference, to reconstruct its input
  (mean squared error, recorded in the JSON).

Determinism: fixed seeds, one torch thread and ``torch.use_deterministic_algorithms``: a
second run on the same machine writes the same bytes.  Training goes through oneDNN, and
the audio features through numpy's FFT and BLAS, whose kernels depend on the CPU's
instruction set: another CPU may round differently and land a test sample or two away.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from digits import load_splits  # noqa: E402  (the shared train/calib/test split)

SEED = 0
OPSET = 13
DEFAULT_OUT = HERE / "models"
METRICS = "mlperf_tiny.json"
MODELS = ("ic_resnet8", "kws_dscnn", "ad_autoencoder", "vww_mobilenetv1")
N_SMALL = 64  # VWW calib/test samples (a 96x96x3 image is 27,648 floats, 23 kB compressed)
SR = 16000  # audio sample rate (Hz) of both audio references
BN_EPS = 1e-3  # Keras' BatchNormalization default (torch's is 1e-5)


# ---------------------------------------------------------------- data


def upsample(x: np.ndarray, size: int) -> np.ndarray:
    """(N, 1, 8, 8) digits in [0, 1] -> (N, 3, size, size), k/255 like 8-bit pixels."""
    from scipy.ndimage import gaussian_filter, zoom

    big = zoom(x[:, 0].astype(np.float64), (1, size / 8, size / 8), order=1)
    big = gaussian_filter(big, sigma=(0, size / 64, size / 64))  # soften the bilinear ridges
    big = np.clip(np.round(big * 255.0), 0, 255) / 255.0
    return np.repeat(big[:, None], 3, axis=1).astype(np.float32)


def _mel_bank(n_mels: int, n_fft: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the HTK mel scale."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.linspace(0, SR / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


def _power_frames(audio: np.ndarray, win: int, hop: int, n_fft: int) -> np.ndarray:
    """(N, samples) -> (N, frames, n_fft // 2 + 1) power spectra of Hann-windowed frames."""
    frames = np.lib.stride_tricks.sliding_window_view(audio, win, axis=1)[:, ::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(win), n=n_fft)) ** 2


def _tones(rng: np.random.Generator, n: int, samples: int, f0: tuple[float, float], harmonics: int) -> np.ndarray:
    """(n, samples) harmonic tones with random pitch and harmonic weights."""
    t = np.arange(samples) / SR
    pitch = rng.uniform(*f0, size=(n, 1))
    out = np.zeros((n, samples))
    for k in range(1, harmonics + 1):
        amp = rng.uniform(0.2, 1.0, size=(n, 1)) / k
        out += amp * np.sin(2 * np.pi * k * pitch * t + rng.uniform(0, 2 * np.pi, size=(n, 1)))
    return out


# The KWS classes: 12 synthetic vowels, one per (F1, F2) formant pair (Hz).
VOWELS = tuple((f1, f2) for f1 in (300.0, 500.0, 700.0) for f2 in (900.0, 1400.0, 1900.0, 2400.0))


def _vowel(rng: np.random.Generator, f1: float, f2: float) -> np.ndarray:
    """1 s of a vowel: a glottal pulse train (random 90..300 Hz pitch) through two formant resonators."""
    from scipy.signal import lfilter

    y = np.zeros(SR)
    y[rng.integers(0, 100) :: int(SR / rng.uniform(90.0, 300.0))] = 1.0
    for f, bw in ((f1, 90.0), (f2, 110.0)):
        r = np.exp(-np.pi * bw / SR)
        y = lfilter([1.0 - r], [1.0, -2.0 * r * np.cos(2 * np.pi * f / SR), r * r], y)
    return y / np.abs(y).max()


def kws_features(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 49, 10) MFCC-style features of 1 s synthetic "words" and their classes (see the docstring)."""
    from scipy.fft import dct

    y = rng.integers(0, len(VOWELS), n)
    jitter = rng.uniform(0.92, 1.08, (n, 2))  # speakers' formants differ
    voice = np.stack([_vowel(rng, *(np.array(VOWELS[c]) * j)) for c, j in zip(y, jitter)])
    t = np.arange(SR) / SR
    envelope = np.zeros((n, SR))
    syllables = rng.integers(1, 4, n)
    for k in range(3):  # 1..3 syllables, evenly spread with jitter
        centre = (k + 1) / (syllables + 1) + rng.uniform(-0.05, 0.05, n)
        width = rng.uniform(0.04, 0.09, n)
        envelope += (k < syllables)[:, None] * np.exp(-0.5 * ((t - centre[:, None]) / width[:, None]) ** 2)
    audio = voice * envelope + rng.uniform(0.005, 0.05, (n, 1)) * rng.standard_normal((n, SR))
    power = _power_frames(audio, 480, 320, 512)  # 30 ms / 20 ms: 49 frames
    mel = power @ _mel_bank(40, 512, 20.0, 4000.0).T
    x = dct(np.log(mel + 1e-6), type=2, norm="ortho", axis=-1)[..., :10][:, None].astype(np.float32)
    return x, y.astype(np.int64)


def ad_features(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 640) five 128-band log-mel frames (dB) of synthetic machine hum (see the docstring)."""
    samples = 4 * 512 + 1024  # five frames of 1024 points, hop 512
    hum = _tones(rng, n, samples, (30.0, 120.0), 20)
    audio = hum + rng.uniform(0.01, 0.3, (n, 1)) * rng.standard_normal((n, samples))
    mel = _power_frames(audio, 1024, 512, 1024) @ _mel_bank(128, 1024, 0.0, SR / 2).T
    return (10.0 * np.log10(mel + 1e-10)).reshape(n, 640).astype(np.float32)


def make_data() -> dict[str, dict[str, np.ndarray]]:
    """Per model: ``train``/``calib``/``test`` inputs and ``y_<split>`` labels (none for the autoencoder)."""
    s = load_splits()
    rng = np.random.default_rng(SEED)
    data: dict[str, dict[str, np.ndarray]] = {m: {} for m in MODELS}
    for split, (x, y) in s.items():
        keep = slice(None) if split == "train" else slice(0, N_SMALL)
        put = {
            "ic_resnet8": (upsample(x, 32), y),
            "vww_mobilenetv1": (upsample(x[keep], 96), (y[keep] >= 5).astype(np.int64)),
            "kws_dscnn": kws_features(len(y), rng),
            "ad_autoencoder": (ad_features(len(y), rng), None),
        }
        for name, (xs, ys) in put.items():
            data[name][split] = xs
            if ys is not None:
                data[name][f"y_{split}"] = ys
    return data


# ---------------------------------------------------------------- models (torch)


def _same(size: int, k: int, s: int) -> tuple[int, int]:
    """Keras/TF ``padding='same'``: (begin, end) pads; the odd one goes at the end."""
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def build_models() -> dict:
    """The four reference architectures as torch modules returning logits (or outputs)."""
    import torch
    from torch import nn

    class ConvSame(nn.Sequential):
        """Keras Conv2D/DepthwiseConv2D(padding='same') + BatchNorm on a known input size."""

        def __init__(self, cin, cout, k, stride, hw, groups=1, bn=True):
            k = (k, k) if isinstance(k, int) else k
            (t, b), (l, r) = _same(hw[0], k[0], stride), _same(hw[1], k[1], stride)
            layers = []
            if (t, l) == (b, r):
                conv = nn.Conv2d(cin, cout, k, stride, padding=(t, l), groups=groups)
            else:  # asymmetric: a Pad node that export_onnx folds into the Conv
                layers.append(nn.ZeroPad2d((l, r, t, b)))
                conv = nn.Conv2d(cin, cout, k, stride, groups=groups)
            layers.append(conv)
            if bn:
                layers.append(nn.BatchNorm2d(cout, eps=BN_EPS))
            super().__init__(*layers)
            self.out_hw = (-(-hw[0] // stride), -(-hw[1] // stride))

    class ResNet8(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = ConvSame(3, 16, 3, 1, (32, 32))
            self.stacks = nn.ModuleList()
            cin, hw = 16, (32, 32)
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                st = nn.Module()
                st.conv1 = ConvSame(cin, cout, 3, stride, hw)
                st.conv2 = ConvSame(cout, cout, 3, 1, st.conv1.out_hw)
                st.shortcut = ConvSame(cin, cout, 1, stride, hw, bn=False) if stride != 1 else None
                self.stacks.append(st)
                cin, hw = cout, st.conv1.out_hw
            self.pool = nn.AvgPool2d(hw[0])
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            for st in self.stacks:
                y = st.conv2(torch.relu(st.conv1(x)))
                x = torch.relu((st.shortcut(x) if st.shortcut is not None else x) + y)
            return self.fc(torch.flatten(self.pool(x), 1))

    class DSCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = ConvSame(1, 64, (10, 4), 2, (49, 10))
            hw = self.conv.out_hw  # (25, 5)
            self.blocks = nn.ModuleList(
                nn.Sequential(ConvSame(64, 64, 3, 1, hw, groups=64), nn.ReLU(), ConvSame(64, 64, 1, 1, hw), nn.ReLU())
                for _ in range(4)
            )
            self.pool = nn.AvgPool2d((49 // 2, 10 // 2))  # the reference's final_pool_size
            self.fc = nn.Linear(64, 12)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            for b in self.blocks:
                x = b(x)
            return self.fc(torch.flatten(self.pool(x), 1))

    def autoencoder():
        dims = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
        layers = []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b, eps=BN_EPS), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(128, 640))

    class MobileNetV1(nn.Module):
        # (pointwise filters, depthwise stride) of the 13 depthwise-separable blocks
        BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), *[(128, 1)] * 5, (256, 2), (256, 1))

        def __init__(self):
            super().__init__()
            self.conv = ConvSame(3, 8, 3, 2, (96, 96))
            cin, hw, blocks = 8, self.conv.out_hw, []
            for cout, stride in self.BLOCKS:
                dw = ConvSame(cin, cin, 3, stride, hw, groups=cin)
                blocks.append(nn.Sequential(dw, nn.ReLU(), ConvSame(cin, cout, 1, 1, dw.out_hw), nn.ReLU()))
                cin, hw = cout, dw.out_hw
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AvgPool2d(hw[0])  # 3x3
            self.fc = nn.Linear(256, 2)

        def forward(self, x):
            x = self.blocks(torch.relu(self.conv(x)))
            return self.fc(torch.flatten(self.pool(x), 1))

    torch.manual_seed(SEED)
    return {
        "ic_resnet8": ResNet8(),
        "kws_dscnn": DSCNN(),
        "ad_autoencoder": autoencoder(),
        "vww_mobilenetv1": MobileNetV1(),
    }


def train(model, x: np.ndarray, y: np.ndarray | None, epochs: int, shift: int = 0, batch: int = 32) -> None:
    """Adam with a cosine learning rate: cross-entropy on ``y``, or (no ``y``) reconstruction MSE.

    Images are shifted by up to ``shift`` pixels (one random shift per batch).
    """
    import torch

    gen = torch.Generator().manual_seed(SEED)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y) if y is not None else None
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(x) // batch))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), batch):
            idx = order[s : s + batch]
            if len(idx) < 2:  # batch statistics need two samples
                continue
            xb = xt[idx]
            if shift:
                dy, dx = torch.randint(-shift, shift + 1, (2,), generator=gen).tolist()
                xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            out = model(xb)
            f = torch.nn.functional
            loss = f.cross_entropy(out, yt[idx]) if yt is not None else f.mse_loss(out, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


# (epochs, image shift in pixels) per model: a few minutes of CPU in all
TRAINING = {"ic_resnet8": (30, 2), "kws_dscnn": (30, 0), "ad_autoencoder": (40, 0), "vww_mobilenetv1": (15, 6)}


# ---------------------------------------------------------------- ONNX export


# Node names of the tidied graphs (the digits CNN's style: conv1, bn1, relu1, ..., fc) and
# the roles of each op's constant inputs, which name its initializers ("conv3.weight").
_SHORT = {"Conv": "conv", "Gemm": "fc", "BatchNormalization": "bn", "Relu": "relu", "Add": "add",
          "AveragePool": "avgpool", "Flatten": "flatten", "Softmax": "softmax"}  # fmt: skip
_ROLES = {"Conv": ("weight", "bias"), "Gemm": ("weight", "bias"), "BatchNormalization": ("scale", "bias", "mean", "var")}


def _fold_pads(g: onnx.GraphProto, values: list[np.ndarray]) -> None:
    """Fold each zero ``Pad`` (its pads and value in ``values``) into the Conv it feeds."""
    users: dict[str, list] = {}
    for node in g.node:
        for i in node.input:
            users.setdefault(i, []).append(node)
    for k, pad in enumerate([n for n in g.node if n.op_type == "Pad"]):
        (conv,) = users[pad.output[0]]
        pads, value = values[2 * k].tolist(), float(values[2 * k + 1])
        mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
        assert conv.op_type == "Conv" and mode == b"constant" and value == 0.0, (conv.op_type, mode, value)
        assert pads[0] == pads[1] == pads[4] == pads[5] == 0, pads  # N and C are not padded
        attr = next(a for a in conv.attribute if a.name == "pads")
        attr.ints[:] = [p + q for p, q in zip(attr.ints, pads[2:4] + pads[6:8])]
        conv.input[0] = pad.input[0]
        g.node.remove(pad)


def tidy(model: onnx.ModelProto, sample: np.ndarray) -> None:
    """Make the exported graph read like a hand-written one, computing the same.

    - Identity copies of constants go (the exporter shares equal parameters through them);
    - each zero ``Pad`` folds into the Conv it feeds (asymmetric ``pads``).  The exporter
      computes the pads with a subgraph of shape ops: onnxruntime evaluates it on ``sample``
      rather than this function re-deriving it;
    - dead nodes go;
    - nodes are named conv1, dwconv1 (depthwise), bn1, relu1, add1, fc1, ... in graph order,
      their outputs after them and their constants ``<node>.<role>``, one copy per use.
    """
    g = model.graph
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for pad in [n for n in g.node if n.op_type == "Pad"]:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(pad.input[1], onnx.TensorProto.INT64, None))
        probe.graph.output.append(onnx.helper.make_tensor_value_info(pad.input[2], onnx.TensorProto.FLOAT, None))
    _fold_pads(g, ort_run(probe, sample[:1], all_outputs=True)[len(g.output) :])
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in [n for n in g.node if n.op_type == "Identity" and n.input[0] in consts]:
        consts[n.output[0]] = consts[n.input[0]]
        g.node.remove(n)
    live = {o.name for o in g.output}
    for node in reversed(list(g.node)):
        if live.intersection(node.output):
            live.update(node.input)
        else:
            g.node.remove(node)
    ops = [("dwconv" if n.op_type == "Conv" and _group(n) > 1 else _SHORT[n.op_type]) for n in g.node]
    total, seen, renamed, inits = Counter(ops), Counter(), {}, []
    outputs = {o.name for o in g.output}
    for node, op in zip(g.node, ops):
        seen[op] += 1
        node.name = f"{op}{seen[op]}" if total[op] > 1 else op
        for k, i in enumerate(node.input):
            if i in consts:
                node.input[k] = f"{node.name}.{_ROLES[node.op_type][k - 1]}"
                inits.append(numpy_helper.from_array(consts[i], node.input[k]))
            else:
                node.input[k] = renamed.get(i, i)
        (out,) = node.output
        if out not in outputs:
            node.output[0] = renamed[out] = node.name
    g.ClearField("initializer")
    g.initializer.extend(inits)
    g.ClearField("value_info")


def _group(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def export_onnx(model, sample: np.ndarray, name: str, softmax: bool, doc: str) -> onnx.ModelProto:
    """torch -> ONNX opset 13 with a symbolic batch ``N``, BN nodes kept, tidied, checked."""
    import torch

    net = torch.nn.Sequential(model, torch.nn.Softmax(dim=1)) if softmax else model
    net.eval()
    out_name = "probabilities" if softmax else "output"
    buf = io.BytesIO()
    torch.onnx.export(
        net, (torch.from_numpy(sample[:1]),), buf, dynamo=False, opset_version=OPSET,
        do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE,
        input_names=["input"], output_names=[out_name],
        dynamic_axes={"input": {0: "N"}, out_name: {0: "N"}},
    )  # fmt: skip
    m = onnx.load_from_string(buf.getvalue())
    tidy(m, sample)
    m.graph.name = name
    m.graph.doc_string = doc
    onnx.checker.check_model(m, full_check=True)
    return m


def ort_run(model: onnx.ModelProto | Path, x: np.ndarray, all_outputs: bool = False):
    """The model's (first) output on ``x`` in onnxruntime; every output with ``all_outputs``."""
    import onnxruntime as ort

    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": x})
    return out if all_outputs else out[0]


def count(model, sample: np.ndarray) -> dict[str, int]:
    """Trainable parameters, BN running statistics and MACs (Conv/Gemm) of a torch model on ``sample``."""
    import torch
    from torch import nn

    macs = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            macs.append(out[0].numel() * m.weight[0].numel())
        else:
            macs.append(m.in_features * m.out_features)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.from_numpy(sample[:1]))
    for h in hooks:
        h.remove()
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return {"params": sum(p.numel() for p in model.parameters()), "bn_running_stats": stats, "macs": sum(macs)}


# ---------------------------------------------------------------- driver


def _save_npz(path: Path, x: np.ndarray, y: np.ndarray | None) -> None:
    arrays = {"x": x.astype(np.float32)}
    if y is not None:
        arrays["y"] = y.astype(np.int64)
    np.savez_compressed(path, **arrays)


def summary(out: np.ndarray, x: np.ndarray, y: np.ndarray | None) -> dict:
    """The figures recorded for (and checked on) a model's test outputs."""
    s = {"n_test": int(len(out)), "output_mean_square": float((out.astype(np.float64) ** 2).mean())}
    if out.shape[1:] == x.shape[1:]:  # the autoencoder: mean squared reconstruction error
        s["output_mean"] = float(out.astype(np.float64).mean())
        s["reconstruction_mse"] = float(((out.astype(np.float64) - x) ** 2).mean())
    else:  # probabilities
        s["mean_top_probability"] = float(out.max(1).astype(np.float64).mean())
    if y is not None:
        s["accuracy"] = float((out.argmax(1) == y).mean())
    return s


LABELS = {
    "ic_resnet8": "the digit, 0..9",
    "kws_dscnn": "the synthetic vowel, 0..11 (F1 index * 4 + F2 index)",
    "ad_autoencoder": "none: the target is the input",
    "vww_mobilenetv1": "1 if the digit is 5..9, else 0",
}
DOCS = {
    "ic_resnet8": "MLPerf Tiny IC ResNet-8 (16/32/64 filters) on sklearn digits upsampled to 32x32x3",
    "kws_dscnn": "MLPerf Tiny KWS DS-CNN on MFCCs of 12 synthetic vowels",
    "ad_autoencoder": "MLPerf Tiny AD FC autoencoder 640-128x4-8-128x4-640 on log-mel frames of synthetic machine hum",
    "vww_mobilenetv1": "MLPerf Tiny VWW MobileNetV1 alpha=0.25 on sklearn digits upsampled to 96x96x3, digit >= 5",
}


def build(out: Path) -> dict:
    """Make, export and verify every model; write it and its data to ``out``; return the metrics."""
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out.mkdir(parents=True, exist_ok=True)
    data = make_data()
    models = build_models()
    metrics: dict = {}
    for name, model in models.items():
        d = data[name]
        epochs, shift = TRAINING[name]
        train(model, d["train"], d.get("y_train"), epochs, shift)
        with torch.no_grad():
            logits = model(torch.from_numpy(d["test"])).numpy()
        classify = name != "ad_autoencoder"
        ys = {s: d.get(f"y_{s}") for s in ("calib", "test")}
        onnx_model = export_onnx(model, d["test"], name, softmax=classify, doc=DOCS[name])
        # the exported graph computes what torch computes
        want = torch.softmax(torch.from_numpy(logits), 1).numpy() if classify else logits
        got = ort_run(onnx_model, d["test"])
        print(f"{name}: onnxruntime vs torch, max |difference| {np.abs(got - want).max():.2g}", file=sys.stderr)
        # 1e-5, except MobileNet: over its 28 layers float32 sums in another order drift further
        # (one test image of 64 at 2.7e-5 in probability).
        atol = 5e-5 if name == "vww_mobilenetv1" else 1e-5
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol, err_msg=name)
        onnx.save(onnx_model, out / f"{name}.onnx")
        for s in ("calib", "test"):
            _save_npz(out / f"{name}_{s}.npz", d[s], ys[s])
        metrics[name] = count(model, d["test"]) | {
            "labels": LABELS[name],
            "torch": summary(want, d["test"], ys["test"]),
            "onnxruntime": summary(ort_run(out / f"{name}.onnx", d["test"]), d["test"], ys["test"]),
        }
    (out / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def check(out: Path) -> bool:
    """Run the shipped models on the shipped test data; compare with the JSON."""
    want = json.loads((out / METRICS).read_text())
    ok = True
    for name in MODELS:
        onnx.checker.check_model(onnx.load(out / f"{name}.onnx"), full_check=True)
        with np.load(out / f"{name}_test.npz") as d:
            x, y = d["x"], (d["y"] if "y" in d.files else None)
        got = summary(ort_run(out / f"{name}.onnx", x), x, y)
        ref = want[name]["onnxruntime"]
        good = got.keys() == ref.keys() and all(
            got[k] == ref[k] if k in ("accuracy", "n_test") else np.isclose(got[k], ref[k], rtol=1e-4, atol=1e-6)
            for k in ref
        )
        ok &= good
        print(f"{name:16s} " + "  ".join(f"{k} {v:.6g}" for k, v in sorted(got.items()))
              + f"  {'ok' if good else 'MISMATCH'}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default examples/models)")
    ap.add_argument("--check", action="store_true", help="only evaluate the shipped models (no torch needed)")
    args = ap.parse_args(argv)
    if args.check:
        return 0 if check(args.out) else 1
    metrics = build(args.out)
    for name, m in metrics.items():
        print(f"{name:16s} params {m['params']:,}  MACs {m['macs']:,}  "
              + "  ".join(f"{k} {v:.6g}" for k, v in sorted(m["onnxruntime"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
