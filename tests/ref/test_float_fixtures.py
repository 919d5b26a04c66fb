"""run_float on every shipped fixture and example model equals onnxruntime (1e-5), raw and
optimized, and the exporter's own recorded output; a QONNX (Brevitas) fixture, which
onnxruntime cannot run, equals the recorded output of qonnx's executor."""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwflow.ir import load_model
from hwflow.passes import PassManager, default_passes, optimize
from hwflow.ref.float import run_float

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
# the digits fixtures as their exporters wrote them, but the ZipMap classifier (refused:
# tests/cli/test_inspect.py); the QONNX ones hold qonnx's custom ops, which onnxruntime cannot run
DIGITS = sorted(p for p in (FIXTURES / "digits").glob("*.onnx") if "zipmap" not in p.name)
QONNX = [p for p in DIGITS if p.name.startswith("brevitas_")]
#: QONNX fixtures with 8-bit activations over long sums: samples on which float32 rounding
#: (numpy here, onnxruntime in qonnx) puts an activation on either side of a tie
FLOAT_TIES = {"brevitas_resnet_w8a8": 1}
MODELS = (sorted(FIXTURES.glob("*.onnx")) + [p for p in DIGITS if p not in QONNX]
          + sorted((ROOT / "examples" / "models").glob("*.onnx")))


def test_there_are_models_to_check():
    assert len(MODELS) >= 8, MODELS


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_matches_onnxruntime(path):
    graph = load_model(path)
    opt = optimize(graph)
    assert opt.outputs == graph.outputs  # optimization keeps the graph's output names
    assert not PassManager(default_passes())(opt.copy()).modified  # a fixed point
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = graph.shape(graph.inputs[0])
    x = np.random.default_rng(3).standard_normal((6,) + shape[1:]).astype(np.float32)
    name = sess.get_inputs()[0].name
    # one sample at a time: not every exported model accepts a batch
    per_sample = [sess.run(None, {name: x[i : i + 1]}) for i in range(len(x))]
    want = [np.concatenate([s[k] for s in per_sample]) for k in range(len(per_sample[0]))]
    for g in (graph, opt):
        got = run_float(g, x)
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.onnx")) + DIGITS, ids=lambda p: p.name)
def test_matches_the_exporters_own_output(path):
    data = np.load(path.with_suffix(".npz"))
    got = run_float(optimize(load_model(path)), data["x"])
    probs = got[-1] if isinstance(got, tuple) else got
    # format fixtures: y; digits: out (the framework's), qonnx (qonnx's executor) for QONNX
    want = data["qonnx"] if path in QONNX else data["out"] if "out" in data else data["y"]
    scale = 1.0 if path in QONNX else 0.0  # QONNX logits are not probabilities: atol relative to them
    atol = 1e-5 * max(1.0, scale * np.abs(want).max())
    # samples where numpy's and onnxruntime's float32 round an activation at a tie apart
    close = np.isclose(probs, want, rtol=1e-4, atol=atol).reshape(len(want), -1).all(1)
    assert (~close).sum() == FLOAT_TIES.get(path.stem, 0), np.where(~close)[0]
    np.testing.assert_allclose(probs[close], want[close], rtol=1e-4, atol=atol)
    if "label" in data:
        np.testing.assert_array_equal(got[0], data["label"])
