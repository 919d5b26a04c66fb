"""End to end: ``hwflow compile`` then ``hwflow simulate`` in Amaranth, Icarus and Verilator.

Models: the shipped digits MLP and CNN, and a small CNN with a depthwise conv and a
residual Add built here with onnx.helper. Per model, four builds cover every pair of
(scheme pow2|symmetric, weight bits 8|4, two array shapes) — pairwise, LiteX
param_space style, not the full grid. Every build runs in Amaranth and Icarus; three
builds (together covering each scheme, bit width and shape) also run in Verilator.

Builds live in pytest's cache directory so the simulators' sim_build directories
survive between sessions (a Verilator rebuild of an unchanged design takes ~2 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwflow.cli import main
from hwflow.build import load_build

pytestmark = pytest.mark.sim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"

#: per model: two array shapes (pe, simd)
SHAPES = {"mlp": [(4, 4), (8, 2)], "cnn": [(4, 4), (2, 8)], "dwres": [(2, 8), (8, 4)]}
#: pairwise rows over (scheme, wbits, shape index): every pair of values appears once
ROWS = [("pow2", 8, 0), ("pow2", 4, 1), ("symmetric", 8, 1), ("symmetric", 4, 0)]
CONFIGS = [(m, s, w, SHAPES[m][i]) for m in SHAPES for (s, w, i) in ROWS]
#: Verilator on three builds: pow2 and symmetric, 8 and 4 bits, both shapes, all models
VERILATOR = [("mlp", "pow2", 8, SHAPES["mlp"][0]),
             ("cnn", "symmetric", 4, SHAPES["cnn"][0]),
             ("dwres", "pow2", 4, SHAPES["dwres"][1])]
#: the quick loop (``-m "not slow"``) runs one build per model: both schemes, both widths
QUICK = [CONFIGS[0], CONFIGS[5], CONFIGS[10]]


def _slow_unless_quick(cfgs):
    return [c if c in QUICK else pytest.param(c, marks=pytest.mark.slow) for c in cfgs]


def _cid(cfg) -> str:
    m, s, w, (pe, simd) = cfg
    return f"{m}-{s}-w{w}-{pe}x{simd}"


def dwres_model(path: Path, seed: int = 0) -> Path:
    """Conv 1→8 3x3 + ReLU, depthwise 3x3 + ReLU, pointwise 1x1, residual Add + ReLU,
    MaxPool 2x2, GlobalAveragePool, Flatten, Gemm 8→4; calibration data beside it."""
    rng = np.random.default_rng(seed)

    def w(name, *shape, scale=0.4):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [w("w1", 8, 1, 3, 3), w("b1", 8, scale=0.1), w("wd", 8, 1, 3, 3), w("bd", 8, scale=0.1),
             w("wp", 8, 8, 1, 1, scale=0.3), w("bp", 8, scale=0.1), w("wf", 4, 8), w("bf", 4, scale=0.1)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["cd"], pads=[1, 1, 1, 1], group=8, kernel_shape=[3, 3]),
        helper.make_node("Relu", ["cd"], ["rd"]),
        helper.make_node("Conv", ["rd", "wp", "bp"], ["cp"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["cp", "r1"], ["s"]),
        helper.make_node("Relu", ["s"], ["rs"]),
        helper.make_node("MaxPool", ["rs"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["fl"]),
        helper.make_node("Gemm", ["fl", "wf", "bf"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "dwres", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    np.savez(path.with_name(path.stem + "_calib.npz"),
             x=rng.uniform(0, 1, (32, 1, 8, 8)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def e2e_dir(request) -> Path:
    return Path(request.config.cache.mkdir("hwflow-e2e"))


@pytest.fixture(scope="module")
def models(e2e_dir) -> dict[str, tuple[Path, Path]]:
    dw = dwres_model(e2e_dir / "dwres.onnx")
    return {
        "mlp": (EXAMPLES / "digits_mlp.onnx", EXAMPLES / "digits_mlp_calib.npz"),
        "cnn": (EXAMPLES / "digits_cnn.onnx", EXAMPLES / "digits_cnn_calib.npz"),
        "dwres": (dw, dw.with_name("dwres_calib.npz")),
    }


@pytest.fixture(scope="module")
def builds(models, e2e_dir):
    """Compile each configuration once per module (lazily); returns cfg -> BUILD path."""
    done: dict = {}

    def get(cfg) -> Path:
        if cfg not in done:
            m, scheme, wbits, (pe, simd) = cfg
            model, calib = models[m]
            out = e2e_dir / _cid(cfg)
            rc = main(["compile", str(model), "--target", "generic", "-o", str(out), "--calib", str(calib),
                       "--scheme", scheme, "--wbits", str(wbits), "--pe", str(pe), "--simd", str(simd)])
            assert rc == 0, f"compile {cfg} failed"
            done[cfg] = out
        return done[cfg]

    return get


def _simulate(capsys, build: Path, simulator: str, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["simulate", str(build), "--simulator", simulator, "--json", *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def _check_pass(rc, res, build: Path, vectors: int):
    manifest = json.loads((build / "manifest.json").read_text())
    assert res["first_mismatch"] == "", res
    assert (rc, res["passed"], res["mismatches"]) == (0, True, 0), res
    assert res["vectors"] == vectors
    assert res["cycles"] == res["predicted_cycles"] == manifest["cycles"]
    assert res["cycles_per_vector"] == [manifest["cycles"]] * vectors
    assert res["core_cycles_per_vector"] == [manifest["cycles"]] * vectors
    assert res["cycles_per_second"] > 0


@pytest.mark.parametrize("cfg", _slow_unless_quick(CONFIGS), ids=_cid)
def test_build_is_meaningful(builds, cfg):
    """The reference outputs vary across vectors (a constant network would prove little)."""
    b = load_build(builds(cfg))
    m, scheme, wbits, (pe, simd) = cfg
    assert (b.manifest["pe"], b.manifest["simd"]) == (pe, simd)
    assert b.manifest["options"]["quant"]["scheme"] == scheme
    assert b.manifest["options"]["quant"]["wbits"] == wbits
    exp = b.expected().reshape(len(b.expected()), -1)
    assert len({tuple(r) for r in exp}) > 1


@pytest.mark.parametrize("cfg", _slow_unless_quick(CONFIGS), ids=_cid)
def test_icarus(builds, cfg, capsys):
    build = builds(cfg)
    rc, res = _simulate(capsys, build, "icarus", "--limit", "4")
    _check_pass(rc, res, build, 4)


@pytest.mark.parametrize("cfg", _slow_unless_quick(CONFIGS), ids=_cid)
def test_amaranth(builds, cfg, capsys):
    build = builds(cfg)
    rc, res = _simulate(capsys, build, "amaranth", "--limit", "1")
    _check_pass(rc, res, build, 1)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", VERILATOR, ids=_cid)
def test_verilator(builds, cfg, capsys):
    build = builds(cfg)
    rc, res = _simulate(capsys, build, "verilator")
    _check_pass(rc, res, build, 8)


def test_random_and_float_inputs_are_checked_against_the_reference(builds, capsys, tmp_path):
    build = builds(CONFIGS[4])  # cnn
    rc, res = _simulate(capsys, build, "icarus", "--random", "3", "--seed", "7")
    _check_pass(rc, res, build, 3)
    x = np.random.default_rng(3).uniform(0, 1, (2, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    rc, res = _simulate(capsys, build, "icarus", "--inputs", str(tmp_path / "x.npy"))
    _check_pass(rc, res, build, 2)


def test_wrong_expectation_fails_with_exit_1(builds, capsys):
    """The checker can fail: a BUILD whose reference no longer matches gives exit 1."""
    import shutil

    from hwflow._files import sha256_file
    from hwflow.build import write_manifest

    src = builds(CONFIGS[0])
    bad = src.with_name(src.name + "-tampered")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(src, bad, ignore=shutil.ignore_patterns("sim_build"))
    exp = np.load(bad / "vectors" / "expected.npy")
    exp[2, 5] += 1
    np.save(bad / "vectors" / "expected.npy", exp)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"]["vectors/expected.npy"] = sha256_file(bad / "vectors" / "expected.npy")
    write_manifest(bad / "manifest.json", manifest)
    rc, res = _simulate(capsys, bad, "icarus")
    assert (rc, res["passed"], res["mismatches"]) == (1, False, 1)
    assert res["first_mismatch"].startswith("vector 2, output 5:")
    assert res["cycles"] == res["predicted_cycles"]  # the cycles were still right


def test_standalone_run_py(builds):
    """``python BUILD/sim/run.py`` works without hwflow's CLI."""
    build = builds(CONFIGS[5])  # cnn pow2 4-bit
    proc = subprocess.run([sys.executable, str(build / "sim" / "run.py"), "--simulator", "icarus"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "icarus: PASS" in proc.stdout and "mismatches       0" in proc.stdout


def test_vcd(builds, capsys, tmp_path):
    build = builds(CONFIGS[0])
    for sim in ("amaranth", "icarus"):
        vcd = tmp_path / f"{sim}.vcd"
        rc, res = _simulate(capsys, build, sim, "--limit", "1", "--vcd", str(vcd))
        assert rc == 0
        head = vcd.read_text()[:200000]
        assert "$enddefinitions" in head and "out_data" in head


def test_human_summary(builds, capsys):
    build = builds(CONFIGS[0])
    capsys.readouterr()
    assert main(["simulate", str(build), "-s", "icarus", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((build / "manifest.json").read_text())
    assert "icarus: PASS" in out and "vectors run      2" in out and "mismatches       0" in out
    assert f"cycles           {manifest['cycles']} (predicted {manifest['cycles']})" in out
    assert "cycles/s" in out


def test_pruned_and_shared_build(models, e2e_dir, capsys):
    """Compile's pruning options reach the hardware, which still equals the reference."""
    model, calib = models["cnn"]
    out = e2e_dir / "cnn-pruned"
    assert main(["compile", str(model), "--target", "generic", "-o", str(out), "--calib", str(calib),
                 "--prune", "0.6", "--share", "3", "--pe", "4", "--simd", "4"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pruning"]["settings"]["prune"] == 0.6
    qg = load_build(out).qgraph()
    w = np.concatenate([l.weight.ravel() for l in qg.layers if l.weight is not None])
    assert (w == 0).mean() >= 0.5
    rc, res = _simulate(capsys, out, "icarus", "--limit", "3")
    _check_pass(rc, res, out, 3)
