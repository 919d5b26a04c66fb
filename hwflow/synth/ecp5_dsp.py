"""ECP5 multipliers take in the flip-flops around them: a pass on Yosys' JSON netlist.

Yosys maps a ``$mul`` to a MULT18X18D with every register bypassed
(``share/lattice/dsp_map_18x18.v``) and, unlike ``ice40_dsp`` or ``xilinx_dsp`` for those
families, has no pass that packs the fabric flip-flops around it into the block. The MAC
array and the requantizer register each DSP lane's operands and product
(``rtl/mac_array.py``, ``rtl/requantizer.py``), so after synthesis each multiplier sits
between TRELLIS_FFs and its path is FF, route, multiplier, route, FF: 9 to 11 ns, the limit
of several models on fpga-small and fpga-medium (issue 13). :func:`absorb_registers` moves
those flip-flops into the block's input registers (A, B) and output register (P). They are
the same registers (clock, enable, reset, zero at start), so every cycle is unchanged; the
routes leave the register-to-register path.

A multiplier is rewritten only when all of it can be:
- every A and B bit is a constant or the output of a TRELLIS_FF;
- every P bit in use feeds exactly one TRELLIS_FF's data input and nothing else;
- all those flip-flops share one clock, one clock enable and one reset, which is synchronous
  and takes priority over the enable (``SRMODE`` LSR_OVER_CE, as the block's RST0 with
  ``RESETMODE`` SYNC) or tied low; they reset and start at zero (``REGSET`` RESET); and the
  block uses no register yet.
The block has one enable per register group and no inverter on it: a flip-flop enabled by a
low signal (``CEMUX`` INV, the core's stall) gets its enable from a copy of the LUT that
drives the stall with its truth table inverted (one new LUT, no new logic level). Input
flip-flops that feed nothing else any more are removed; so are the output ones, whose nets
the block now drives. Blocks that do not qualify are left as they are.

The same for block RAM (a read's register into the DP16KD's output register, ``REGMODE``
OUTREG) was tried and left out: the examples' RAMs and ROMs are mapped as 36-bit pseudo dual
ports, whose output register's enable and mode for the DOA half are not documented where
this could check them.

``hwflow synth`` runs it between Yosys and nextpnr, and ``hwflow simulate --netlist``
simulates the rewritten netlist (``cells/ecp5_blocks.v`` models the registered block).
"""

from __future__ import annotations

import json
from pathlib import Path

from .._files import write_json

__all__ = ["absorb_registers", "absorb_registers_file"]

_FF, _DSP, _LUT = "TRELLIS_FF", "MULT18X18D", "LUT4"
_INVERTER = "0101010101010101"  # LUT4 INIT, Z = ~A (bit i of INIT is Z for inputs DCBA = i)


def _ff_key(cell: dict):
    """What two flip-flops must share to be one block register group: clock, enable, reset;
    or ``None`` for a flip-flop that cannot go into a block."""
    p, c = cell["parameters"], cell["connections"]
    lsr = c.get("LSR", ["0"])[0]
    if p.get("REGSET", "RESET") != "RESET" or p.get("CLKMUX", "CLK") != "CLK" or p.get("LSRMUX", "LSR") != "LSR":
        return None
    if lsr != "0" and p.get("SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE":
        return None  # an asynchronous reset: the blocks' are synchronous here
    cemux = p.get("CEMUX", "1")
    if cemux not in ("1", "CE", "INV"):
        return None
    ce = "1" if cemux == "1" else c["CE"][0]
    return c["CLK"][0], cemux, ce, lsr, p.get("GSR", "DISABLED")


class _Netlist:
    """The top module's cells with their nets' drivers and readers, kept up to date."""

    def __init__(self, top: dict):
        self.cells = top["cells"]
        self.driver: dict[int, tuple[str, str]] = {}
        self.users: dict[int, list[tuple[str, str]]] = {}
        for name, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                out = cell["port_directions"].get(port) == "output"
                for b in bits:
                    if isinstance(b, int):
                        if out:
                            self.driver[b] = (name, port)
                        else:
                            self.users.setdefault(b, []).append((name, port))
        self.ports = {b for p in top.get("ports", {}).values() for b in p["bits"] if isinstance(b, int)}
        self.next_bit = 1 + max([b for n in top.get("netnames", {}).values() for b in n["bits"]
                                 if isinstance(b, int)] + list(self.driver) + list(self.users) + [1])
        self.enables: dict[int, int] = {}  # an active-low enable net -> its active-high copy

    def used(self, bit) -> bool:
        return isinstance(bit, int) and (bool(self.users.get(bit)) or bit in self.ports)

    def ff_driving(self, bit) -> str | None:
        d = self.driver.get(bit)
        return d[0] if d is not None and d[1] == "Q" and self.cells[d[0]]["type"] == _FF else None

    def only_ff_reading(self, bit) -> str | None:
        u = self.users.get(bit, [])
        if bit in self.ports or len(u) != 1 or u[0][1] != "DI" or self.cells[u[0][0]]["type"] != _FF:
            return None
        return u[0][0]

    def enable(self, cemux: str, ce, name: str):
        """The active-high enable net of flip-flops with ``CEMUX`` ``cemux`` on ``ce``."""
        if cemux != "INV":
            return ce
        if ce not in self.enables:
            new = self.enables[ce] = self.next_bit
            self.next_bit += 1
            d = self.driver.get(ce)
            src = self.cells[d[0]] if d is not None else None
            if src is not None and src["type"] == _LUT and d[1] == "Z":
                conn = {k: list(v) for k, v in src["connections"].items()}
                params = {"INIT": "".join("1" if c == "0" else "0" for c in src["parameters"]["INIT"])}
            else:
                conn, params = {"A": [ce], "B": ["0"], "C": ["0"], "D": ["0"]}, {"INIT": _INVERTER}
            conn["Z"] = [new]
            lut = f"{name}$ce"
            self.cells[lut] = {
                "hide_name": 1, "type": _LUT, "parameters": params, "attributes": {},
                "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input", "Z": "output"},
                "connections": conn}
            self.driver[new] = (lut, "Z")
            for p in "ABCD":  # the copy reads what the stall's LUT reads
                if isinstance(conn[p][0], int):
                    self.users.setdefault(conn[p][0], []).append((lut, p))
        return self.enables[ce]

    def connect(self, cell: str, port: str, bit) -> None:
        """Input ``port`` of ``cell`` reads ``bit`` (a net or a constant)."""
        c = self.cells[cell]
        old = c["connections"].get(port, ["0"])[0]
        if isinstance(old, int):
            self.users[old].remove((cell, port))
        c["connections"][port] = [bit]
        c["port_directions"][port] = "input"
        if isinstance(bit, int):
            self.users.setdefault(bit, []).append((cell, port))

    def take_output(self, cell: str, port: str, ff: str) -> None:
        """``cell``'s ``port`` drives what flip-flop ``ff`` (which read it) drove; ``ff`` goes."""
        conn = self.cells[cell]["connections"]
        self.users.pop(conn[port][0], None)
        q = self.cells[ff]["connections"]["Q"][0]
        conn[port] = [q]
        self.driver[q] = (cell, port)
        self.drop(ff)

    def drop(self, name: str) -> None:
        cell = self.cells.pop(name)
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                for b in bits:
                    if isinstance(b, int) and (name, port) in self.users.get(b, []):
                        self.users[b].remove((name, port))

    def drop_if_unread(self, ff: str) -> None:
        if ff in self.cells and not self.used(self.cells[ff]["connections"]["Q"][0]):
            self.drop(ff)


def _outputs(net: _Netlist, cell: dict, pins) -> dict[str, str] | None:
    """``{pin: flip-flop}`` for the ``pins`` in use, or ``None`` if one is read otherwise."""
    out = {}
    for p in pins:
        b = cell["connections"].get(p, ["0"])[0]
        if net.used(b):
            ff = net.only_ff_reading(b)
            if ff is None:
                return None
            out[p] = ff
    return out


def _multiplier(net: _Netlist, name: str) -> bool:
    dsp = net.cells[name]
    conn, params = dsp["connections"], dsp["parameters"]
    if any(params.get(f"REG_{r}_CLK", "NONE") != "NONE" for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")):
        return False
    ins = {}
    for p in conn:
        if p[0] in "AB" and p[1:].isdigit() and isinstance(conn[p][0], int):
            ins[p] = net.ff_driving(conn[p][0])
            if ins[p] is None:
                return False
    outs = _outputs(net, dsp, [p for p in conn if p[0] == "P" and p[1:].isdigit()])
    if not outs:
        return False
    keys = {_ff_key(net.cells[ff]) for ff in (*ins.values(), *outs.values())}
    if len(keys) != 1 or None in keys:
        return False
    clk, cemux, ce, lsr, gsr = keys.pop()
    ce = net.enable(cemux, ce, name)
    for p, ff in ins.items():  # the block's pin reads what the flip-flop read
        net.connect(name, p, net.cells[ff]["connections"]["DI"][0])
    for p, ff in outs.items():
        net.take_output(name, p, ff)
    for ff in set(ins.values()):
        net.drop_if_unread(ff)
    for r in ("INPUTA", "INPUTB", "OUTPUT"):
        params.update({f"REG_{r}_CLK": "CLK0", f"REG_{r}_CE": "CE0", f"REG_{r}_RST": "RST0"})
    params.update(GSR=gsr, RESETMODE="SYNC")
    for p, v in (("CLK0", clk), ("CE0", ce), ("RST0", lsr)):
        net.connect(name, p, v)
    return True


def absorb_registers(netlist: dict) -> int:
    """Rewrite ``netlist`` (Yosys' JSON, modified in place); return the multipliers rewritten."""
    top = next((m for m in netlist["modules"].values() if m.get("attributes", {}).get("top")), None)
    if top is None:
        return 0
    net = _Netlist(top)
    return sum(_multiplier(net, n) for n in [n for n, c in net.cells.items() if c["type"] == _DSP])


def absorb_registers_file(path: str | Path) -> int:
    """:func:`absorb_registers` on a Yosys JSON file, rewritten in place (atomically)."""
    path = Path(path)
    netlist = json.loads(path.read_text(encoding="utf-8"))
    done = absorb_registers(netlist)
    if done:
        write_json(path, netlist, indent=None)
    return done
