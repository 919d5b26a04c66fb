"""The pruning options through the CLI: bad input is one line and exit 2; eval prints the storage table."""

import json
from pathlib import Path

import numpy as np
import pytest

from hwflow.cli import main

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"
MLP = MODELS / "digits_mlp.onnx"
DATA = MODELS / "digits_mlp_test.npz"
CALIB = MODELS / "digits_mlp_calib.npz"


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("cmd", ["eval", "quantize", "compile"])
@pytest.mark.parametrize("opts,msg", [
    (["--prune", "1.0"], "--prune sparsity must be in [0, 1)"),
    (["--prune", "-0.2"], "--prune sparsity must be in [0, 1)"),
    (["--share", "6"], "--share must be 2..5 bits"),
    (["--share", "1"], "--share must be 2..5 bits"),
    (["--prune-channels", "1"], "--prune-channels must be in [0, 1)"),
])
def test_bad_input_one_line_exit_2(capsys, tmp_path, cmd, opts, msg):
    extra = {"eval": ["--data", DATA], "quantize": ["-o", tmp_path / "q"], "compile": ["-o", tmp_path / "b"]}[cmd]
    rc, out, err = _run(capsys, cmd, MLP, *extra, *opts)
    assert rc == 2
    assert msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "q").exists() and not (tmp_path / "b").exists()


def test_eval_prints_storage(capsys):
    rc, out, _ = _run(capsys, "eval", MLP, "--data", DATA, "--calib", CALIB, "--prune", "0.5", "--share", "4")
    assert rc == 0
    assert "fp32" in out and "ROM" in out and "huffman*" in out and "what-if" in out and "total" in out
    rc, out, _ = _run(capsys, "eval", MLP, "--data", DATA, "--calib", CALIB, "--prune", "0.5", "--share", "4", "--json")
    res = json.loads(out)
    st = res["storage"]["total"]
    assert st["fp32"] == 32 * 2368
    # the ROM stays dense: 4-bit indices for every weight, plus two codebooks of at most 16 bytes
    assert 2368 * 4 < st["rom"] <= 2368 * 4 + 2 * 16 * 8 and st["sparse"] < st["rom"]
    assert 0.49 < st["sparsity"] < 0.6
    rc, out, _ = _run(capsys, "eval", MLP, "--data", DATA)
    assert "huffman" not in out  # no storage table without --prune/--share


def test_quantize_writes_shared_weights(capsys, tmp_path):
    rc, _, _ = _run(capsys, "quantize", MLP, "--calib", CALIB, "--prune-channels", "0.25", "--share", "3",
                    "-o", tmp_path / "q")
    assert rc == 0
    doc = json.loads((tmp_path / "q" / "qgraph.json").read_text())
    fc0 = doc["layers"][0]
    assert np.asarray(fc0["weight"]).shape == (24, 64)          # 32 -> 24 hidden units
    assert len(np.unique(fc0["weight"])) <= 8
    assert doc["storage"]["settings"]["share"] == 3
