"""hwflow sweep: six points of the example MLP compiled in two processes, table, Pareto front, plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwflow.cli import main
from hwflow.errors import OptionError
from hwflow.report.sweep import parse_int_list, pareto_front

MODELS = Path(__file__).resolve().parents[2] / "examples" / "models"


def _row(cycles, luts, dsps, acc=None, error=None):
    r = {"cycles": cycles, "luts": luts, "dsps": dsps, "error": error}
    if acc is not None:
        r["accuracy"] = acc
    return r


def test_pareto_front_unit():
    rows = [_row(100, 1000, 10), _row(200, 500, 10), _row(200, 1000, 10),  # dominated by both
            _row(100, 1000, 10),  # equal to the first: neither dominates
            _row(50, 5000, 0), _row(1, 1, 0, error="FitError: too big")]
    assert pareto_front(rows) == [True, True, False, True, True, False]
    # accuracy is an objective when present: the cheap point loses accuracy, so both stay
    rows = [_row(100, 1000, 10, 0.97), _row(100, 500, 0, 0.90), _row(100, 900, 10, 0.90)]
    assert pareto_front(rows) == [True, True, False]


def test_parse_int_list():
    assert parse_int_list("4, 8,16,8", "--pe") == [4, 8, 16]
    with pytest.raises(OptionError, match=r"--pe takes a comma-separated list of integers, not 'a,4'"):
        parse_int_list("a,4", "--pe")
    with pytest.raises(OptionError, match=r"--wbits needs integers 2\.\.16"):
        parse_int_list("8,1", "--wbits", 2, 16)


def test_sweep_bad_options_are_one_line(tmp_path, capsys):
    assert main(["sweep", str(MODELS / "digits_mlp.onnx"), "--pe", "0,4", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pe needs integers" in err
    assert main(["sweep", str(tmp_path / "nope.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_sweep_mlp_six_points_two_jobs(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "sweep"
    rc = main(["sweep", str(MODELS / "digits_mlp.onnx"), "--target", "fpga-small", "--pe", "2,4,6", "--simd", "4",
               "--wbits", "8,4", "--calib", str(MODELS / "digits_mlp_calib.npz"),
               "--data", str(MODELS / "digits_mlp_test.npz"), "--jobs", "2", "-o", str(out)])
    assert rc in (0, None)
    captured = capsys.readouterr()
    assert captured.err == ""  # not a TTY: no progress
    lines = captured.out.splitlines()
    header = next(l for l in lines if l.lstrip().startswith("PE"))
    assert header.split()[-1] == "Pareto" and "accuracy" in header and "cycles" in header
    body = lines[lines.index(header) + 1:lines.index(header) + 7]
    assert len(body) == 6 and sum(l.rstrip().endswith("*") for l in body) >= 1

    doc = json.loads((out / "sweep.json").read_text())
    rows = doc["rows"]
    assert len(rows) == 6 and all(r["error"] is None for r in rows)
    assert {(r["pe"], r["simd"], r["wbits"]) for r in rows} == {(p, 4, w) for p in (2, 4, 6) for w in (8, 4)}
    assert len({r["worker_pid"] for r in rows}) == 2, "the points ran in two processes"
    for r in rows:
        m = json.loads((Path(r["path"]) / "manifest.json").read_text())
        assert (m["pe"], m["simd"], m["options"]["quant"]["wbits"]) == (r["pe"], r["simd"], r["wbits"])
        assert r["cycles"] == m["cycles"] and r["latency_us"] == pytest.approx(m["cycles"] / doc["clock_mhz"])
        assert r["weight_rom_bits"] == m["memory"]["weight_rom_bits"]
        assert 0.8 < r["accuracy"] <= 1 and 0.8 < r["agreement"] <= 1
    # the front is exactly the non-dominated set
    assert [r["pareto"] for r in rows] == pareto_front(rows)
    # wider arrays are never slower; 4-bit weights take half the ROM of 8-bit ones
    by = {(r["pe"], r["wbits"]): r for r in rows}
    for w in (8, 4):
        assert by[(2, w)]["cycles"] >= by[(4, w)]["cycles"] >= by[(6, w)]["cycles"]
    assert by[(4, 4)]["weight_rom_bits"] * 2 == by[(4, 8)]["weight_rom_bits"]
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out / "pareto.png") as im:
        assert im.size[0] > 300
