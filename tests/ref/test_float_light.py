"""run_float on the onnx package's light models (opset 9, weights from ConstantOfShape) vs onnxruntime.

Their weights are constant (0.02 everywhere), so activations grow layer by layer to ~1e9
and the final softmax is decided by float32 rounding. The check is therefore on the
tensor feeding the host-side softmax, with the 1e-5 tolerance relative to its magnitude.
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwflow.ir import load_model
from hwflow.passes import optimize
from hwflow.ref.float import run_float

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def _logits(graph, env):
    soft = next(n for n in graph.nodes if n.op == "Softmax")
    return env[soft.inputs[0]]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["light_squeezenet", "light_resnet50", "light_shufflenet"])
def test_light_model_matches_onnxruntime(name):
    path = LIGHT / f"{name}.onnx"
    graph = load_model(path)
    x = np.random.default_rng(0).standard_normal(graph.shape(graph.inputs[0])).astype(np.float32)
    model = onnx.load(path)
    soft = next(n for n in model.graph.node if n.op_type == "Softmax")
    model.graph.output.append(onnx.helper.make_tensor_value_info(soft.input[0], onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[-1]
    for g in (graph, optimize(graph)):
        got = _logits(g, run_float(g, x, keep=True))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
