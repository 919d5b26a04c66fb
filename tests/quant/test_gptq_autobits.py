"""GPTQ rounding and automatic per-layer bit allocation."""

import numpy as np
import pytest

from hwflow.errors import OptionError
from hwflow.quant import QuantConfig, quantize
from hwflow.quant._feval import linear, run_plan
from hwflow.quant._lower import lower
from hwflow.quant.autobits import auto_bits
from hwflow.quant.evaluate import evaluate
from hwflow.quant.gptq import gptq_codes
from hwflow.quant.scheme_symmetric import SymmetricScheme


@pytest.mark.parametrize("name", ["cnn", "mlp_act", "residual"])
def test_gptq_lowers_layer_output_error(small_models, name):
    graph, calib, _, _ = small_models[name]
    plan = lower(graph)
    env = run_plan(plan, calib)
    for fl in (l for l in plan.layers if l.has_weight):
        x = env[fl.inputs[0]]
        s = np.broadcast_to(SymmetricScheme().weight_scale(fl.weight, 3, True), (fl.weight.shape[0],))
        shape = (-1,) + (1,) * (fl.weight.ndim - 1)
        nearest = np.clip(np.round(fl.weight / s.reshape(shape)), -4, 3)
        codes, used = gptq_codes(fl, [np.asarray(s)], 3, x)
        np.testing.assert_array_equal(used, s)
        assert codes.min() >= -4 and codes.max() <= 3 and codes.shape == fl.weight.shape
        ref = linear(fl, x)
        e_near = np.mean((linear(fl, x, weight=nearest * s.reshape(shape)) - ref) ** 2)
        e_gptq = np.mean((linear(fl, x, weight=codes * s.reshape(shape)) - ref) ** 2)
        assert e_gptq <= e_near * 1.0001, (fl.name, e_gptq, e_near)
        # with several candidate scales, each channel keeps the one with the least error
        codes2, used2 = gptq_codes(fl, [np.asarray(s), np.asarray(s) * 0.8], 3, x)
        e2 = np.mean((linear(fl, x, weight=codes2 * used2.reshape(shape)) - ref) ** 2)
        assert e2 <= e_gptq * 1.0001 and set(np.unique(used2 / s).round(6)) <= {1.0, 0.8}


def test_gptq_default_beats_nearest_at_4_bits(small_models):
    graph, calib, test, _ = small_models["mlp_act"]
    base = QuantConfig(wbits=4, cle=False, bias_correction=False)
    near = evaluate(graph, quantize(graph, base.with_(rounding="nearest"), calib), test)
    gptq = evaluate(graph, quantize(graph, base, calib), test)
    assert gptq["sqnr_db"] > near["sqnr_db"] + 1.0


def test_auto_bits_meets_budget_and_reports_curve(small_models):
    graph, calib, test, _ = small_models["cnn"]
    calib = calib[:24]
    full = quantize(graph, QuantConfig(rounding="nearest", cle=False, bias_correction=False), calib).weight_bits()
    cfg, curve = auto_bits(graph, QuantConfig(rounding="nearest", cle=False, bias_correction=False), calib, budget_kbit=full * 0.5 / 1000)
    qg = quantize(graph, cfg, calib)
    assert qg.weight_bits() <= full * 0.5
    assert curve[0]["kbit"] == pytest.approx(full / 1000) and curve[-1]["kbit"] == pytest.approx(qg.weight_bits() / 1000)
    assert all(a["kbit"] > b["kbit"] for a, b in zip(curve, curve[1:]))
    assert set(cfg.layer_bits) == {l.name for l in qg.layers if l.weight is not None}
    assert len({w for w, _ in cfg.layer_bits.values()}) >= 1


def test_auto_bits_respects_agreement_floor(small_models):
    graph, calib, _, _ = small_models["mlp_act"]
    cfg, curve = auto_bits(graph, QuantConfig(rounding="nearest", cle=False, bias_correction=False), calib, agreement_floor=0.97)
    assert all(p["agreement"] >= 0.97 for p in curve[1:])
    assert curve[-1]["kbit"] < curve[0]["kbit"]


def test_auto_bits_impossible_budget(small_models):
    graph, calib, _, _ = small_models["mlp_act"]
    with pytest.raises(OptionError, match="cannot be met"):
        auto_bits(graph, QuantConfig(rounding="nearest", cle=False, bias_correction=False), calib, budget_kbit=0.01)


def test_depthwise_gptq_in_one_pass_equals_per_channel():
    # the batched depthwise path gives every channel the codes and errors of the per-group path
    from hwflow.ir._geometry import window
    from hwflow.quant import gptq
    from hwflow.quant.wformat import WeightFormat

    class Depthwise:
        op, groups = "conv", 8

        def window(self, spatial):
            return window(spatial, (3, 3), {"strides": (2, 1), "pads": (1, 1, 1, 1)})

    rng = np.random.default_rng(0)
    fl = Depthwise()
    x = rng.normal(0, 1, (6, 8, 10, 9)) * rng.uniform(0.1, 2, (1, 8, 1, 1))  # no two taps see the same pixels
    x[:, 3, :, 4] = 0.0  # a dead tap in channel 3 (column 4 is in its windows' middle)
    w = rng.normal(0, 1, (8, 9))
    cands = [np.abs(w).max(axis=1) / 7 * f for f in (1.0, 0.9, 0.8)]
    fmt = WeightFormat("int", 4)
    h = gptq.depthwise_hessians(fl, x)
    q, e = gptq._gptq_depthwise(w, np.stack(cands), h, fmt, 0.01)
    for c, rows in enumerate(gptq.layer_inputs(fl, x)):  # every pixel: no draw at this size
        hc = gptq._hessian(rows)
        np.testing.assert_allclose(h[c], hc, rtol=1e-12)
        cand = np.stack([s[c:c + 1] for s in cands])
        qs = gptq._gptq_rows(w[c:c + 1], cand, gptq._factor(hc, 0.01), fmt)
        np.testing.assert_array_equal(qs[:, 0], q[:, c])
        np.testing.assert_allclose([gptq._row_error(w[c:c + 1], qq, s, hc)[0] for s, qq in zip(cand, qs)], e[:, c],
                                   rtol=1e-9)
