"""ECP5 multipliers take in the flip-flops around them: a pass on Yosys' JSON netlist.

Yosys maps a ``$mul`` to a MULT18X18D with every register bypassed
(``share/lattice/dsp_map_18x18.v``) and, unlike ``ice40_dsp`` or ``xilinx_dsp`` for those
families, has no pass that packs the fabric flip-flops around it into the block. The MAC
array registers each DSP lane's operands and its product (``rtl/mac_array.py``), so after
synthesis each multiplier sits between TRELLIS_FFs and its path is FF, route, multiplier,
route, FF: 9 to 11 ns, the limit of several models on fpga-small and fpga-medium (issue 13).
:func:`absorb_registers` moves those flip-flops into the block's input registers (A and B)
and its output register (P). They are the same registers (clock, enable, reset, zero at
start), so every cycle is unchanged; the routes leave the register-to-register path.

A multiplier is rewritten only when all of it can be:
- every A and B bit is a constant or the output of a TRELLIS_FF;
- every P bit in use feeds exactly one TRELLIS_FF's data input and nothing else;
- all those flip-flops share one clock, one clock enable and one reset, which is synchronous
  and takes priority over the enable (``SRMODE`` LSR_OVER_CE, as the block's RST0 with
  ``RESETMODE`` SYNC) or tied low; they reset and start at zero (``REGSET`` RESET); and the
  block uses no register yet.
The block has one enable per register group and no inverter on it: a flip-flop enabled
by a low signal (``CEMUX`` INV, the core's stall) gets its enable from a copy of the LUT
that drives the stall with its truth table inverted (one new LUT, no new logic level).
Input flip-flops that feed nothing else any more are removed; so are the output ones,
whose nets the block now drives. Blocks that do not qualify are left as they are.

``hwflow synth`` runs it between Yosys and nextpnr, and ``hwflow simulate --netlist``
simulates the rewritten netlist (``cells/ecp5_blocks.v`` models the registered block).
"""

from __future__ import annotations

import json
from pathlib import Path

from .._files import write_json

__all__ = ["absorb_registers", "absorb_registers_file"]

_FF, _DSP, _LUT = "TRELLIS_FF", "MULT18X18D", "LUT4"
_REGS = ("INPUTA", "INPUTB", "OUTPUT")
_INVERTER = "0101010101010101"  # LUT4 INIT, Z = ~A (bit i of INIT is Z for inputs DCBA = i)


def _ff_key(cell: dict):
    """What two flip-flops must share to be one block register group: clock, enable, reset;
    or ``None`` for a flip-flop that cannot go into the block."""
    p, c = cell["parameters"], cell["connections"]
    lsr = c.get("LSR", ["0"])[0]
    if p.get("REGSET", "RESET") != "RESET" or p.get("CLKMUX", "CLK") != "CLK" or p.get("LSRMUX", "LSR") != "LSR":
        return None
    if lsr != "0" and p.get("SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE":
        return None  # an asynchronous reset: the block's is synchronous (RESETMODE SYNC)
    cemux = p.get("CEMUX", "1")
    if cemux not in ("1", "CE", "INV"):
        return None
    ce = "1" if cemux == "1" else c["CE"][0]
    return c["CLK"][0], cemux, ce, lsr, p.get("GSR", "DISABLED")


def absorb_registers(netlist: dict) -> int:
    """Rewrite ``netlist`` (Yosys' JSON, modified in place); return the multipliers rewritten."""
    top = next((m for m in netlist["modules"].values() if m.get("attributes", {}).get("top")), None)
    if top is None:
        return 0
    cells = top["cells"]
    driver, users = {}, {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            out = cell["port_directions"].get(port) == "output"
            for b in bits:
                if isinstance(b, int):
                    if out:
                        driver[b] = (name, port)
                    else:
                        users.setdefault(b, []).append((name, port))
    ports = {b for p in top.get("ports", {}).values() for b in p["bits"] if isinstance(b, int)}
    next_bit = 1 + max([b for n in top.get("netnames", {}).values() for b in n["bits"] if isinstance(b, int)]
                       + list(driver) + list(users) + [1])
    enables: dict[int, int] = {}  # an active-low enable net -> its active-high copy
    done = 0
    for name in [n for n, c in cells.items() if c["type"] == _DSP]:
        dsp = cells[name]
        conn = dsp["connections"]
        if any(dsp["parameters"].get(f"REG_{r}_CLK", "NONE") != "NONE" for r in (*_REGS, "INPUTC", "PIPELINE")):
            continue
        ins = [p for p in conn if p[0] in "AB" and p[1:].isdigit()]
        outs = [p for p in conn if p[0] == "P" and p[1:].isdigit() and isinstance(conn[p][0], int)
                and (users.get(conn[p][0]) or conn[p][0] in ports)]
        in_ffs, out_ffs, keys = {}, {}, set()
        ok = bool(outs)
        for p in ins:
            b = conn[p][0]
            if not isinstance(b, int):
                continue
            d = driver.get(b)
            if d is None or cells[d[0]]["type"] != _FF or d[1] != "Q":
                ok = False
                break
            in_ffs[p] = d[0]
            keys.add(_ff_key(cells[d[0]]))
        for p in outs if ok else ():
            b = conn[p][0]
            u = users.get(b, [])
            if b in ports or len(u) != 1 or cells[u[0][0]]["type"] != _FF or u[0][1] != "DI":
                ok = False
                break
            out_ffs[p] = u[0][0]
            keys.add(_ff_key(cells[u[0][0]]))
        if not ok or len(keys) != 1 or None in keys:
            continue
        clk, cemux, ce, lsr, gsr = keys.pop()
        if cemux == "INV":
            if ce not in enables:
                enables[ce], next_bit = next_bit, next_bit + 1
                _add_inverted(cells, driver, ce, enables[ce], f"{name}$ce")
            ce = enables[ce]
        # Inputs: the block's pin reads what the flip-flop read.
        for p, ff in in_ffs.items():
            b = conn[p][0]
            users[b].remove((name, p))
            conn[p] = list(cells[ff]["connections"]["DI"])
            users.setdefault(conn[p][0], []).append((name, p))
        # Outputs: the block drives the flip-flop's net; the flip-flop goes.
        for p, ff in out_ffs.items():
            users.pop(conn[p][0], None)
            q = cells[ff]["connections"]["Q"][0]
            conn[p] = [q]
            driver[q] = (name, p)
            _drop(cells, users, ff)
        for ff in set(in_ffs.values()):
            if ff in cells and not users.get(cells[ff]["connections"]["Q"][0]) \
                    and cells[ff]["connections"]["Q"][0] not in ports:
                _drop(cells, users, ff)
        for r in _REGS:
            dsp["parameters"].update({f"REG_{r}_CLK": "CLK0", f"REG_{r}_CE": "CE0", f"REG_{r}_RST": "RST0"})
        dsp["parameters"].update(GSR=gsr, RESETMODE="SYNC")
        for p, v in (("CLK0", clk), ("CE0", ce), ("RST0", lsr)):
            conn[p] = [v]
            dsp["port_directions"][p] = "input"
        done += 1
    return done


def _add_inverted(cells: dict, driver: dict, net: int, new: int, name: str) -> None:
    """Drive ``new`` with ``~net``: a copy of ``net``'s LUT4 with its truth table inverted,
    or an inverter LUT when another cell drives it."""
    d = driver.get(net)
    src = cells[d[0]] if d is not None else None
    if src is not None and src["type"] == _LUT and d[1] == "Z":
        init = "".join("1" if c == "0" else "0" for c in src["parameters"]["INIT"])
        conn = {k: list(v) for k, v in src["connections"].items()}
        params = {"INIT": init}
    else:
        conn = {"A": [net], "B": ["0"], "C": ["0"], "D": ["0"]}
        params = {"INIT": _INVERTER}
    conn["Z"] = [new]
    cells[name] = {"hide_name": 1, "type": _LUT, "parameters": params, "attributes": {},
                   "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"},
                   "connections": conn}
    driver[new] = (name, "Z")


def _drop(cells: dict, users: dict, name: str) -> None:
    for port, bits in cells[name]["connections"].items():
        if cells[name]["port_directions"].get(port) == "input":
            for b in bits:
                if isinstance(b, int) and (name, port) in users.get(b, []):
                    users[b].remove((name, port))
    del cells[name]


def absorb_registers_file(path: str | Path) -> int:
    """:func:`absorb_registers` on a Yosys JSON file, rewritten in place (atomically)."""
    path = Path(path)
    netlist = json.loads(path.read_text(encoding="utf-8"))
    n = absorb_registers(netlist)
    if n:
        write_json(path, netlist, indent=None)
    return n
