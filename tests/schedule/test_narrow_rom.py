"""Per-layer weight widths in the ROM (:meth:`RomImages.narrow_lr`, ``_narrowed``): which width
a layer's words take, and that the packed image decodes back to them as the accelerator's
``_narrow`` reads it (slot ``% 2**lr`` of ROM word ``>> lr``, sign-extended; 1 bit: ±1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwflow.quant.wformat import WeightFormat
from hwflow.rtl.weight_rom import pack_words
from hwflow.schedule.lower import RomImages


def _decode(image: np.ndarray, big: int, lr: int, n: int) -> np.ndarray:
    """Virtual words ``0 .. n-1`` of a narrow part, read as the hardware does."""
    pe, simd = image.shape[1:]
    lanes, b = pe * simd, big >> lr
    words = pack_words(image, big)
    out = np.zeros((n, lanes), np.int64)
    for v in range(n):
        slot = (words[v >> lr] >> ((v % (1 << lr)) * lanes * b)) & ((1 << (lanes * b)) - 1)
        for i in range(lanes):
            c = (slot >> (i * b)) & ((1 << b) - 1)
            out[v, i] = (-1 if c else 1) if b == 1 else c - ((c >> (b - 1)) << b)
    return out.reshape(n, pe, simd)


@pytest.mark.parametrize("values, bits, lr", [
    ([-8, 7, 0], 4, 1),
    ([-8, 7, 0], 3, 1),  # 3-bit codes in 4-bit slots
    ([-2, 1, 0], 2, 2),
    ([-1, 1, 1], 1, 3),  # binary: the sign
    ([-1, 1, 0], 1, 2),  # a padding zero keeps 2 bits
    ([-1, 1, 1], 8, 0),  # an int8 layer stays at 8 whatever its values
    ([9, -3], 5, 0),  # no narrower power-of-two fraction of 8 holds 5 bits
])
def test_narrow_lr_is_the_smallest_slot_that_holds_the_code(values, bits, lr):
    roms = RomImages(narrow=8)
    assert roms.narrow_lr(np.array(values).reshape(-1, 1, 1), bits) == lr


def test_no_narrowing_of_pot_codes_indices_or_when_off():
    w = np.ones((4, 2, 2), np.int64)
    assert RomImages().narrow_lr(w, 1) == 0
    assert RomImages(ibits=3, narrow=8).narrow_lr(w, 1) == 0
    assert RomImages(code=WeightFormat("pot", 4), narrow=4).narrow_lr(w, 4) == 0
    # add/subtract lanes: ternary codes (2 bits), binary layers at 1
    assert RomImages(code=WeightFormat("ternary", 2), narrow=2).narrow_lr(w, 1) == 1
    assert RomImages(code=WeightFormat("ternary", 2), narrow=2).narrow_lr(w, 2) == 0


@pytest.mark.parametrize("lr, lo, hi", [(1, -8, 8), (2, -2, 2), (3, -1, 2)])
def test_packed_words_decode_back(lr, lo, hi):
    rng = np.random.default_rng(lr)
    pe, simd, n = 2, 4, 11  # n not a multiple of the slots: the last ROM word is part empty
    words = rng.integers(lo, hi, (n, pe, simd))
    if lr == 3:
        words = np.where(words == 0, -1, words)
    roms = RomImages(narrow=8)
    roms.add_weights(np.full((3, pe, simd), 100, np.int64))  # a full-width layer first
    assert roms.narrow_lr(words, 8 >> lr) == lr
    base = roms.add_weights(words, lr=lr)
    assert base == 3 << lr  # virtual words of its first ROM word
    image = roms.images(pe, simd)["weights"]
    assert image.shape[0] == 3 + -(-n // (1 << lr))  # ROM bits: n * pe * simd * (8 >> lr), rounded up a word
    np.testing.assert_array_equal(_decode(image[3:], 8, lr, n), words)


def test_sfc_w1a1_rom_holds_each_layer_at_its_width():
    """The SFC-shaped w1a1 MLP (int4 first layer, binary hidden, int8 last) on fpga-tiny: the fit
    check's lower bound and the ROMs (the array's and the XNOR unit's) both count the binary
    layers at 1 bit, and they are within 5 % of the weights' own bits (the last layer's 10 rows
    padded to PE)."""
    from hwflow.config import QuantConfig, ScheduleConfig
    from hwflow.flow import load_graph, quantize_graph
    from hwflow.schedule import schedule
    from hwflow.schedule.fit import fit_check

    models = Path(__file__).resolve().parents[2] / "examples" / "models"
    graph = load_graph(models / "digits784_sfc.onnx")
    quant = QuantConfig(calibration="none", weights="binary", abits=1, layer_bits={"fc0": (4, 1)})
    report = fit_check(graph, "fpga-tiny", quant, None, ScheduleConfig())
    assert report.verdict != "too big", report.message()
    qg = quantize_graph(graph, None, quant).qgraph
    prog = schedule(qg, "fpga-tiny")
    own = sum(l.weight.size * (1 if l.wformat == "binary" else l.wbits) for l in qg.layers if l.weight is not None)
    # fc1 on the XNOR unit (its own ROM, a bit a weight; fc2's weights do not fit the block RAMs too)
    assert {l.name: l.kind for l in prog.layers}["fc1"] == "xnor"
    assert {l.name: 1 if l.kind == "xnor" else prog.stored_wbits >> l.wlr for l in prog.layers} == \
        {"fc0": 4, "fc1": 1, "fc2": 1, "fc3": 8}
    assert report.weight_bits[0] <= prog.weight_rom_bits <= 1.05 * own


def test_brevitas_w1a1_is_stored_as_signs_padded_rows_included():
    """Brevitas' BipolarQuant MLP (every layer binary: add/subtract lanes, 2-bit codes) on the
    array (without the XNOR unit, which takes its hidden and last layers by default,
    tests/schedule/test_xnor.py): every layer at 1 bit, the last one's 10 rows padded to PE with
    +1 (never written out); its exactness against the reference is the fixture's simulate test."""
    from hwflow.config import QuantConfig
    from hwflow.flow import load_graph, quantize_graph
    from hwflow.schedule import schedule

    root = Path(__file__).resolve().parents[1] / "fixtures" / "digits"
    qg = quantize_graph(load_graph(root / "brevitas_mlp_w1a1.onnx"), None, QuantConfig(calibration="none")).qgraph
    prog = schedule(qg, "fpga-small", xnor=False)
    assert prog.lane == "addsub" and prog.layers[-1].cout % prog.pe
    assert all(prog.stored_wbits >> l.wlr == 1 for l in prog.layers if l.kind == "mac")
    own = sum(l.weight.size for l in qg.layers if l.weight is not None)
    assert prog.weight_rom_bits <= 1.02 * own


def test_sfc_w1a1_int8_first_layer_on_fpga_tiny_names_the_fix(tmp_path, capsys):
    """784 x 256 int8 weights (1.6 Mbit) do not fit the UP5K's 1.15 Mbit: one line, exit 2,
    naming the flag that makes it fit (the first layer at 4 bits, its sign output kept)."""
    from hwflow.cli import main

    model = Path(__file__).resolve().parents[2] / "examples" / "models" / "digits784_sfc.onnx"
    assert main(["compile", str(model), "--target", "fpga-tiny", "--weights", "binary", "--abits", "1",
                 "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit" in err[0] and "--bits fc0=4/1 may fit" in err[0], err
    assert not (tmp_path / "b").exists()
