"""Check a scheduled design against the target's resources; fail with numbers."""

from __future__ import annotations

from ..errors import FitError
from .estimate import dsp_blocks, lut_mult_cost

__all__ = ["check_budget"]


def _bigger(target) -> str:
    # fpga-medium is the largest shipped part: past it only generic (simulation) is left.
    return "--target generic (no limits)" if target.name == "fpga-medium" else "--target fpga-medium"


def _hint(target) -> str:
    return f"try --wbits 4, --prune, a smaller --pe/--simd, or {_bigger(target)}"


def check_budget(prog, target) -> None:
    """Raise :class:`FitError` when ``prog`` exceeds ``target`` (generic targets never do).

    Memory is checked in bits (block RAM blocks x block bits, after tiling into the
    family's block geometry), then DSPs, then LUTs. MAC lanes beyond the DSPs multiply in
    LUTs (the scheduler picks ``prog.dsp_mults``), so a large array costs LUTs, and only
    the requantizer's and control's own multipliers can overflow the DSPs.
    """
    est = prog.estimate
    name = target.name
    if target.bram_blocks is not None and est["bram_blocks"] > target.bram_blocks:
        need = est["rom_bits"] + est["ram_bits"]
        have = target.bram_blocks * target.bram_block_bits
        raise FitError(
            f"design needs {need} bits of ROM+RAM ({est['bram_blocks']} block RAMs), target {name} has "
            f"{have} bits ({target.bram_blocks} blocks); {_hint(target)}"
        )
    nmul = prog.pe * prog.simd
    ndsp = nmul if prog.dsp_mults is None else prog.dsp_mults
    per = dsp_blocks(prog.wbits, prog.abits, target.family)
    if target.dsps is not None and est["dsps"] > target.dsps:
        raise FitError(
            f"design needs {est['dsps']} DSPs ({est['dsps'] - ndsp * per} for requantizer and control, "
            f"{ndsp * per} for MAC lanes), target {name} has {target.dsps}; "
            f"try --scheme pow2 (no requantizer multiplier) or {_bigger(target)}"
        )
    luts = est["luts"]
    if target.luts is not None and luts > target.luts:
        lanes = ""
        if per and ndsp < nmul:
            lane = lut_mult_cost(prog.wbits, prog.abits, target.family)[0]
            fit = ndsp + max(0, target.luts - (luts - (nmul - ndsp) * lane)) // lane
            lanes = (f"; {nmul - ndsp} of the PE {prog.pe} x SIMD {prog.simd} = {nmul} MAC multipliers are "
                     f"in LUTs (about {lane} LUTs each, {ndsp} on DSPs): PE x SIMD <= {fit} fits")
        raise FitError(
            f"design needs about {luts} LUTs, target {name} has {target.luts}{lanes}; {_hint(target)}"
        )
