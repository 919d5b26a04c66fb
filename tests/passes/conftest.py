"""Helpers for pass tests: build ONNX models, run them in onnxruntime, compare."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.ir import from_onnx, to_onnx
from hwflow.ref.float import run_float


class PassKit:
    """Build a one-input model, import it, and check a pass keeps its outputs."""

    rng = np.random.default_rng(0)

    def weights(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape).astype(np.float32)

    def model(self, nodes, in_shape, out_name="y", inits=(), opset=13, out_dtype=TensorProto.FLOAT) -> onnx.ModelProto:
        g = helper.make_graph(
            nodes,
            "t",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
            [helper.make_tensor_value_info(out_name, out_dtype, None)],
            initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
        )
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        return m

    def graph(self, model: onnx.ModelProto, fold: bool = True):
        return from_onnx(model, fold=fold)

    def ort(self, model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    def input(self, graph) -> np.ndarray:
        return self.rng.standard_normal(graph.shape(graph.inputs[0])).astype(np.float32)

    def same_outputs(self, model: onnx.ModelProto, graph) -> None:
        """run_float(graph) and onnxruntime on the exported graph both equal the original model."""
        x = self.input(graph)
        want = self.ort(model, x)
        np.testing.assert_allclose(run_float(graph, x), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(self.ort(to_onnx(graph), x), want, rtol=1e-5, atol=1e-5)


@pytest.fixture
def kit() -> PassKit:
    return PassKit()
