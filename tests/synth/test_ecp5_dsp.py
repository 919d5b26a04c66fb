"""hwflow.synth.ecp5_dsp: the fabric flip-flops around an ECP5 multiplier move into it.

Hand-built Yosys JSON netlists, one multiplier each; the netlist simulation of a whole
BUILD with the rewritten blocks is in tests/cli/test_simulate_verify.py."""

import copy

import pytest

from hwflow.synth.ecp5_dsp import absorb_registers

CLK, STALL = 2, 3


def _ff(di, q, ce=STALL, cemux="INV", lsr="0", srmode="LSR_OVER_CE"):
    return {"type": "TRELLIS_FF", "parameters": {"CEMUX": cemux, "CLKMUX": "CLK", "GSR": "DISABLED",
                                                 "LSRMUX": "LSR", "REGSET": "RESET", "SRMODE": srmode},
            "port_directions": {"CE": "input", "CLK": "input", "DI": "input", "LSR": "input", "Q": "output"},
            "connections": {"CE": [ce], "CLK": [CLK], "DI": [di], "LSR": [lsr], "Q": [q]}}


def _lut(z, init="0000000011110000", **ins):
    conn = {p: [ins.get(p, "0")] for p in "ABCD"}
    conn["Z"] = [z]
    return {"type": "LUT4", "parameters": {"INIT": init},
            "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"},
            "connections": conn}


def _netlist():
    """a (bit 10 -> FF -> 11) and b (12 -> FF -> 13) into a multiplier; its P0/P1 (20, 21)
    into FFs (30, 31) read by a LUT driving the output port (40). The stall (3) is a LUT."""
    dsp = {"type": "MULT18X18D", "parameters": {}, "port_directions": {}, "connections": {}}
    for i in range(18):
        for side, bit in (("A", 11), ("B", 13)):
            dsp["connections"][f"{side}{i}"] = [bit] if i == 0 else ["0"]
            dsp["port_directions"][f"{side}{i}"] = "input"
    for i in range(36):
        dsp["connections"][f"P{i}"] = [20 + i if i < 2 else 100 + i]
        dsp["port_directions"][f"P{i}"] = "output"
    cells = {"stall": _lut(STALL, C=4, D=5), "fa": _ff(10, 11), "fb": _ff(12, 13), "mul": dsp,
             "fp0": _ff(20, 30), "fp1": _ff(21, 31), "use": _lut(40, A=30, B=31)}
    return {"modules": {"top": {"attributes": {"top": "1"}, "ports": {"y": {"direction": "output", "bits": [40]}},
                                "cells": cells, "netnames": {}}}}


def _cells(net):
    return net["modules"]["top"]["cells"]


def test_operand_and_product_flip_flops_move_into_the_block():
    net = _netlist()
    assert absorb_registers(net) == 1
    cells = _cells(net)
    dsp = cells["mul"]
    for r in ("INPUTA", "INPUTB", "OUTPUT"):
        assert (dsp["parameters"][f"REG_{r}_CLK"], dsp["parameters"][f"REG_{r}_CE"],
                dsp["parameters"][f"REG_{r}_RST"]) == ("CLK0", "CE0", "RST0")
    c = dsp["connections"]
    assert (c["A0"], c["B0"], c["A1"]) == ([10], [12], ["0"])  # the flip-flops' inputs; constants stay
    assert (c["P0"], c["P1"]) == ([30], [31])  # the block drives what the product flip-flops drove
    assert (c["CLK0"], c["RST0"]) == ([CLK], ["0"])
    assert not {"fa", "fb", "fp0", "fp1"} & set(cells)
    # The stall enables the flip-flops when low: the block's enable is a copy of the stall's
    # LUT with its truth table inverted, on the same inputs.
    ce = [n for n, cell in cells.items() if cell["type"] == "LUT4" and cell["connections"]["Z"] == c["CE0"]]
    assert len(ce) == 1 and ce[0] != "stall"
    lut = cells[ce[0]]
    assert lut["parameters"]["INIT"] == "1111111100001111"
    assert (lut["connections"]["C"], lut["connections"]["D"]) == ([4], [5])


def test_an_enable_from_a_flip_flop_gets_an_inverter():
    net = _netlist()
    cells = _cells(net)
    cells["stall"] = _ff(6, STALL, ce="1", cemux="1")
    assert absorb_registers(net) == 1
    ce = cells["mul"]["connections"]["CE0"]
    inv = [cell for cell in cells.values() if cell["type"] == "LUT4" and cell["connections"]["Z"] == ce]
    assert inv[0]["parameters"]["INIT"] == "0101010101010101" and inv[0]["connections"]["A"] == [STALL]


def test_a_synchronous_reset_becomes_the_blocks():
    net = _netlist()
    cells = _cells(net)
    for name in ("fa", "fb", "fp0", "fp1"):
        cells[name]["connections"]["LSR"] = [7]
    assert absorb_registers(net) == 1
    assert cells["mul"]["connections"]["RST0"] == [7]


def test_an_operand_flip_flop_read_elsewhere_stays():
    net = _netlist()
    _cells(net)["other"] = _lut(41, A=11)
    assert absorb_registers(net) == 1
    assert "fa" in _cells(net) and "fb" not in _cells(net)


@pytest.mark.parametrize("change", ["product read twice", "product to a LUT", "one flip-flop with a reset",
                                    "asynchronous reset",
                                    "another enable", "operand from a LUT", "block already registered"])
def test_blocks_that_do_not_qualify_are_left_alone(change):
    net = _netlist()
    cells = _cells(net)
    if change == "product read twice":
        cells["other"] = _lut(41, A=20)
    elif change == "product to a LUT":
        cells["fp1"] = _lut(31, A=21)
    elif change == "one flip-flop with a reset":
        cells["fb"] = _ff(12, 13, lsr=7)
    elif change == "asynchronous reset":
        for name, (di, q) in {"fa": (10, 11), "fb": (12, 13), "fp0": (20, 30), "fp1": (21, 31)}.items():
            cells[name] = _ff(di, q, lsr=7, srmode="ASYNC")
    elif change == "another enable":
        cells["fp0"] = _ff(20, 30, ce=8, cemux="CE")
    elif change == "operand from a LUT":
        cells["fa"] = _lut(11, A=10)
    else:
        cells["mul"]["parameters"]["REG_PIPELINE_CLK"] = "CLK0"
    before = copy.deepcopy(net)
    assert absorb_registers(net) == 0
    assert net == before
