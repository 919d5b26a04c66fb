"""A small, checked rewrite of the Verilog text Amaranth emits.

Zero-initialised RAMs (the activation buffer) get a loop instead of one ``initial`` line
per word, so the Verilog does not grow with the activation RAM.
"""

from __future__ import annotations

import re

__all__ = ["compress_zero_init"]


def compress_zero_init(text: str) -> str:
    """Replace ``initial`` blocks that only zero a memory word by word with a for loop."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    zero = re.compile(r"^    mem\[(\d+)\] = (\d+)'[dh]0+;$")
    while i < len(lines):
        if lines[i] == "  initial begin":
            j = i + 1
            while j < len(lines) and zero.match(lines[j]) and int(zero.match(lines[j]).group(1)) == j - i - 1:
                j += 1
            n = j - i - 1
            if n > 4 and lines[j] == "  end":
                width = zero.match(lines[i + 1]).group(2)
                k = f"mem_i{len(out)}"  # unique even if one module had two such blocks
                out += [f"  integer {k};", "  initial begin",
                        f"    for ({k} = 0; {k} < {n}; {k} = {k} + 1) mem[{k}] = {width}'d0;", "  end"]
                i = j + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)
