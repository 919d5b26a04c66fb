"""Read the port list of one module from Verilog text (the style amaranth.back.verilog emits)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BuildError

_MODULE = re.compile(r"^\s*module\s+\\?([A-Za-z_][\w$.]*)\s*\((.*?)\)\s*;", re.M | re.S)
_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+|signed\s+)*"
                   r"(?:\[\s*(\d+)\s*:\s*(\d+)\s*\]\s*)?\\?([A-Za-z_][\w$]*)\s*;", re.M)


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" | "output" | "inout"
    width: int


def verilog_ports(text: str, top: str) -> list[Port]:
    """Ports of module ``top`` in header order; BuildError when the module is not there."""
    for match in _MODULE.finditer(text):
        if match.group(1) != top:
            continue
        end = text.find("endmodule", match.end())
        body = text[match.end():end if end >= 0 else len(text)]
        decls = {}
        for d in _DECL.finditer(body):
            hi, lo = d.group(2), d.group(3)
            width = abs(int(hi) - int(lo)) + 1 if hi is not None else 1
            decls[d.group(4)] = Port(d.group(4), d.group(1), width)
        names = [n.strip().lstrip("\\") for n in match.group(2).split(",") if n.strip()]
        missing = [n for n in names if n not in decls]
        if missing:
            raise BuildError(f"cannot read the direction and width of port {missing[0]!r} of "
                             f"module {top!r}; hwflow reads ANSI-less Verilog as Amaranth emits it")
        return [decls[n] for n in names]
    raise BuildError(f"module {top!r} is not in the Verilog file; check manifest.json 'top'")
