# amaranth: UnusedElaboratable=no
"""The MLPerf Tiny mappings on Verilator: the streamed first layer, outputs written over the
maps they consume, packed depthwise weights; and one MLPerf example end to end."""

import json
from pathlib import Path

import pytest

from hwflow.cli import main
from hwflow.quant.reference import run_int
from hwflow.schedule import schedule
from hwflow.sim import run_vectors
from _support.graphs import GraphBuilder, dwnet, first_conv, resblock

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def _stream(b):
    first_conv(3, 3, 2, (0, 0, 1, 1), h=9, w=8)(b)


@pytest.mark.parametrize("fn,pe,simd,check", [
    (_stream, 4, 4, lambda p: p.input_stream is not None),
    (resblock, 4, 4, lambda p: p.act_words < 3 * 6 * 5 * 2),  # two 6-channel 6 x 5 maps and a shift
    (dwnet, 8, 8, lambda p: p.w_pack == 8 and any(l.wpk for l in p.layers)),
])
def test_mapping_is_exact_on_verilator(fn, pe, simd, check, tmp_path):
    b = GraphBuilder(seed=pe, scheme="asymmetric")
    fn(b)
    qg = b.build()
    prog = schedule(qg, "generic", pe=pe, simd=simd)
    assert check(prog)
    xs = [b.random_input(qg) for _ in range(3)]
    res = run_vectors(prog, xs, "verilator", expected=[run_int(qg, x).reshape(-1) for x in xs], build_dir=tmp_path)
    assert not res.mismatches and list(res.cycles) == [prog.cycles] * 3


def test_kws_dscnn_compiles_simulates_and_synthesizes(tmp_path, capsys):
    """DS-CNN on fpga-small at 4 x 4 (streamed first layer, packed depthwise weights):
    compile, Verilator bit- and cycle-exact, Yosys without place and route."""
    out = tmp_path / "kws"
    assert main(["compile", str(EXAMPLES / "kws_dscnn.onnx"), "--calib", str(EXAMPLES / "kws_dscnn_calib.npz"),
                 "--target", "fpga-small", "--pe", "4", "--simd", "4", "--vectors", "2", "-o", str(out)]) == 0
    sched = json.loads((out / "schedule.json").read_text())
    assert sched["input_stream"] is not None and sched["w_pack"] == 4
    capsys.readouterr()
    assert main(["simulate", str(out), "--simulator", "verilator", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] and res["mismatches"] == 0 and res["cycles_per_vector"] == [sched["cycles"]] * res["vectors"]
    assert main(["synth", str(out), "--no-pnr", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["fits"] and rep["source"] == "yosys" and rep["resources"]["lut"]["used"] > 1000
    assert rep["resources"]["bram"]["used"] <= rep["resources"]["bram"]["available"]
