"""``hwflow compile`` and the BUILD directory: layout, manifest, quant.json round trip,
atomic writes, and the bad-input paths (each exits 2 with one line)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hwflow import flow
from hwflow.build import load_build, qgraph_from_json, qgraph_to_json
from hwflow.cli import main
from hwflow.errors import BuildError, FitError
from hwflow.flow import STEPS, compile_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
MLP = EXAMPLES / "digits_mlp.onnx"
MLP_CALIB = EXAMPLES / "digits_mlp_calib.npz"


@pytest.fixture(scope="module")
def mlp_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("c") / "mlp"
    assert main(["compile", str(MLP), "-o", str(out), "--calib", str(MLP_CALIB), "--scheme", "symmetric"]) == 0
    return out


def _one_error_line(capsys, rc) -> str:
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwflow: error: "), err
    return lines[0]


def test_steps_are_the_flow():
    assert [name for name, _ in STEPS] == ["load", "optimize", "fit", "quantize", "schedule", "generate",
                                           "vectors", "write"]


def test_weight_rom_contents_are_a_readmemh_file(mlp_build):
    """The ROM's words are in digits_mlp_wrom.hex (one a line, as the inline form had them),
    read by $readmemh; the manifest, its checksums and the hand-off bundle list it."""
    m = json.loads((mlp_build / "manifest.json").read_text())
    v = (mlp_build / "digits_mlp.v").read_text()
    assert m["rom_files"] == ["digits_mlp_wrom.hex"] and "digits_mlp_wrom.hex" in m["files"]
    rom = v[v.index("module digits_mlp_wrom("):]
    assert '  initial $readmemh("digits_mlp_wrom.hex", mem);\n' in rom and "    mem[0] = " not in rom
    prog = load_build(mlp_build)
    words = (mlp_build / "digits_mlp_wrom.hex").read_text().split()
    assert len(words) == json.loads((mlp_build / "schedule.json").read_text())["memory"]["weight_words"]
    assert prog.manifest["handoff"]["memory_files"] == ["digits_mlp_wrom.hex"]
    core = (mlp_build / "digits_mlp.core").read_text()
    assert "- digits_mlp_wrom.hex: {copyto: digits_mlp_wrom.hex}" in core and "filesets: [rtl, memory" in core
    assert "digits_mlp_wrom.hex" not in (mlp_build / "files.f").read_text()


def test_build_layout_and_manifest(mlp_build):
    m = json.loads((mlp_build / "manifest.json").read_text())
    top = m["top"]
    assert top == "digits_mlp" and m["verilog"] == "digits_mlp.v"
    for rel in ("digits_mlp.v", "schedule.json", "quant.json", "vectors/inputs.npy", "vectors/expected.npy",
                "sim/run.py", "sim/tb_accelerator.py", "handoff.json", "synth.ys", "model.onnx"):
        assert (mlp_build / rel).is_file(), rel
        assert rel in m["files"]
    # the BUILD keeps the model it was compiled from, byte for byte
    assert m["model_file"] == "model.onnx" and (mlp_build / "model.onnx").read_bytes() == MLP.read_bytes()
    assert m["format"] == "hwflow.build/2" and m["results"] == {"simulation": "simulation.json",
                                                               "synth": "synth.json"}
    assert f"module {top}(" in (mlp_build / "digits_mlp.v").read_text().replace(" (", "(")
    sched = json.loads((mlp_build / "schedule.json").read_text())
    assert m["cycles"] == sched["cycles"] > 0
    assert m["target"] == "fpga-small" and (m["pe"], m["simd"]) == (sched["pe"], sched["simd"])
    out = m["host_tail"]["outputs"]
    assert m["host_tail"] == {"ops": ["Softmax"], "outputs": out, "label": None,
                              "note": "the host computes these ops from the accelerator's output (Build.outputs)"}
    assert len(out) == 1
    assert [o["op"] for o in m["ops"]] == ["gemm", "gemm"]
    assert m["memory"]["total_bits"] == sum(v for k, v in m["memory"].items() if k != "total_bits") > 0
    assert m["estimate"]
    assert m["input"]["shape"] == [1, 64] or m["input"]["shape"][0] == 1
    assert m["output"]["shape"] == [1, 10]
    assert {"bits", "scale", "zero_point"} <= set(m["input"])
    assert m["options"]["quant"]["scheme"] == "symmetric"
    assert m["options"]["schedule"] == {"pe": None, "simd": None, "fuse": "auto", "argmax": False}
    assert m["options"]["prune"] is None and m["options"]["auto_bits"] is None
    assert "command_line" not in m["options"]
    assert m["hwflow_version"]
    # the standalone testbench is the package's, verbatim
    import hwflow.sim

    assert (mlp_build / "sim" / "tb_accelerator.py").read_text() == \
        (Path(hwflow.sim.__file__).parent / "tb_accelerator.py").read_text()


def test_vectors_are_calibration_samples_and_reference_outputs(mlp_build):
    b = load_build(mlp_build)
    from hwflow.data import load_data
    from hwflow.quant.reference import run_int

    qg = b.qgraph()
    tin = qg.tensors[qg.input]
    x, _ = load_data(MLP_CALIB, tin.shape)
    inputs = b.inputs()
    assert inputs.shape == (8,) + tuple(tin.shape[1:]) and inputs.dtype == np.int64
    np.testing.assert_array_equal(inputs, tin.quantize(x[:8]).reshape(inputs.shape))
    want = np.stack([run_int(qg, v).reshape(-1) for v in inputs])
    np.testing.assert_array_equal(b.expected().reshape(8, -1), want)


def test_quant_json_round_trip(mlp_build):
    """quant.json reproduces the compiler's QGraph exactly (fields and outputs)."""
    from hwflow.data import load_data
    from hwflow.ir import load_model
    from hwflow.passes import optimize
    from hwflow.quant import QuantConfig, quantize
    from hwflow.quant.reference import run_int

    g = optimize(load_model(MLP))
    x, _ = load_data(MLP_CALIB, g.shape(g.inputs[0]))
    qg = quantize(g, QuantConfig(scheme="symmetric"), x)
    back = load_build(mlp_build).qgraph()
    assert qgraph_to_json(back) == qgraph_to_json(qg)
    assert list(back.tensors) == list(qg.tensors)
    for a, b in zip(qg.layers, back.layers):
        for f in ("weight", "bias", "m", "n", "lut"):
            va, vb = getattr(a, f), getattr(b, f)
            assert (va is None) == (vb is None)
            if va is not None:
                np.testing.assert_array_equal(va, vb)
                assert vb.dtype == np.int64
        assert (a.kernel, a.strides, a.pads, a.groups, a.lo, a.hi, a.wbits, a.mbits, a.add_m) == \
               (b.kernel, b.strides, b.pads, b.groups, b.lo, b.hi, b.wbits, b.mbits, b.add_m)
    for name, t in qg.tensors.items():
        assert (t.shape, t.bits, t.scale, t.zero_point) == \
               (back.tensors[name].shape, back.tensors[name].bits, back.tensors[name].scale,
                back.tensors[name].zero_point)
    codes = np.random.default_rng(0).integers(-128, 128, (5,) + qg.tensors[qg.input].shape[1:])
    for c in codes:
        np.testing.assert_array_equal(run_int(qg, c), run_int(back, c))
    with pytest.raises(ValueError, match="unknown quant.json format"):
        qgraph_from_json({"format": "other"})


def test_program_rebuilt_from_build_matches_schedule(mlp_build):
    b = load_build(mlp_build)
    prog = b.program()
    assert prog.cycles == b.predicted_cycles


def test_summary_and_default_output_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["compile", str(MLP), "--target", "generic", "--pe", "2", "--simd", "8"]) == 0
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "build" / "digits_mlp" / "manifest.json").read_text())
    assert f"cycles    {m['cycles']:,} predicted" in out
    assert "layers    2 (2 gemm); on the host: Softmax" in out
    assert "array     PE 2 x SIMD 8" in out and "memory" in out and "estimate" in out
    assert "next      hwflow simulate build/digits_mlp" in out
    assert not (tmp_path / "build" / "digits_mlp" / "handoff.json").exists()  # generic: no device


def test_random_vectors_without_calibration(tmp_path):
    m = compile_model(MLP, "generic", tmp_path / "b", vectors=3, seed=5)
    b = load_build(m["path"])
    assert b.inputs().shape[0] == 3 and "random" in m["vectors"]["source"]
    lo, hi = -(1 << (m["input"]["bits"] - 1)), (1 << (m["input"]["bits"] - 1)) - 1
    assert b.inputs().min() >= lo and b.inputs().max() <= hi


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_failed_compile_leaves_previous_build_intact(tmp_path, monkeypatch):
    out = tmp_path / "b"
    compile_model(MLP, "generic", out, vectors=2)
    (out / "sim_build").mkdir()
    (out / "sim_build" / "cache").write_text("kept")
    before = (out / "manifest.json").read_text()

    def interrupted(state):
        assert any(state.tmp.iterdir())  # something was already written
        raise KeyboardInterrupt

    write = dict(STEPS)["write"]

    def write_then_interrupt(state):
        write(state)
        interrupted(state)

    monkeypatch.setattr(flow, "STEPS", [s if s[0] != "write" else ("write", write_then_interrupt)
                                        for s in flow.STEPS])
    with pytest.raises(KeyboardInterrupt):
        compile_model(MLP, "generic", out, vectors=4)
    assert (out / "manifest.json").read_text() == before
    assert _listing(tmp_path) == ["b"]  # no temp directory left behind
    monkeypatch.undo()
    # a successful recompile replaces the build and carries the simulator cache over
    compile_model(MLP, "generic", out, vectors=4)
    assert json.loads((out / "manifest.json").read_text())["vectors"]["count"] == 4
    assert (out / "sim_build" / "cache").read_text() == "kept"
    assert _listing(tmp_path) == ["b"]


def test_unchanged_verilog_keeps_its_timestamp(tmp_path):
    """So the simulators' caches in sim_build survive a recompile of the same design."""
    out = tmp_path / "b"
    compile_model(MLP, "generic", out, vectors=1)
    v = out / "digits_mlp.v"
    os.utime(v, ns=(10**18, 10**18))
    compile_model(MLP, "generic", out, vectors=2)
    assert v.stat().st_mtime_ns == 10**18
    compile_model(MLP, "generic", out, vectors=2, pe=2)  # a different design: a fresh file
    assert v.stat().st_mtime_ns != 10**18


def test_failed_first_compile_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "big"
    # At PE 4 x SIMD 4 the 784 MLP's 128-bit weight words need 8 SPRAMs; the UP5K has 4.
    rc = main(["compile", str(EXAMPLES / "digits784_tanh_mlp.onnx"), "--target", "fpga-tiny", "--pe", "4",
               "--simd", "4", "-o", str(out)])
    line = _one_error_line(capsys, rc)
    assert "bits" in line and "fpga-tiny" in line
    assert "--wbits" in line or "--target" in line  # says what would fit
    assert _listing(tmp_path) == []


def test_model_too_big_is_a_fit_error(tmp_path):
    # Refused by the fit check, before quantization (hwflow/schedule/fit.py): at 4 x 4 the
    # weights fit neither the block RAM nor the SPRAM (at the target's 2 x 2 they fit the SPRAM).
    with pytest.raises(FitError, match=r"needs 637 kbit of weights .* does not fit; fpga-tiny holds 1.17 Mbit "
                                       r"\(30 block RAMs, 4 spram"):
        compile_model(EXAMPLES / "digits784_tanh_mlp.onnx", "fpga-tiny", tmp_path / "x", pe=4, simd=4)
    assert not (tmp_path / "x").exists()


def test_refuses_to_replace_a_foreign_directory(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    rc = main(["compile", str(MLP), "-o", str(tmp_path / "mine")])
    line = _one_error_line(capsys, rc)
    assert "not an hwflow build" in line
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


@pytest.mark.parametrize("args, msg", [
    (["--pe", "0"], "--pe must be a positive integer"),
    (["--vectors", "0"], "--vectors must be a positive integer"),
    (["--target", "no-such-board"], "no-such-board"),
    (["--scheme", "wild"], "unknown scheme 'wild'"),
    (["--calib", "/nonexistent/calib.npz"], "does not exist"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, args, msg):
    rc = main(["compile", str(MLP), "-o", str(tmp_path / "b"), *args])
    assert msg in _one_error_line(capsys, rc)
    assert not (tmp_path / "b").exists()


def test_missing_model_exits_2(tmp_path, capsys):
    rc = main(["compile", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "b")])
    assert "does not exist" in _one_error_line(capsys, rc)


# ---- load_build checks (used by hwflow simulate) ----------------------------------------

def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("sim_build"))
    return dst


def test_load_build_rejects_incomplete_and_edited(mlp_build, tmp_path):
    with pytest.raises(BuildError, match="does not exist; run hwflow compile first"):
        load_build(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuildError, match=r"is not an hwflow build \(no manifest.json\)"):
        load_build(tmp_path / "empty")
    b = _copy(mlp_build, tmp_path / "missing")
    os.remove(b / "vectors" / "expected.npy")
    with pytest.raises(BuildError, match="is incomplete: vectors/expected.npy is missing"):
        load_build(b)
    b = _copy(mlp_build, tmp_path / "edited")
    with open(b / "digits_mlp.v", "a") as f:
        f.write("// tweak\n")
    with pytest.raises(BuildError, match="digits_mlp.v in build .* was modified after compile"):
        load_build(b)
    b = _copy(mlp_build, tmp_path / "badmanifest")
    (b / "manifest.json").write_text("{")
    with pytest.raises(BuildError, match="manifest.json is malformed"):
        load_build(b)


def test_steps_run_without_the_cyclic_gc_and_leave_it_as_found():
    """Each step runs with the collector off and what lived before it frozen; afterwards the
    collector is back on, nothing is left frozen, and a caller's own frozen objects stay frozen."""
    import gc

    seen = []
    with flow._no_cyclic_gc():
        seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
    assert seen == [(False, True)] and gc.isenabled() and gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with flow._no_cyclic_gc():
            pass
        assert gc.get_freeze_count() == frozen and gc.isenabled()
    finally:
        gc.unfreeze()
    gc.disable()
    try:
        with flow._no_cyclic_gc():
            pass
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
