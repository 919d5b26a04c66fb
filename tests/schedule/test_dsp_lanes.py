"""MAC lanes beyond the DSP budget multiply in LUTs: the scheduler's choice of
``dsp_mults``, its estimate, and the fit errors that follow from it."""

import dataclasses

import pytest

from hwflow.errors import FitError
from _support.graphs import GraphBuilder
from hwflow.schedule import schedule
from hwflow.schedule.schedule import ECP5_DSP_SHARE
from hwflow.schedule.estimate import block_features, dsp_blocks, lut_mult_cost
from hwflow.targets import load_target


def _mlp(seed=0, scheme="symmetric", wbits=8):
    b = GraphBuilder(seed=seed, scheme=scheme, wbits=wbits)
    x = b.input_tensor((1, 64))
    b.gemm(b.gemm(x, 32, relu=True), 10)
    return b.build()


def test_all_lanes_on_dsps_when_they_fit_or_unlimited():
    prog = schedule(_mlp(), "fpga-small", pe=4, simd=4)
    # ECP5: at most half the device's DSPs (far DSP columns cost the clock), the rest in LUTs.
    assert prog.estimate["dsps"] == 28 // 2 and 0 < prog.dsp_mults < 16
    prog = schedule(_mlp(), "fpga-small", pe=2, simd=4)
    assert prog.dsp_mults == 8 and prog.estimate["dsps"] <= 28 // 2
    prog = schedule(_mlp(), "generic", pe=8, simd=8)
    assert prog.dsp_mults == 64 and prog.to_json()["dsp_mults"] == 64
    assert prog.estimate["dsps"] >= 64


def test_lanes_beyond_the_dsps_go_to_luts():
    small = load_target("fpga-small")
    full = schedule(_mlp(), "generic", pe=8, simd=8)
    prog = schedule(_mlp(), small, pe=8, simd=8)
    other = full.estimate["dsps"] - 64  # requantizer and controller multipliers
    assert other >= 1
    # ECP5, the lanes overflow the DSPs: half the device's DSPs (timing), the rest of the
    # lanes in LUTs.
    assert ECP5_DSP_SHARE == 0.5
    assert prog.dsp_mults == small.dsps // 2 - other
    assert prog.estimate["dsps"] == small.dsps // 2
    assert prog.to_json()["dsp_mults"] == prog.dsp_mults
    lane_luts, _ = lut_mult_cost(8, 8, "ecp5")
    mac = block_features(prog, "ecp5")["mac"]["lut"]
    assert mac["lutmul"] == (64 - prog.dsp_mults) * lane_luts
    assert block_features(full, "ecp5")["mac"]["lut"]["lutmul"] == 0
    assert prog.estimate["luts"] > full.estimate["luts"]
    # The cycle count does not depend on where the products are computed.
    assert prog.cycles == full.cycles
    # Other families use every DSP.
    tiny = dataclasses.replace(load_target("fpga-tiny").with_memory(bram=None), luts=None)
    prog = schedule(_mlp(), tiny, pe=4, simd=4)
    assert prog.estimate["dsps"] == tiny.dsps and 0 < prog.dsp_mults < 16


def test_lut_mult_cost_matches_the_yosys_calibration():
    # Per-lane measurements (2 x 4 arrays, all-LUT minus all-DSP; see the docstring).
    assert lut_mult_cost(8, 8, "ecp5") == (134, 32)     # measured 138, 28
    assert lut_mult_cost(4, 8, "ecp5") == (62, 16)      # measured 62, 12
    assert lut_mult_cost(8, 8, "ice40") == (146, 72)    # measured 146, 71
    assert lut_mult_cost(4, 8, "ice40") == (72, 44)     # measured 70, 43


def test_tight_ice40_rations_lanes_but_not_lut_sized_products():
    tiny = dataclasses.replace(load_target("fpga-tiny"), dsps=2)
    prog = schedule(_mlp(scheme="pow2", wbits=4), tiny, pe=2, simd=2)
    assert dsp_blocks(4, 8, "ice40") == 1
    assert prog.dsp_mults < 4 and prog.estimate["dsps"] <= 2
    # A 4 x 4 product is under 11 bits: Yosys never puts it on a SB_MAC16, so every lane
    # keeps its ``*`` (Yosys builds it from LUTs) and no DSP is counted for it.
    b = GraphBuilder(seed=1, scheme="pow2", wbits=4, abits=4)
    b.gemm(b.input_tensor((1, 16)), 8)
    prog = schedule(b.build(), tiny, pe=2, simd=2)
    assert dsp_blocks(4, 4, "ice40") == 0
    assert prog.dsp_mults == 4


def test_too_many_luts_is_a_fit_error_naming_the_lanes():
    with pytest.raises(FitError, match=r"needs about \d+ LUTs, target fpga-tiny has 5280; \d+ of the PE 16 x "
                                       r"SIMD 8 = 128 MAC multipliers are in LUTs \(about \d+ LUTs each, \d+ on "
                                       r"DSPs\): PE x SIMD <= \d+ fits; try .*--target fpga-medium$"):
        schedule(_mlp(), "fpga-tiny", pe=16, simd=8)


def test_fit_hint_on_the_largest_part_does_not_suggest_it_again():
    with pytest.raises(FitError) as e:
        schedule(_mlp(), "fpga-medium", pe=64, simd=64)
    assert "--target fpga-medium" not in str(e.value)
    assert "smaller --pe/--simd, or --target generic (no limits)" in str(e.value)


def test_dsps_short_even_without_mac_lanes():
    one = dataclasses.replace(load_target("fpga-small"), dsps=1)
    with pytest.raises(FitError, match=r"needs \d+ DSPs \(\d+ for requantizer and control, 0 for MAC lanes\), "
                                       r"target fpga-small has 1; try --scheme pow2 \(no requantizer multiplier\) "
                                       r"or --target fpga-medium"):
        schedule(_mlp(), one, pe=4, simd=4)
