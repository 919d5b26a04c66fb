"""The short run of bench/fuzz_import.py: mutated ONNX files import or raise HwflowError."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("hwflow_bench_fuzz_import", ROOT / "bench" / "fuzz_import.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_short_fuzz_run_has_no_crash(fuzz, tmp_path):
    report = fuzz.fuzz(300, seed=12345, jobs=1, timeout=5.0, crash_dir=tmp_path / "crashes")
    crashes = "; ".join(f"{k} x{v}" for k, v in report.crashes.items())
    files = [p.with_suffix(".txt").read_text() for p in report.crash_files[:3]]
    assert report.n_crashes == 0, f"{crashes}\n\n" + "\n\n".join(files)
    assert report.cases == 300
    # the mutations are neither all harmless nor all fatal: both outcomes occur
    assert report.imported >= 10 and sum(report.errors.values()) >= 100, report.table()


def test_cases_are_reproducible_and_mutated(fuzz):
    seeds = [(str(p), p.read_bytes()) for p in fuzz.seed_files()]
    a = [fuzz.make_case(i, 7, seeds) for i in range(40)]
    b = [fuzz.make_case(i, 7, seeds) for i in range(40)]
    assert [c.data for c in a] == [c.data for c in b]
    assert all(c.mutations for c in a)
    originals = {raw for _, raw in seeds}
    assert sum(c.data not in originals for c in a) >= 35
    kinds = {m.split(":")[0] for c in a for m in c.mutations}
    assert kinds & {"flip", "truncate", "insert", "splice", "set", "delete", "dup"}
    assert kinds & {"dim", "init_dims", "raw_len", "nonfinite", "op", "attr_change", "opset"}


def test_a_non_hwflow_exception_counts_as_a_crash(fuzz, tmp_path, monkeypatch):
    import hwflow.ir

    def boom(path):
        raise ValueError("not a clean error")

    monkeypatch.setattr(hwflow.ir, "load_model", boom)
    path = tmp_path / "m.onnx"
    path.write_bytes((ROOT / "examples" / "models" / "digits_mlp.onnx").read_bytes())
    outcome, label, detail = fuzz.check(path)
    assert outcome == "crash" and label.startswith("ValueError") and "not a clean error" in detail
    monkeypatch.undo()
    assert fuzz.check(path)[0] == "imported"


def test_a_hang_counts_as_a_crash(fuzz, tmp_path, monkeypatch):
    import time

    import hwflow.ir

    monkeypatch.setattr(hwflow.ir, "load_model", lambda path: time.sleep(10))
    outcome, label, _ = fuzz.check(tmp_path / "m.onnx", timeout=0.5)
    assert (outcome, label) == ("crash", "hang > 0.5 s")


def _die(path, timeout=5.0):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _stuck(path, timeout=5.0):
    import signal
    import time

    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # like a hang inside C code: the alarm cannot stop it
    time.sleep(60)


@pytest.mark.parametrize("fn, label", [(_die, "worker died (exit -9)"),
                                       pytest.param(_stuck, "hang (worker stuck in C code)", marks=pytest.mark.slow)])
def test_dead_or_stuck_workers_are_crashes_and_replaced(fuzz, fn, label, tmp_path, monkeypatch):
    monkeypatch.setattr(fuzz, "check", fn)  # the forked workers inherit it
    report = fuzz.fuzz(2, seed=0, timeout=0.1, crash_dir=tmp_path)
    assert report.cases == 2 and dict(report.crashes) == {label: 2}
    assert len(list(tmp_path.glob("*.onnx"))) == 2
