"""QDQ export runs in onnxruntime and agrees with the integer reference within 1 LSB.

Each layer is checked on its own inputs: the exported model exposes every activation,
and the reference layer is fed onnxruntime's input codes, so one layer's ±1 (ORT rounds
half to even, the contract half up) cannot snowball into the next layer's check.
"""

import numpy as np
import onnxruntime as ort
import pytest

from hwflow.quant import QuantConfig, quantize
from hwflow.quant.qdq import export_qdq
from hwflow.quant.reference import run_int_batch, run_layer


def _session(model):
    so = ort.SessionOptions()
    # the plain QDQ semantics (DQ -> float op -> Q); see hwflow.quant.qdq on fused kernels
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


CONFIGS = [
    QuantConfig(scheme="asymmetric"),
    QuantConfig(scheme="symmetric", per_channel=False, wbits=4, abits=6),
    QuantConfig(scheme="pow2", wbits=6),
    QuantConfig(scheme="asymmetric", wbits=12, abits=12),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.scheme}-w{c.wbits}a{c.abits}")
@pytest.mark.parametrize("name", ["cnn", "residual", "mlp_act"])
def test_qdq_layers_within_one_lsb(small_models, tmp_path, name, cfg):
    graph, calib, test, _ = small_models[name]
    qg = quantize(graph, cfg, calib)
    model = export_qdq(qg, tmp_path / "q.onnx", expose=True)
    assert (tmp_path / "q.onnx").exists()
    sess = _session(model)
    outs = sess.run(None, {"input": test})
    got = {o.name[len("act::"):]: v for o, v in zip(sess.get_outputs(), outs) if o.name.startswith("act::")}
    pre = {o.name[len("pre::"):]: v for o, v in zip(sess.get_outputs(), outs) if o.name.startswith("pre::")}

    def codes(t):
        qt = qg.tensors[t]
        c = np.round(got[t] / qt.scale + qt.zero_point).astype(np.int64)
        return c.reshape(len(test), *qt.shape[1:])

    tin = qg.tensors[qg.input]
    assert np.abs(codes(qg.input) - tin.quantize(test).reshape(codes(qg.input).shape)).max() <= 1
    exact = total = 0
    for layer in qg.layers:
        ins = [codes(t) for t in layer.inputs]
        tout = qg.tensors[layer.output]
        if layer.lut is not None and layer.op != "lut":
            # compare the requantized code that indexes the LUT, then the LUT itself
            s_pre = layer.attrs["lut_scale"]
            ort_pre = np.round(pre[layer.output] / s_pre + layer.lut_zero_point).astype(np.int64)
            bare = type(layer)(**{**layer.__dict__, "lut": None})
            ref_pre = run_layer(bare, ins, [qg.tensors[t] for t in layer.inputs],
                                type(tout)(tout.name, tout.shape, tout.bits, s_pre, layer.lut_zero_point))
            assert np.abs(ort_pre - ref_pre.reshape(ort_pre.shape)).max() <= 1, layer.name
            want = layer.lut[np.clip(ort_pre, layer.lo, layer.hi) - layer.lo]
        else:
            want = run_layer(layer, ins, [qg.tensors[t] for t in layer.inputs], tout)
        diff = np.abs(codes(layer.output) - want.reshape(codes(layer.output).shape))
        assert diff.max() <= 1, (layer.name, layer.op, int(diff.max()))
        exact += int((diff == 0).sum())
        total += diff.size
    assert exact / total > 0.9  # ties and M/2^n rounding are rare, not the rule
    # end to end, the argmax agrees on nearly every sample
    ref = run_int_batch(qg, tin.quantize(test)).reshape(len(test), -1)
    assert (codes(qg.output).reshape(len(test), -1).argmax(1) == ref.argmax(1)).mean() >= 0.9


def test_qdq_model_has_integer_weights(small_models):
    graph, calib, _, _ = small_models["cnn"]
    qg = quantize(graph, QuantConfig(wbits=4), calib)
    model = export_qdq(qg)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") >= len(qg.layers)
    ints = [i for i in model.graph.initializer if i.name.endswith("_w_q")]
    assert len(ints) == 3 and all(i.data_type == 3 for i in ints)  # INT8 containers
