"""Reproducible builds (issue 8): the same model and options compile to byte-identical files.

Every file of the BUILD is compared, the manifest included (nothing is excluded: a
timestamp, a timing or an absolute output path in it would be a bug), and the
randomness that enters calibration, GPTQ, k-means and the test vectors is seeded.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"

CASES = {
    # default flow: asymmetric, per-channel, mse calibration, device target (synthesis hand-off)
    "cnn-default": ["digits_cnn.onnx", "--calib", "digits_cnn_calib.npz"],
    # data-driven rounding (GPTQ samples rows) and entropy calibration (a histogram of every value)
    "mlp-gptq-entropy": ["digits_mlp.onnx", "--calib", "digits_mlp_calib.npz", "--scheme", "symmetric",
                         "--rounding", "gptq", "--calibration", "entropy", "--target", "generic"],
    # no data: random test vectors from --seed
    "mlp-random-vectors": ["digits_mlp.onnx", "--scheme", "pow2", "--seed", "3", "--target", "fpga-tiny"],
}
SLOW_CASES = {
    # a Tanh lookup table and percentile calibration over 784 inputs
    "tanh-percentile": ["digits784_tanh_mlp.onnx", "--calib", "digits784_tanh_mlp_calib.npz",
                        "--calibration", "percentile", "--per-tensor"],
}


def _argv(spec: list[str], out: Path) -> list[str]:
    model, *opts = spec
    opts = [str(EXAMPLES / o) if o.endswith(".npz") else o for o in opts]
    return ["compile", str(EXAMPLES / model), "-o", str(out), *opts]


def _files(build: Path) -> dict[str, bytes]:
    return {str(p.relative_to(build)): p.read_bytes() for p in sorted(build.rglob("*"))
            if p.is_file() and "sim_build" not in p.parts}


def _assert_identical(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    for name in ("manifest.json", "quant.json", "schedule.json", "vectors/inputs.npy", "vectors/expected.npy"):
        assert name in fa, name
    assert any(n.endswith(".v") for n in fa)
    differ = [n for n in fa if fa[n] != fb[n]]
    detail = ""
    if differ:
        import difflib

        name = differ[0]
        try:
            detail = "\n".join(list(difflib.unified_diff(fa[name].decode().splitlines(), fb[name].decode().splitlines(),
                                                         lineterm="", n=0))[:20])
        except UnicodeDecodeError:
            detail = "(binary)"
    assert differ == [], f"files differ between the two builds: {differ}\n{detail}"


@pytest.mark.parametrize("case", list(CASES) + [pytest.param(c, marks=pytest.mark.slow) for c in SLOW_CASES])
def test_compile_twice_gives_identical_builds(case, tmp_path, capsys):
    spec = {**CASES, **SLOW_CASES}[case]
    for name in ("one", "two"):  # different output paths: they must not leak into the files
        assert main(_argv(spec, tmp_path / name)) == 0
    capsys.readouterr()
    _assert_identical(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_identical_across_processes_and_hash_seeds(tmp_path):
    """Two compiles in fresh interpreters with different PYTHONHASHSEEDs (so the order of
    string sets and dict iteration over them differs) give the same bytes."""
    spec = CASES["cnn-default"]
    code = "import sys; from hwflow.cli import main; sys.exit(main(sys.argv[1:]))"
    for name, hash_seed in (("one", "0"), ("two", "12345")):
        res = subprocess.run([sys.executable, "-c", code, *_argv(spec, tmp_path / name)],
                             env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True, text=True,
                             cwd=tmp_path)
        assert res.returncode == 0, res.stderr
    _assert_identical(tmp_path / "one", tmp_path / "two")


def test_recompiling_in_place_changes_nothing(tmp_path, capsys):
    """Compiling again over an existing BUILD (the atomic replace) gives the same files."""
    spec = CASES["mlp-random-vectors"]
    out = tmp_path / "b"
    assert main(_argv(spec, out)) == 0
    first = _files(out)
    assert main(_argv(spec, out)) == 0
    capsys.readouterr()
    assert _files(out) == first


def test_weight_sharing_kmeans_is_deterministic():
    from hwflow.ir import load_model
    from hwflow.passes import optimize
    from hwflow.prune.sharing import share_weights
    from hwflow.quant import QuantConfig, quantize

    graph = optimize(load_model(EXAMPLES / "digits_cnn.onnx"))
    calib = np.load(EXAMPLES / "digits_cnn_calib.npz")["x"][:64]
    books = []
    for _ in range(2):
        qg = quantize(graph, QuantConfig(), calib)
        books.append((share_weights(qg, 3), [l.weight.copy() for l in qg.layers if l.weight is not None]))
    (b1, w1), (b2, w2) = books
    assert b1.keys() == b2.keys() and all(np.array_equal(b1[k], b2[k]) for k in b1)
    assert all(np.array_equal(x, y) for x, y in zip(w1, w2))


def _unseeded_rng_calls(path: Path) -> list[str]:
    """Calls in ``path`` that draw randomness without an explicit seed."""
    bad = []
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name.endswith("default_rng") and not node.args and not node.keywords:
            bad.append(f"{where}:{node.lineno}: {name}() without a seed")
        elif re.fullmatch(r"(np|numpy)\.random\.\w+", name) and not name.endswith(("default_rng", "Generator", "SeedSequence")):
            bad.append(f"{where}:{node.lineno}: {name} uses numpy's global random state")
        elif re.fullmatch(r"random\.\w+", name) and name != "random.Random":
            bad.append(f"{where}:{node.lineno}: {name} uses the global random module")
    return bad


def test_every_random_generator_in_the_compiler_is_seeded():
    sources = [p for d in ("hwflow", "rtl", "sim") for p in sorted((ROOT / d).rglob("*.py"))]
    assert len(sources) > 20
    bad = [b for p in sources for b in _unseeded_rng_calls(p)]
    assert bad == []


def test_the_seed_check_finds_unseeded_calls(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import random\nimport numpy as np\n"
                 "a = np.random.rand(3)\nb = np.random.default_rng()\nc = random.random()\n"
                 "d = np.random.default_rng(0).normal()\ne = random.Random(1).random()\n")
    assert [b.split(":")[1] for b in _unseeded_rng_calls(f)] == ["3", "4", "5"]
