"""The QONNX importer takes a ``Quant`` of pot-valued weights as the pot format.

QONNX has no pot quantizer; ``hwflow finetune`` writes pot weights as an integer ``Quant``
as wide as their values (4, 8, 16 bits for pot3, pot4, pot5). A ``Quant`` of that width
whose codes are all ``0`` or ``±2**k`` in the pot window is pot, so ``compile`` builds
shift lanes; anything else stays ``int``. The integers are the same either way.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwflow.flow import load_graph
from hwflow.ir.ops import QONNX_DOMAIN
from hwflow.quant.evaluate import quant_logits
from hwflow.quant.qonnx import quantize_qonnx


def _model(path, codes: np.ndarray, bits: int, signed: int = 1):
    """x (N, 4) -> Quant (8 bits) -> Gemm(Quant(W)) -> Quant (8 bits); ``W = codes * s``."""
    s_w = np.array([[0.01], [0.02], [0.005]], np.float32)
    inits = [helper.make_tensor(n, TensorProto.FLOAT, v.shape, v.ravel().tolist()) for n, v in [
        ("w", (codes * s_w).astype(np.float32)), ("s_w", s_w), ("z", np.zeros((), np.float32)),
        ("bw", np.float32(bits).reshape(())), ("s_x", np.float32(1 / 16).reshape(())),
        ("bw8", np.float32(8).reshape(())), ("s_y", np.float32(0.05).reshape(()))]]
    q = dict(domain=QONNX_DOMAIN, narrow=0, rounding_mode="ROUND")
    nodes = [helper.make_node("Quant", ["x", "s_x", "z", "bw8"], ["xq"], name="qx", signed=1, **q),
             helper.make_node("Quant", ["w", "s_w", "z", "bw"], ["wq"], name="qw", signed=signed, **q),
             helper.make_node("Gemm", ["xq", "wq"], ["y"], name="fc", transB=1),
             helper.make_node("Quant", ["y", "s_y", "z", "bw8"], ["out"], name="qy", signed=1, **q)]
    g = helper.make_graph(nodes, "pot", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx.save(m, str(path))
    return path


POT4 = np.array([[64, -32, 0, 1], [-2, 4, 8, -16], [1, 1, -1, 0]])


@pytest.mark.parametrize("codes,bits,signed,want", [
    (POT4, 8, 1, ("pot", 4)),
    (np.array([[4, -2, 0, 1], [-1, 2, 4, -4], [1, 1, -1, 0]]), 4, 1, ("pot", 3)),  # pot3: values of 4 bits
    (np.array([[4, -2, 0, 1], [-1, 2, 4, -4], [1, 1, -1, 0]]), 8, 1, ("pot", 4)),  # 8 bits: pot4's
    (np.where(POT4 == 64, 3, POT4), 8, 1, ("int", 6)),                               # a 3 is no pot value
    (np.abs(POT4), 8, 0, ("int", 8)),                                                # unsigned: int
])
def test_pot_valued_quant_is_pot(tmp_path, codes, bits, signed, want):
    qg = quantize_qonnx(load_graph(_model(tmp_path / "m.onnx", codes, bits, signed)))
    fc = next(l for l in qg.layers if l.weight is not None)
    assert (fc.wformat, fc.wbits) == want
    assert np.array_equal(fc.weight, codes)


def test_pot_and_int_readings_compute_the_same(tmp_path):
    """The format only changes how the weights are stored: the logits are those of the integers."""
    qg = quantize_qonnx(load_graph(_model(tmp_path / "m.onnx", POT4, 8)))
    x = np.random.default_rng(0).uniform(-1, 1, (64, 4)).astype(np.float32)
    fc = next(l for l in qg.layers if l.weight is not None)
    got = quant_logits(qg, x)
    fc.wformat, fc.wbits = "int", 8
    assert np.array_equal(quant_logits(qg, x), got)
