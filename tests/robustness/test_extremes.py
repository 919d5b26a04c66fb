# amaranth: UnusedElaboratable=no
"""Equivalence at the extremes (issue 8): weights at ±max, inputs at ±max, alternating
signs and the zero point; the accumulators reach their worst-case bounds exactly, and
the hardware still equals the integer reference bit for bit and cycle for cycle.

The accumulator width is proved from the bound: ``Program.acc_bits`` is the signed width
of the widest ``acc_bounds`` range (never guessed), and these graphs *attain* that range,
so one bit fewer would overflow.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwflow.quant.arith import bits_for_range, int_range
from hwflow.quant.reference import acc_bounds, run_int
from _support.graphs import GraphBuilder
from hwflow.schedule import schedule


class MaxWeights(GraphBuilder):
    """Every weight at an end of its range, the sign alternating along the input index,
    so one input vector drives every output channel's accumulator to its bound."""

    def _weights(self, shape, wbits):
        lo, hi = int_range(wbits)
        if len(shape) == 4:  # conv: by input channel, so that every window sees the same pattern
            sign = (np.arange(shape[1]) % 2 == 0)[None, :, None, None]
        else:
            sign = (np.arange(shape[1]) % 2 == 0)[None, :]
        return np.broadcast_to(np.where(sign, hi, lo), shape).copy()


def _graph(kind: str, scheme: str, wbits: int, abits: int):
    b = MaxWeights(seed=3, scheme=scheme, wbits=wbits, abits=abits)
    if kind == "mlp":
        x = b.input_tensor((1, 37))
        h = b.gemm(x, 9)
        b.gemm(h, 5)
    else:  # no padding, so every conv output sees only real inputs
        x = b.input_tensor((1, 2, 6, 6))
        h = b.conv(x, 4, k=3, pad=0)
        b.gemm(h, 3)
    return b.build()


def extreme_vectors(t) -> np.ndarray:
    """Input codes: all min, all max, alternating (both phases), all zero point; for
    4-D inputs also alternating by channel."""
    lo, hi = t.range
    n = int(np.prod(t.shape[1:]))
    even = np.arange(n) % 2 == 0
    vecs = [np.full(n, lo), np.full(n, hi), np.where(even, hi, lo), np.where(even, lo, hi), np.full(n, t.zero_point)]
    if len(t.shape) == 4:  # alternating by channel too (both phases)
        c, hw = t.shape[1], int(np.prod(t.shape[2:]))
        by_channel = np.repeat(np.arange(c) % 2 == 0, hw)
        vecs += [np.where(by_channel, hi, lo), np.where(by_channel, lo, hi)]
    return np.stack(vecs).reshape((len(vecs),) + tuple(t.shape[1:])).astype(np.int64)


def _first_acc(qg, x) -> np.ndarray:
    """The first layer's accumulator (before requantization), straight from the contract."""
    layer = qg.layers[0]
    tin = qg.tensors[layer.inputs[0]]
    w = layer.weight.reshape(layer.weight.shape[0], -1)
    if layer.op == "gemm":
        cols = x.reshape(1, -1)
    else:
        kh, kw = layer.kernel
        _, c, h, wd = tin.shape
        xs = x.reshape(c, h, wd)
        cols = np.stack([xs[:, i:i + kh, j:j + kw].reshape(-1) for i in range(h - kh + 1) for j in range(wd - kw + 1)])
    return layer.bias[None, :] + cols @ w.T


CONFIGS = [
    ("mlp", "pow2", 8, 8), ("mlp", "symmetric", 8, 8), ("mlp", "asymmetric", 8, 8),
    ("mlp", "symmetric", 4, 4), ("mlp", "symmetric", 2, 8), ("mlp", "asymmetric", 16, 16),
    ("cnn", "asymmetric", 8, 8), ("cnn", "pow2", 4, 8),
]


def _product_range(layer, tin) -> tuple[int, int]:
    """Worst-case range of the MAC array's sum of products (no bias) of a conv/gemm layer."""
    xlo, xhi = tin.range
    w = layer.weight.reshape(layer.weight.shape[0], -1)
    pos, neg = np.where(w > 0, w, 0).sum(axis=1), np.where(w < 0, w, 0).sum(axis=1)
    return int((pos * xlo + neg * xhi).min()), int((pos * xhi + neg * xlo).max())


@pytest.mark.parametrize("kind, scheme, wbits, abits", CONFIGS)
def test_worst_case_bounds_are_attained_and_size_the_accumulators(kind, scheme, wbits, abits):
    qg = _graph(kind, scheme, wbits, abits)
    layer = qg.layers[0]
    tin = qg.tensors[layer.inputs[0]]
    accs = [_first_acc(qg, x) for x in extreme_vectors(qg.tensors[qg.input])]
    # the accumulator with bias (acc_bounds, the post-processing width) reaches both ends ...
    lo, hi = acc_bounds(layer, [tin])
    assert (min(int(a.min()) for a in accs), max(int(a.max()) for a in accs)) == (lo, hi)
    # ... and so does the MAC array's sum of products (the accumulator width)
    plo, phi = _product_range(layer, tin)
    prods = [a - layer.bias[None, :] for a in accs]
    assert (min(int(p.min()) for p in prods), max(int(p.max()) for p in prods)) == (plo, phi)

    prog = schedule(qg, "generic", pe=4, simd=4)
    ranges = [_product_range(l, qg.tensors[l.inputs[0]]) for l in qg.layers]
    bounds = [acc_bounds(l, [qg.tensors[t] for t in l.inputs]) for l in qg.layers]
    acc_bits = max(bits_for_range(min(r[0] for r in ranges), max(r[1] for r in ranges)), abits + 1)
    assert prog.acc_bits == acc_bits
    post = (min([b[0] for b in bounds] + [r[0] for r in ranges]), max([b[1] for b in bounds] + [r[1] for r in ranges]))
    assert prog.post_bits == max(bits_for_range(*post), acc_bits + 1)
    if kind == "mlp":  # the first layer has the widest fan-in: the attained sums need every bit
        assert bits_for_range(plo, phi) == prog.acc_bits or prog.acc_bits == abits + 1
        assert bits_for_range(lo, hi) == bits_for_range(*post)


@pytest.mark.sim
@pytest.mark.parametrize("kind, scheme, wbits, abits", CONFIGS)
def test_extremes_bit_and_cycle_exact_in_amaranth(kind, scheme, wbits, abits):
    from _support.accel_sim import assert_exact

    qg = _graph(kind, scheme, wbits, abits)
    prog = schedule(qg, "generic", pe=4, simd=4)
    assert_exact(prog, qg, extreme_vectors(qg.tensors[qg.input]))


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("kind, scheme, wbits, abits", [("mlp", "asymmetric", 16, 16)])  # the widest accumulators
def test_extremes_bit_and_cycle_exact_in_verilator(kind, scheme, wbits, abits, tmp_path):
    from hwflow.rtl.accelerator import to_verilog
    from hwflow.sim.cocotb_runner import require_simulator, run_cocotb

    require_simulator("verilator")
    qg = _graph(kind, scheme, wbits, abits)
    prog = schedule(qg, "generic", pe=4, simd=4)
    xs = extreme_vectors(qg.tensors[qg.input])
    expected = np.stack([np.asarray(run_int(qg, x)).reshape(-1) for x in xs])
    v = tmp_path / "extreme.v"
    v.write_text(to_verilog(prog, "extreme"))
    res = run_cocotb(v, "extreme", xs, expected, prog.cycles, "verilator", tmp_path / "sim_build",
                     output_size=prog.output_size, stream=prog.stream_maps())
    assert res.passed, res.summary()
    doc = res.to_json()
    assert json.dumps(doc)  # serializable result


@pytest.mark.sim
def test_example_build_on_extreme_inputs_through_the_cli(tmp_path, capsys):
    """``hwflow simulate --inputs`` with ±max, alternating and zero-point codes on a
    compiled example (Amaranth here; Verilator figures for every example are in the
    issue 8 note)."""
    from pathlib import Path

    from hwflow.cli import main

    examples = Path(__file__).resolve().parents[2] / "examples" / "models"
    out = tmp_path / "cnn"
    assert main(["compile", str(examples / "digits_cnn.onnx"), "--calib", str(examples / "digits_cnn_calib.npz"),
                 "--target", "generic", "-o", str(out), "--vectors", "1"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    t = m["input"]
    from hwflow.quant.qgraph import QTensor

    xs = extreme_vectors(QTensor(t["name"], tuple(t["shape"]), t["bits"], t["scale"], t["zero_point"]))
    np.save(tmp_path / "x.npy", xs)
    capsys.readouterr()
    assert main(["simulate", str(out), "--simulator", "amaranth", "--inputs", str(tmp_path / "x.npy"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["passed"] and res["vectors"] == len(xs) and res["mismatches"] == 0, res
