"""Check a scheduled design against the target's resources; fail with numbers."""

from __future__ import annotations

from ..errors import FitError
from .estimate import dsp_blocks

__all__ = ["check_budget"]

_HINT = "try --wbits 4, --prune, a smaller --pe/--simd, or --target fpga-medium"


def check_budget(prog, target) -> None:
    """Raise :class:`FitError` when ``prog`` exceeds ``target`` (generic targets never do).

    Memory is checked in bits (block RAM blocks x block bits, after tiling into the
    family's block geometry), then DSPs (Yosys maps every multiplier to one, so more
    multipliers than DSPs is fatal) and LUTs.
    """
    est = prog.estimate
    name = target.name
    if target.bram_blocks is not None and est["bram_blocks"] > target.bram_blocks:
        need = est["rom_bits"] + est["ram_bits"]
        have = target.bram_blocks * target.bram_block_bits
        raise FitError(
            f"design needs {need} bits of ROM+RAM ({est['bram_blocks']} block RAMs), target {name} has "
            f"{have} bits ({target.bram_blocks} blocks); {_HINT}"
        )
    luts = est["luts"]
    if target.dsps is not None and est["dsps"] > target.dsps:
        # Yosys puts every multiplier on a DSP (it never falls back to LUTs), so this fails P&R.
        nmul = prog.pe * prog.simd
        per = max(1, dsp_blocks(prog.wbits, prog.abits, target.family))
        fit = max(0, target.dsps - (est["dsps"] - nmul * per)) // per
        raise FitError(
            f"design needs {est['dsps']} DSPs (PE {prog.pe} x SIMD {prog.simd} = {nmul} MAC multipliers, plus "
            f"{est['dsps'] - nmul * per} for requantizer and control), target {name} has {target.dsps}; "
            f"choose --pe/--simd with PE x SIMD <= {fit}, or --target fpga-medium"
        )
    if target.luts is not None and luts > target.luts:
        raise FitError(
            f"design needs about {luts} LUTs ({est['dsps']} multipliers), target {name} has {target.luts} LUTs "
            f"and {target.dsps} DSPs; {_HINT}"
        )
