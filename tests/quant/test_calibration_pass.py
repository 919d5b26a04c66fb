"""The streamed calibration pass and the statistics samples (issue 14: bounded memory and time)."""

import importlib

import numpy as np

from hwflow.quant import _feval
from hwflow.quant._feval import calibration_pass, run_plan
from hwflow.quant._lower import lower
from hwflow.quant.quantize import MIN_STAT_SAMPLES, STAT_MACS, statistics_samples

quantize_mod = importlib.import_module("hwflow.quant.quantize")  # the package exports a function of that name


def test_streamed_pass_keeps_what_run_plan_gives(small_models, monkeypatch):
    graph, calib, _, _ = small_models["cnn"]
    plan = lower(graph)
    env = run_plan(plan, calib)
    monkeypatch.setattr(_feval, "BATCH_VALUES", 1)  # one sample a batch
    values, first = calibration_pass(plan, calib, limit=1 << 30, head=3)
    assert set(values) == set(env) == set(first)
    for t, v in env.items():  # batches of one may round the last bit differently
        np.testing.assert_allclose(values[t], v.ravel(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(first[t], v[:3], rtol=1e-12, atol=1e-12)


def test_streamed_pass_bounds_a_large_tensor_and_keeps_its_extremes(small_models, monkeypatch):
    graph, calib, _, _ = small_models["cnn"]
    plan = lower(graph)
    env = run_plan(plan, calib)
    monkeypatch.setattr(_feval, "BATCH_VALUES", 1)
    limit = 100
    values, first = calibration_pass(plan, calib, limit=limit, head=2, head_tensors={plan.input})
    assert set(first) == {plan.input}
    big = [t for t, v in env.items() if v.size > limit]
    assert big
    for t in big:
        v = values[t]
        assert v.size == limit
        np.testing.assert_allclose([v.min(), v.max()], [env[t].min(), env[t].max()], rtol=1e-12)
        nearest = np.abs(env[t].ravel()[None, :] - v[:, None]).min(axis=1)
        assert (nearest <= 1e-12 * np.abs(v).max()).all()  # values of the tensor, not interpolations
    again, _ = calibration_pass(plan, calib, limit=limit)
    for t in big:  # deterministic
        np.testing.assert_array_equal(again[t], values[t])


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
