"""Read the port list of one module from Verilog text (non-ANSI as Amaranth emits it, or ANSI)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BuildError

_MODULE = re.compile(r"\bmodule\s+\\?([A-Za-z_][\w$.]*)\s*(?:#\s*\(.*?\)\s*)?\((.*?)\)\s*;",
                     re.S)
_DIR = re.compile(r"^\s*(input|output|inout)\b(.*)$", re.S)
_RANGE = re.compile(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]")
_KINDS = re.compile(r"\b(wire|reg|logic|signed|unsigned)\b")


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" | "output" | "inout"
    width: int


def _declare(items: list[str], ports: dict[str, Port]) -> None:
    """Read ``input [7:0] a, b`` style items (one declaration split at commas)."""
    direction, width = None, 1
    for item in items:
        m = _DIR.match(item)
        if m:
            direction, rest = m.group(1), _KINDS.sub(" ", m.group(2))
            r = _RANGE.search(rest)
            if r is None and "[" in rest:
                raise BuildError(f"cannot read the width of port {item.strip()!r}: hwflow "
                                 "reads numeric ranges only ([7:0])")
            width = abs(int(r.group(1)) - int(r.group(2))) + 1 if r else 1
            item = _RANGE.sub(" ", rest)
        name = item.strip().lstrip("\\").split("=")[0].strip()
        if direction and re.fullmatch(r"[A-Za-z_][\w$]*", name):
            ports[name] = Port(name, direction, width)


def verilog_ports(text: str, top: str) -> list[Port]:
    """Ports of module ``top`` in header order; BuildError when they cannot be read."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*|\(\*.*?\*\)", " ", text, flags=re.S)
    for match in _MODULE.finditer(text):
        if match.group(1) != top:
            continue
        header = match.group(2)
        ports: dict[str, Port] = {}
        if _DIR.match(header.split(",")[0]):  # ANSI header
            _declare(header.split(","), ports)
            return list(ports.values())
        end = text.find("endmodule", match.end())
        for stmt in text[match.end():end if end >= 0 else len(text)].split(";"):
            if _DIR.match(stmt):
                _declare(stmt.split(","), ports)
        names = [n.strip().lstrip("\\") for n in header.split(",") if n.strip()]
        missing = [n for n in names if n not in ports]
        if missing:
            raise BuildError(f"cannot find the declaration of port {missing[0]!r} of module "
                             f"{top!r} in the Verilog file")
        return [ports[n] for n in names]
    raise BuildError(f"module {top!r} is not in the Verilog file; check manifest.json 'top'")
