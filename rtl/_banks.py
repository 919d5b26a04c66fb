"""Verilog text of a banked memory's read multiplexer (rtl/act_buffer.py, rtl/weight_rom.py).

A memory built from ``n`` banks (one per block slice, :func:`hwflow.schedule.estimate.read_banks`)
reads every bank into its own register; a registered bank select then picks one.
"""

from __future__ import annotations

__all__ = ["bank_mux"]


def bank_mux(n: int, *outputs: tuple[str, str, str]) -> str:
    """An ``always @(*)`` block that drives each ``(output, select, bank prefix)``: ``output``
    is ``{prefix}{j}`` for ``select == j``, the last bank's for any other select."""
    body = "".join(f"    {out} = {pre}{n - 1};\n    case ({sel})\n"
                   + "".join(f"      {j}: {out} = {pre}{j};\n" for j in range(n - 1)) + "    endcase\n"
                   for out, sel, pre in outputs)
    return f"  always @(*) begin\n{body}  end\n"
