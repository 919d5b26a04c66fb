"""The fit check (hwflow/schedule/fit.py): sizes from shapes agree with the scheduler's,
its verdict with the budget check, and a model too big is refused before quantization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hwflow
from hwflow.cli import main
from hwflow.config import PruneConfig, QuantConfig, ScheduleConfig
from hwflow.errors import FitError
from hwflow.flow import compile_model, load_graph, quantize_graph
from hwflow.schedule import schedule
from hwflow.schedule.fit import fit_check, format_bits
from _support.graphs import random_graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"
SHAPES = [(None, None), (2, 4), (8, 8), (3, 5)]
TARGETS = ["fpga-tiny", "fpga-small", "fpga-medium"]


@pytest.mark.parametrize("seed", range(30))
def test_read_trace_is_the_loop_nest(seed):
    """The scheduler's vectorized trace equals the executable loop nest, read by read."""
    _, qg = random_graph(seed)
    for pe, simd in ((1, 1), (2, 4), (4, 3)):
        for fuse in ("auto", "always"):
            for layer in schedule(qg, "generic", pe, simd, fuse=fuse).layers:
                want = [(j, r[0]) for j, r in enumerate(layer.reads()) if r is not None and r[0] is not None]
                cycle, addr = layer.read_trace()
                assert cycle.tolist() == [j for j, _ in want] and addr.tolist() == [a for _, a in want]


def _agrees(graph, qgraph, target, pe, simd, quant=None, prune=None):
    """Sizes equal the scheduled Program's; the verdict agrees with the budget check."""
    report = fit_check(graph, target, quant or QuantConfig(calibration="none"), prune, ScheduleConfig(pe=pe, simd=simd))
    try:
        prog = schedule(qgraph, target, pe, simd)
    except FitError as exc:
        assert report.verdict != "fits" or "LUTs" in str(exc), (report.message(), str(exc))
        return report
    assert report.verdict != "too big", report.message()
    est = prog.estimate
    assert (report.pe, report.simd, report.abits, report.wbits) == (prog.pe, prog.simd, prog.abits, prog.wbits)
    assert report.weight_words == prog.weights.shape[0] and report.act_words == prog.act_words
    assert report.act_bits == prog.act_bits and report.chan_entries == prog.bias.shape[0]
    assert report.weight_bits[0] <= prog.weight_rom_bits <= report.weight_bits[1]
    assert report.lut_entries[0] <= prog.lut.shape[0] <= report.lut_entries[1]
    assert report.blocks[0] <= est["bram_blocks"] <= report.blocks[1]
    assert report.dsps[0] <= est["dsps"] - prog.dsp_mults * (est["dsps"] > report.dsps[1])
    return report


@pytest.mark.parametrize("model", ["digits_cnn", "digits_mlp", "digits784_tanh_mlp"])
def test_fit_agrees_with_the_scheduler_on_the_examples(model):
    graph = load_graph(EXAMPLES / f"{model}.onnx")
    qg = quantize_graph(graph, None, QuantConfig(calibration="none")).qgraph
    for target in TARGETS:
        for pe, simd in SHAPES:
            _agrees(graph, qg, target, pe, simd)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["ic_resnet8", "kws_dscnn", "ad_autoencoder", "vww_mobilenetv1"])
def test_fit_agrees_with_the_scheduler_on_mlperf_tiny(model):
    graph = load_graph(EXAMPLES / f"{model}.onnx")
    verdicts = set()
    for wbits in (8, 4):
        quant = QuantConfig(calibration="none", wbits=wbits)
        qg = quantize_graph(graph, None, quant).qgraph
        for target in TARGETS:
            for pe, simd in SHAPES:
                verdicts.add(_agrees(graph, qg, target, pe, simd, quant).verdict)
    assert "too big" in verdicts and "fits" in verdicts


def test_fit_with_channel_pruning_and_sharing():
    graph = load_graph(EXAMPLES / "digits_cnn.onnx")
    quant = QuantConfig(calibration="none")
    for prune in (PruneConfig(channels=0.5), PruneConfig(share=3), PruneConfig(channels=0.25, share=2)):
        qg = quantize_graph(graph, None, quant, prune=prune).qgraph
        for pe, simd in SHAPES:
            _agrees(graph, qg, "fpga-small", pe, simd, quant, prune)


def test_suggestion_fits_when_compiled(tmp_path):
    """ResNet-8 at int8 is too big for fpga-small; the nearest option named does fit."""
    report = hwflow.fit_check(EXAMPLES / "ic_resnet8.onnx", "fpga-small")
    assert report.verdict == "too big" and report.nearest is not None
    flags = report.nearest["changes"]
    graph = load_graph(EXAMPLES / "ic_resnet8.onnx")
    quant = QuantConfig(calibration="none", **{k: v for k, v in flags.items() if k in ("wbits", "abits")})
    qg = quantize_graph(graph, None, quant).qgraph
    prog = schedule(qg, "fpga-small", flags.get("pe"), flags.get("simd"))
    assert prog.estimate["bram_blocks"] <= 56


def _big_mlp(path: Path, hidden: int = 2048) -> Path:
    """784-H-H-10: 5.8 M weights at H = 2048, 46.7 Mbit at int8 (fpga-medium holds 3.8)."""
    rng = np.random.default_rng(0)
    inits, nodes, prev, x = [], [], 784, "x"
    for i, n in enumerate((hidden, hidden, 10)):
        w = (rng.standard_normal((prev, n)) / np.sqrt(prev)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(n, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"h{i}"]))
        x = f"h{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
        prev = n
    g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 10])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_too_big_is_refused_before_quantization(tmp_path, capsys):
    model = _big_mlp(tmp_path / "big.onnx")
    steps = []
    with pytest.raises(FitError, match="does not fit") as exc:
        compile_model(model, "fpga-medium", tmp_path / "b", on_step=lambda name, _: steps.append(name))
    assert steps == ["load", "optimize"] and not (tmp_path / "b").exists()
    assert "46.7 Mbit of weights" in str(exc.value) and "fpga-medium holds 3.83 Mbit" in str(exc.value)
    assert main(["compile", str(model), "--target", "fpga-medium", "-o", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwflow: error: big needs") and "--wbits" in err[0]
    assert not (tmp_path / "c").exists()


def test_inspect_prints_the_verdict(tmp_path, capsys):
    model = _big_mlp(tmp_path / "big.onnx", hidden=512)
    assert main(["inspect", str(model), "--target", "fpga-medium", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fit = doc["fit"]
    assert fit["verdict"] == "too big" and fit["target"] == "fpga-medium" and fit["weight_words"] > 0
    assert fit["nearest"]["changes"] == {"wbits": 4}
    assert main(["inspect", str(model), "--target", "fpga-medium", "--wbits", "4"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("fit: fits: big needs")
    assert main(["inspect", str(model), "--json"]) == 0
    assert "fit" not in json.loads(capsys.readouterr().out)


def test_format_bits():
    assert [format_bits(v) for v in (96, 1500, 3_833_856, 1.15e9, 123e6)] == \
        ["96 bit", "1.5 kbit", "3.83 Mbit", "1.15 Gbit", "123 Mbit"]
