"""A compressed model through ``hwflow compile`` and ``hwflow simulate``: bit-exact and cycle-exact."""

import json
from pathlib import Path

import numpy as np
import pytest

from hwflow.cli import main
from hwflow.build import load_build

pytestmark = pytest.mark.sim

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


def test_pruned_shared_mlp_simulates_exactly(tmp_path, capsys):
    out = tmp_path / "b"
    rc = main(["compile", str(MODELS / "digits_mlp.onnx"), "--calib", str(MODELS / "digits_mlp_calib.npz"),
               "--prune", "0.6", "--prune-channels", "0.25", "--share", "2", "--pe", "2", "--simd", "4",
               "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    build = load_build(out)
    qg = build.qgraph()
    for layer in qg.layers:
        assert len(np.unique(layer.weight)) <= 4
        assert np.array_equal(np.asarray(layer.attrs["codebook"])[np.asarray(layer.attrs["codebook_index"])],
                              layer.weight)
    sched = json.loads((out / "schedule.json").read_text())
    assert sched["memory"]["weight_word_bits"] == 2 * 4 * 2  # PE x SIMD 2-bit codebook indices
    assert sched["latency"]["codebook"] == 1
    capsys.readouterr()
    rc = main(["simulate", str(out), "--simulator", "icarus"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "PASS" in text and "mismatches       0" in text
    assert f"cycles           {build.predicted_cycles} (predicted {build.predicted_cycles})" in text
