"""The per-block LUT/FF estimate: features follow the RTL's widths, the total is the packed
sum of the blocks, and (slow) it lands within 20 % of Yosys on a real design."""

import importlib
import math
from pathlib import Path

import pytest

from _support.graphs import GraphBuilder, digits_cnn
from hwflow.schedule import schedule

est = importlib.import_module("hwflow.schedule.estimate")

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = {"ctrl", "mac", "ser", "rq", "pool", "crom", "lut", "act", "top"}


def _cnn(target="fpga-small", pe=2, simd=2, **kw):
    b = GraphBuilder(seed=0, **kw)
    digits_cnn(b)
    return schedule(b.build(), target, pe=pe, simd=simd)


def test_every_block_has_features_and_every_feature_a_coefficient():
    for target, family in (("fpga-small", "ecp5"), ("fpga-tiny", "ice40"), ("generic", "ecp5")):
        prog = _cnn(target)
        feats = est.block_features(prog, family)
        assert set(feats) == BLOCKS
        coef = est._COEF[family]
        for block, res in feats.items():
            for r in ("lut", "ff"):
                missing = set(res[r]) - set(coef[block][r])
                assert not missing, (family, block, r, missing)
        assert set(coef["pack"]) <= {"lut", "lut_ff", "ff"} and {"lut", "ff"} <= set(coef["pack"])


def test_mac_features_are_the_array_structure():
    for pe, simd in ((2, 2), (4, 4), (2, 8)):
        prog = _cnn("generic", pe, simd)
        f = est.block_features(prog, "ecp5")["mac"]
        prod = prog.wbits + prog.abits
        assert f["ff"]["products"] == pe * simd * prod
        # input registers, and the DSP lanes' second ones (rtl/mac_array.py a_dsp, w_dsp)
        assert f["ff"]["inputs"] == 2 * simd * prog.abits + (pe * simd + prog.dsp_mults) * prog.wbits
        # adder tree: simd - 1 adders per PE, widening one bit a level, plus the accumulators
        levels = math.ceil(math.log2(simd))
        tree = sum(pe * (simd >> (i + 1)) * (prod + i + 1) for i in range(levels))
        assert f["lut"]["adders"] == tree + pe * prog.acc_bits
        assert f["lut"]["lutmul"] == 0                      # 8 x 8 goes to a DSP on ECP5


def test_block_estimates_scale_with_the_array_and_pack_to_the_total():
    small, big = _cnn("fpga-small", 2, 2), _cnn("fpga-small", 4, 4)
    bs, bb = est.block_estimates(small, "ecp5"), est.block_estimates(big, "ecp5")
    assert bb["mac"]["ff"] > 3 * bs["mac"]["ff"]             # ~ pe * simd
    assert bb["ser"]["ff"] > bs["ser"]["ff"]                 # ~ max(pe, simd) lanes
    assert bb["ctrl"]["ff"] == pytest.approx(bs["ctrl"]["ff"], rel=0.2)  # ~ independent of the array
    pack = est._COEF["ecp5"]["pack"]
    for prog, blocks in ((small, bs), (big, bb)):
        lut, ff = (sum(b[r] for b in blocks.values()) for r in ("lut", "ff"))
        assert prog.estimate["luts"] == round(pack["lut"] * lut + pack.get("lut_ff", 0) * ff)
        assert prog.estimate["ffs"] == round(pack["ff"] * ff)


def test_unused_pool_unit_counts_nothing():
    prog = _cnn("fpga-small")
    assert {l.kind for l in prog.layers} == {"mac"}           # MaxPool fused into the conv
    assert est.block_estimates(prog, "ecp5")["pool"] == {"lut": 0.0, "ff": 0.0}
    assert est.block_features(prog, "ecp5")["pool"] == {"lut": {"lanes": 0}, "ff": {"regs": 0}}


def test_rom_features_count_only_non_constant_columns():
    assert est._varying_columns([5, 5, 5], 8) == 0
    assert est._varying_columns([0, 1, 2, 3], 8) == 2
    assert est._varying_columns([-1, 0], 4) == 4            # two's complement in 4 bits
    assert est._rom_logic(34, 10) == 30                      # 3 LUT4s (16 entries each) per bit


@pytest.mark.slow
def test_estimate_within_20_percent_of_yosys(tmp_path):
    """The block formulas (before place-and-route packing) against flattened Yosys."""
    from hwflow.flow import compile_model
    from hwflow.synth import synthesize
    from hwflow.targets import load_target

    models = ROOT / "examples" / "models"
    build = tmp_path / "b"
    compile_model(models / "digits_mlp.onnx", "fpga-small", build,
                  calib_path=models / "digits_mlp_calib.npz", pe=2, simd=2)
    rep = synthesize(build, pnr=False)                      # flattened Yosys, before packing
    from hwflow.build import load_build

    prog = load_build(build, simulate=False).program()
    blocks = est.block_estimates(prog, load_target("fpga-small").family)
    for res in ("lut", "ff"):
        got, want = sum(b[res] for b in blocks.values()), rep["resources"][res]["used"]
        assert abs(got - want) <= 0.2 * want, (res, got, want)


def test_coefficients_are_the_data_file_that_fit_writes():
    """The fitted numbers are package data; ``calibrate_estimate.py fit --write`` rewrites that file."""
    import importlib.util
    import json
    from importlib import resources

    spec = importlib.util.spec_from_file_location("hwflow_bench_calibrate", ROOT / "bench" / "calibrate_estimate.py")
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    text = resources.files("hwflow.schedule").joinpath(est.COEF_FILE).read_text(encoding="utf-8")
    assert json.loads(text) == est._COEF
    assert cal._COEF_FILE.read_text(encoding="utf-8") == text
    assert cal.coef_text(json.loads(text)) == text


def _rtl_flip_flops(prog) -> dict:
    """Flip-flop bits of each RTL block (``$dff`` cells of the elaborated accelerator)."""
    import collections
    import re

    from amaranth.back import rtlil

    from hwflow.rtl.accelerator import Accelerator

    out = collections.Counter()
    for mod in re.finditer(r"\nmodule \\(\S+)\n(.*?)\nend\n", rtlil.convert(Accelerator(prog)), re.S):
        for cell in re.finditer(r"cell \$\w*dff\w* \S+\n((?:\s+parameter .*\n)*)", mod.group(2)):
            name = re.sub(r"(rq|lut)\d+$", r"\1", mod.group(1).split(".")[-1])  # one per back-end lane
            out[name] += int(re.search(r"parameter \\WIDTH (\d+)", cell.group(1)).group(1))
    return out


def test_register_features_are_the_rtls_flip_flops():
    """The requantizer's and LUT stage's register counts are exactly the RTL's (same widths)."""
    from _support.graphs import random_graph

    progs = (_cnn("generic", 2, 2), _cnn("generic", 2, 4, scheme="pow2"),  # pow2: no multiplier
             schedule(random_graph(3)[1], "generic", pe=2, simd=2),          # add, max, mac steps
             schedule(random_graph(3)[1], "generic", pe=4, simd=4))
    assert {p.rq_lanes for p in progs} > {1}                                  # several back-end lanes
    for prog in progs:
        feats = est.block_features(prog, "ecp5")
        ffs = _rtl_flip_flops(prog)
        assert feats["rq"]["ff"]["regs"] == ffs["rq"]
        assert feats["lut"]["ff"]["regs"] == ffs["lut"]
