"""The streamed calibration pass, its range sketches and the statistics samples (issue 14:
bounded memory and time; ranges from all the values, not a subsample)."""

import importlib

import numpy as np
import pytest

from hwflow.quant import _feval
from hwflow.quant._common import fake_quant
from hwflow.quant._feval import calibration_pass, run_plan
from hwflow.quant._lower import lower
from hwflow.quant.calibrate import RangeSketch, mse_range, percentile_range, quant_mse
from hwflow.quant.quantize import MIN_STAT_SAMPLES, STAT_MACS, statistics_samples
from hwflow.quant.scheme_asymmetric import AsymmetricScheme

quantize_mod = importlib.import_module("hwflow.quant.quantize")  # the package exports a function of that name


def test_streamed_pass_sketches_every_value(small_models, monkeypatch):
    graph, calib, _, _ = small_models["cnn"]
    plan = lower(graph)
    env = run_plan(plan, calib)
    monkeypatch.setattr(_feval, "BATCH_VALUES", 1)  # one sample a batch
    sketches, first = calibration_pass(plan, calib, head=3)
    assert set(sketches) == set(env) == set(first)
    for t, v in env.items():  # batches of one may round the last bit differently
        s, whole = sketches[t], RangeSketch.of(v)
        assert s.count == v.size
        np.testing.assert_allclose([s.lo, s.hi], [v.min(), v.max()], rtol=1e-12, atol=1e-12)
        assert np.abs(s.counts - whole.counts).sum() <= 2 * 1e-3 * v.size  # a value on a bin edge may move
        np.testing.assert_allclose(first[t], v[:3], rtol=1e-12, atol=1e-12)
    again, _ = calibration_pass(plan, calib)
    for t in env:  # deterministic
        np.testing.assert_array_equal(again[t].counts, sketches[t].counts)


def test_sketch_is_independent_of_order_and_batching():
    rng = np.random.default_rng(0)
    v = rng.normal(0.2, 1.0, 50_000)
    a = RangeSketch.of(v)
    b = RangeSketch()
    for part in np.array_split(rng.permutation(v), 7):
        b.add(part)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert (a.lo, a.hi, a.count) == (b.lo, b.hi, b.count)
    m = RangeSketch.merge([RangeSketch.of(v[:100]), RangeSketch.of(v[100:])])
    np.testing.assert_array_equal(m.counts, a.counts)


@pytest.mark.parametrize("scale,zp,bits", [(0.02, 10, 8), (0.05, -3, 8), (0.3, 0, 4), (0.001, 0, 12), (2e-5, 0, 16)])
def test_sketch_mse_equals_the_values_mse(scale, zp, bits):
    # bins far wider than the step (12, 16 bits) and far narrower (4 bits): both integrate exactly
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(0.3, 1.0, 400_000), rng.laplace(0, 3, 500)])
    exact = float(np.mean((fake_quant(v, scale, zp, bits) - v) ** 2))
    assert quant_mse(RangeSketch.of(v), scale, zp, bits) == pytest.approx(exact, rel=2e-3)


def test_sketch_ranges_match_the_full_data():
    rng = np.random.default_rng(2)
    v = np.concatenate([rng.normal(0, 1, 300_000), [40.0, -25.0]])
    s = RangeSketch.of(v)
    assert s.count == v.size and (s.lo, s.hi) == (-25.0, 40.0)
    lo, hi = percentile_range(v, 99.9)
    slo, shi = percentile_range(s, 99.9)
    assert shi == pytest.approx(hi, rel=1e-2) and slo == pytest.approx(lo, rel=1e-2)
    act = AsymmetricScheme().act_params
    ref = mse_range(v, act, 8)
    assert mse_range(s, act, 8) == ref  # an array is measured through its own sketch
    assert 3.0 < ref[1] < 40.0  # the outlier is clipped


def test_statistics_samples_follow_the_macs(small_models, monkeypatch):
    graph, _, _, _ = small_models["cnn"]
    plan = lower(graph)
    macs = sum(fl.weight.size * int(np.prod(plan.shapes[fl.output][2:])) for fl in plan.layers if fl.has_weight)
    assert statistics_samples(plan, 10) == 10  # never more than there are
    assert statistics_samples(plan, 100_000) == min(1024, max(MIN_STAT_SAMPLES, STAT_MACS // macs))
    monkeypatch.setattr(quantize_mod, "STAT_MACS", 100 * macs)
    assert statistics_samples(plan, 100_000) == 100
    monkeypatch.setattr(quantize_mod, "STAT_MACS", macs)  # as if the model were 100x bigger
    assert statistics_samples(plan, 100_000) == MIN_STAT_SAMPLES
