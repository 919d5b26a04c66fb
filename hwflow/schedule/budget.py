"""Check a scheduled design against the target's resources; fail with numbers."""

from __future__ import annotations

from ..errors import FitError
from .estimate import dsp_blocks, lut_mult_cost, memory_use

__all__ = ["check_budget"]


def _bigger(target) -> str:
    # fpga-medium is the largest shipped part: past it only generic (simulation) is left.
    return "--target generic (no limits)" if target.name == "fpga-medium" else "--target fpga-medium"


def _hint(target) -> str:
    return f"try --wbits 4, --prune, a smaller --pe/--simd, or {_bigger(target)}"


def check_budget(prog, target) -> None:
    """Raise :class:`FitError` when ``prog`` exceeds ``target`` (generic targets never do).

    Memory is checked first, kind by kind, in whole blocks of each kind's shapes (the
    scheduler has put the weight memory in the first kind where it fits,
    :func:`~hwflow.schedule.estimate.place_weights`); the message names every kind. Then
    DSPs, then LUTs. MAC lanes beyond the DSPs multiply in LUTs (the scheduler picks
    ``prog.dsp_mults``), so a large array costs LUTs, and only the requantizer's and
    control's own multipliers can overflow the DSPs.
    """
    est = prog.estimate
    name = target.name
    over = [k for k in target.memory if k.blocks is not None and est[f"{k.name}_blocks"] > k.blocks]
    if over:
        k = over[0]
        need = est["rom_bits"] + est["ram_bits"]
        msg = (f"design needs {need} bits of ROM+RAM ({est[f'{k.name}_blocks']} {k.name} blocks of {k.cell}, "
               f"{k.block_bits // 1024} kbit each), target {name} has {k.bits} bits ({k.blocks} {k.name} blocks)")
        for other in target.memory:  # why the weights did not go elsewhere
            if other.name == k.name:
                continue
            use = memory_use(prog, target, other)
            msg += f"; its {prog.weight_rom_bits}-bit weight memory would need {use[other.name]} of the " \
                   f"{other.blocks} {other.name} blocks ({other.cell}, {other.block_bits // 1024} kbit)"
            if use[other.name] <= other.blocks:
                msg += f", and the rest still {use[k.name]} {k.name} blocks"
        raise FitError(f"{msg}; {_hint(target)}")
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
