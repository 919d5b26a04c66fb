"""The XNOR-popcount unit's steps (``xnor``, rtl/xnor_array.py): which layers the scheduler sends
there, how wide it makes the unit, the step's loop nest and ROM image, and that the builds are
bit- and cycle-exact (Amaranth here; Verilator in one slow test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _support.lowbit_models import sign_mlp
from hwflow.config import QuantConfig
from hwflow.flow import load_graph, quantize_graph
from hwflow.quant.reference import run_int
from hwflow.schedule import schedule
from hwflow.schedule.schedule import XNOR_LUT_SHARE, xnor_widths
from hwflow.targets import load_target

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """sign_mlp (fc0 64->32 int8, fc1 32->24 binary on bipolar codes, fc2 24->10 int8), w1a1."""
    path = sign_mlp(tmp_path_factory.mktemp("xnor") / "sign_mlp.onnx")
    calib = np.load(path.with_name(path.stem + "_calib.npz"))["x"]
    return quantize_graph(load_graph(path), calib, QuantConfig(weights="binary", abits=1)).qgraph


@pytest.fixture(scope="module")
def brevitas():
    """Brevitas' BipolarQuant MLP (64-128-128-10, every weight binary; its bipolar tensors 2-bit)."""
    qg = load_graph(ROOT / "tests" / "fixtures" / "digits" / "brevitas_mlp_w1a1.onnx")
    return quantize_graph(qg, None, QuantConfig(calibration="none")).qgraph


def _kinds(prog):
    return {l.name: l.kind for l in prog.layers}


def test_binary_layer_on_bipolar_input_runs_on_the_unit(mlp):
    prog = schedule(mlp, "generic", pe=4, simd=8)
    assert _kinds(prog) == {"fc0": "mac", "fc1": "xnor", "fc2": "mac"}
    # fc1: 32 inputs = 4 words; 24 outputs; widest useful unit: min(32 rows, k * lanes = 4 * 4)
    assert xnor_widths(mlp, load_target("generic"), 4, 8) == [16, 8, 4, 2]
    fc1 = prog.layers[1]
    assert prog.xrows == 16 and (fc1.nt, fc1.k, fc1.nb, fc1.ng) == (2, 4, 16, 16 // prog.rq_lanes)
    assert fc1.t == max(fc1.k, fc1.ng) and fc1.cycles == 2 + fc1.tiles * fc1.t + fc1.drain
    # the unit's ROM: word g*k + j holds rows g*16.. of input chunk j, a bit a weight (1: -1)
    w = mlp.layers[1].weight
    img = prog.xweights[fc1.w_base:fc1.w_base + fc1.w_words]
    assert img.shape == (4 * 2, 16, 8) and set(np.unique(img)) <= {-1, 0}
    for g in range(2):
        for j in range(4):
            rows = slice(g * 16, min(24, g * 16 + 16))
            np.testing.assert_array_equal(img[g * 4 + j][:rows.stop - rows.start], -(w[rows, j * 8:(j + 1) * 8] < 0).astype(int))
    assert (img[4:][:, 8:] == 0).all()  # rows past cout hold +1 (never written out)
    assert prog.xnor_rom_bits == img.size and prog.to_json()["xnor"]["binary_macs"] == 16 * 8
    lanes = {d["layer"]: d["lane"] for d in prog.layer_lanes()}
    assert lanes["fc1"] == "128 xnor" and "xnor" not in lanes["fc0"]


def test_unit_off_or_unusable_leaves_the_array(mlp):
    assert "xnor" not in _kinds(schedule(mlp, "generic", pe=4, simd=8, xnor=False)).values()
    # 32 input channels do not fill 64-lane words: the unit would count lanes that hold no input
    prog = schedule(mlp, "generic", pe=4, simd=64)
    assert xnor_widths(mlp, load_target("generic"), 4, 64) == [] and prog.xrows == 0
    assert "xnor" not in _kinds(prog).values()


def test_sfc_unit_width_on_fpga_medium():
    """The SFC w1a1 (784-256-256-256-10): both hidden layers on a 256-row unit (2,048 binary
    MACs a cycle: 256 rows x 8 lanes, ``k * lanes = 32 * 8``), within the LUT share and the
    block RAMs, and faster than the array."""
    graph = load_graph(ROOT / "examples" / "models" / "digits784_sfc.onnx")
    qg = quantize_graph(graph, None, QuantConfig(calibration="none", weights="binary", abits=1)).qgraph
    tgt = load_target("fpga-medium")
    prog = schedule(qg, tgt)
    assert _kinds(prog) == {"fc0": "mac", "fc1": "xnor", "fc2": "xnor", "fc3": "mac"}
    assert prog.xrows * prog.simd == 2048 and xnor_widths(qg, tgt)[0] == 256
    assert prog.estimate["luts"] <= XNOR_LUT_SHARE * tgt.luts
    assert prog.estimate["bram_blocks"] <= tgt.block_ram.blocks
    array = schedule(qg, tgt, xnor=False)
    hidden = sum(l.cycles for l in prog.layers if l.kind == "xnor")
    assert hidden < sum(l.cycles for l in array.layers if l.name in ("fc1", "fc2")) / 4
    assert prog.cycles < array.cycles


def test_unit_narrows_to_the_target(brevitas):
    """Brevitas' fixture: its hidden and last layers (2-bit-typed bipolar inputs) go to the unit;
    a small part gets a narrower one than the generic target, and the estimate stays in budget."""
    wide = schedule(brevitas, "generic", pe=4, simd=4)
    assert [l.kind for l in wide.layers] == ["mac", "xnor", "xnor"]
    tiny = load_target("fpga-tiny")
    prog = schedule(brevitas, tiny)
    assert [l.kind for l in prog.layers] == ["mac", "xnor", "xnor"]
    assert 0 < prog.xrows and prog.estimate["luts"] <= XNOR_LUT_SHARE * tiny.luts


@pytest.mark.sim
@pytest.mark.parametrize("shape", [(4, 8), (2, 4)])
def test_xnor_steps_are_exact_in_amaranth(mlp, shape):
    from _support.accel_sim import assert_exact

    prog = schedule(mlp, "generic", pe=shape[0], simd=shape[1])
    assert "xnor" in _kinds(prog).values()
    rng = np.random.default_rng(shape[1])
    lo, hi = mlp.tensors[mlp.input].range
    xs = [rng.integers(lo, hi + 1, size=mlp.tensors[mlp.input].shape) for _ in range(2)]
    assert_exact(prog, mlp, xs, f"sign_mlp {shape}")


@pytest.mark.sim
def test_brevitas_w1a1_on_the_unit_is_exact_in_amaranth(brevitas):
    """The fixture's recorded inputs through the unit: equal to the integer reference (which the
    fixture tests hold equal to qonnx's executor) and to the cycle model."""
    from _support.accel_sim import assert_exact

    prog = schedule(brevitas, "fpga-small")
    assert "xnor" in _kinds(prog).values()
    rng = np.random.default_rng(1)
    lo, hi = brevitas.tensors[brevitas.input].range
    xs = [rng.integers(lo, hi + 1, size=brevitas.tensors[brevitas.input].shape) for _ in range(2)]
    assert_exact(prog, brevitas, xs, "brevitas_mlp_w1a1 fpga-small")


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.tool("verilator")
def test_xnor_steps_are_exact_on_verilator(mlp, tmp_path):
    from hwflow.sim import run_vectors

    prog = schedule(mlp, "generic", pe=4, simd=8)
    assert "xnor" in _kinds(prog).values()
    rng = np.random.default_rng(3)
    lo, hi = mlp.tensors[mlp.input].range
    xs = [rng.integers(lo, hi + 1, size=mlp.tensors[mlp.input].shape) for _ in range(3)]
    res = run_vectors(prog, xs, "verilator", expected=[run_int(mlp, x).reshape(-1) for x in xs], build_dir=tmp_path)
    assert not res.mismatches and list(res.cycles) == [prog.cycles] * 3
