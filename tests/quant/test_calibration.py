"""Calibration methods, config validation, accuracy-recovery transforms."""

import numpy as np
import pytest

from hwflow.errors import OptionError
from hwflow.quant import QuantConfig, quantize
from hwflow.quant._feval import run_plan
from hwflow.quant._lower import lower
from hwflow.quant.calibrate import entropy_threshold, mse_range, percentile_range
from hwflow.quant.config import load_bits_file, parse_bits
from hwflow.quant.recover import equalization_pairs, equalize
from hwflow.quant.scheme_asymmetric import AsymmetricScheme
from hwflow.quant.scheme_pow2 import Pow2Scheme


def test_entropy_picks_threshold_below_max_on_long_tail():
    rng = np.random.default_rng(0)
    v = rng.laplace(0, 1, 200_000)  # long-tailed
    t = entropy_threshold(v)
    amax = np.abs(v).max()
    assert t < 0.8 * amax
    assert t > 5.0  # not absurdly low: ~99.3% of |x| lies below 5
    # a bounded distribution keeps (almost) all of its range
    u = rng.uniform(-1, 1, 200_000)
    assert entropy_threshold(u) > 0.95


def test_entropy_2048_bins_128_levels_scales_with_data():
    rng = np.random.default_rng(1)
    v = rng.normal(0, 1, 100_000)
    assert np.isclose(entropy_threshold(10 * v), 10 * entropy_threshold(v), rtol=1e-6)


def test_percentile_and_mse_clip_outliers():
    rng = np.random.default_rng(2)
    v = np.concatenate([rng.normal(0, 1, 100_000), [80.0]])
    lo, hi = percentile_range(v, 99.9)
    assert hi < 10 and lo > -10
    mlo, mhi = mse_range(v, AsymmetricScheme().act_params, 8)
    assert mhi < 80


def test_pow2_chooses_floor_or_ceil_by_mse():
    s = Pow2Scheme()
    w = np.full((1, 100), 0.3)
    w[0, 0] = 1.0  # ceil keeps the one outlier; floor rounds the many better
    scale = s.weight_scale(w, 4, per_channel=True)[0]
    assert scale in (2.0 ** -3, 2.0 ** -2)
    err = {e: ((np.clip(np.round(w / 2.0 ** e), -8, 7) * 2.0 ** e - w) ** 2).mean() for e in (-3, -2)}
    assert scale == 2.0 ** min(err, key=err.get)


@pytest.mark.parametrize("kw,msg", [
    ({"scheme": "float"}, "unknown scheme 'float'"),
    ({"wbits": 1}, "int weights take wbits 2..16, not 1"),
    ({"wbits": 17}, "wbits must be an integer in 1..16, not 17"),
    ({"abits": 17}, "abits must be an integer in 1..16, not 17"),
    ({"calibration": "kl"}, "unknown calibration 'kl'"),
    ({"layer_bits": {"fc": (4, 20)}}, "abits of layer 'fc'"),
    ({"clamp_sigma": -1.0}, "clamp sigma"),
])
def test_config_validation(kw, msg):
    with pytest.raises(OptionError, match=msg):
        QuantConfig(**kw)


def test_bits_parsing(tmp_path):
    assert parse_bits("fc1=4/8") == ("fc1", (4, 8))
    with pytest.raises(OptionError, match="LAYER=W/A"):
        parse_bits("fc1=4")
    (tmp_path / "b.toml").write_text('[bits]\nfc1 = [4, 8]\nfc2 = "3/6"\n')
    assert load_bits_file(tmp_path / "b.toml") == {"fc1": (4, 8), "fc2": (3, 6)}
    (tmp_path / "b.json").write_text('{"fc1": [2, 4]}')
    assert load_bits_file(tmp_path / "b.json") == {"fc1": (2, 4)}


def test_cle_preserves_function_and_balances_ranges(small_models):
    graph, calib, _, _ = small_models["cnn"]
    plan = lower(graph)
    before = run_plan(plan, calib, keep=False)
    pairs = equalization_pairs(plan)
    assert [(a.op, b.op) for a, b in pairs] == [("conv", "conv")]  # ReLU6 blocks the second pair
    equalize(plan)
    after = run_plan(plan, calib, keep=False)
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-9)
    a, b = pairs[0]
    r1 = np.abs(a.weight.reshape(a.weight.shape[0], -1)).max(1)
    r2 = np.abs(b.weight).max(axis=(0, 2, 3))
    np.testing.assert_allclose(r1, r2, rtol=1e-6)


def test_bias_correction_removes_mean_error(small_models):
    graph, calib, test, _ = small_models["mlp_act"]
    base = QuantConfig(wbits=3, per_channel=False, calibration="minmax", bias_correction=False)
    q0 = quantize(graph, base, calib)
    q1 = quantize(graph, base.with_(bias_correction=True), calib)
    from hwflow.quant.evaluate import float_logits, quant_logits

    ref = float_logits(graph, q0, calib)
    e0 = np.abs((quant_logits(q0, calib) - ref).mean(0)).mean()
    e1 = np.abs((quant_logits(q1, calib) - ref).mean(0)).mean()
    assert e1 < e0


def test_clamp_sigma_shrinks_weight_range(small_models):
    graph, calib, _, _ = small_models["cnn"]
    q0 = quantize(graph, QuantConfig(rounding="nearest"), calib)
    q1 = quantize(graph, QuantConfig(clamp_sigma=2.0, rounding="nearest"), calib)
    s0 = max(q0.layers[-1].attrs["w_scale"])
    s1 = max(q1.layers[-1].attrs["w_scale"])
    assert s1 < s0
