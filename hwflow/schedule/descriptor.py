"""The per-layer descriptor: the fields the controller and datapath read from the descriptor ROM.

Plain integers: the values of each field for every hardware step, and each field's width
(sized to the largest value any step needs, so the ROM stays narrow). The RTL builds its
descriptor ROM's layout from :func:`descriptor_fields` (``rtl/controller.py``) and the
estimate counts its bits from the same widths (:mod:`hwflow.schedule.estimate`).
"""

from __future__ import annotations

from ..quant.arith import bits_for_range
from .program import KINDS
from .widths import addr_bits

__all__ = ["KIND_CODES", "LOOPS", "BACK_FIELDS", "UNIT_FIELDS", "DW_FIELDS", "descriptor_values", "descriptor_fields"]

#: The descriptor's ``kind`` code of each step kind.
KIND_CODES = {k: i for i, k in enumerate(KINDS)}

_UNSIGNED = ("kind", "ih", "iw", "ich", "oh", "ow", "och", "kh", "kw", "sh", "sw", "nt", "cis", "tpg",
             "k", "t", "ng", "cout", "coff_chunk", "coff_lane", "in_base", "in2_base", "out_base",
             "w_base", "ch_word", "lut_base", "lut_en", "drain", "qh", "qw", "wsh", "wsw",
             "a_org", "a_sw", "a_orow", "a_wsw", "a_wrow", "a_kx", "a_krow", "nwin_m1",
             "loads_m1", "stream", "wpk", "wlr", "wk", "dw_rows", "dw_last_rows", "dw_ow", "dw_groups",
             "dw_row_step", "dw_grp_step", "dw_kh_m1", "dw_kw_m1", "dw_cols_m1", "dw_groups_m1",
             "dw_sh2", "dw_sw2")
#: Fields also stored minus one, so loop-end tests are plain equalities (no subtractor in
#: the controller's critical path).
_MINUS_ONE = ("k", "qh", "qw", "cis", "kw", "kh", "t", "nt", "ow", "tpg")
#: Limits of the loops that count up, also stored minus two (0 for a limit of 1): the
#: controller sets a loop's wrap flag one step ahead (``c == lim - 2``), a register bit.
_MINUS_TWO = ("t", "k", "cis", "kw", "kh")
#: Loop limits whose ``== 1`` is bit ``LOOPS.index(f)`` of field ``is1`` (a loop's wrap flag
#: after it restarts).
LOOPS = _MINUS_ONE

#: Fields the back end (serializer to write-back) uses: it keeps its own copy of the
#: layer whose results it carries, and queues the next layer's (rtl/accelerator.py).
BACK_FIELDS = ("ng", "nt", "cout", "ch_word", "out_base", "och", "coff_chunk", "coff_lane",
               "kind", "ma", "mb", "z_out", "lo", "hi", "lut_en", "lut_base", "loads_m1",
               "dw_rows", "dw_last_rows", "dw_ow", "dw_groups", "dw_row_step", "dw_grp_step")
#: The depthwise unit's fields (and the weight step ``wk``): only in a program with ``dw`` steps.
DW_FIELDS = ("wk", "dw_rows", "dw_last_rows", "dw_ow", "dw_groups", "dw_row_step", "dw_grp_step", "dw_kh_m1",
             "dw_kw_m1", "dw_cols_m1", "dw_groups_m1", "dw_sh2", "dw_sw2")
#: Fields the units (pad substitution, pool unit, depthwise unit) use, delayed to the memory data.
UNIT_FIELDS = ("kind", "pv", "za", "zb", "stream", "dw_kh_m1", "dw_cols_m1", "dw_groups_m1", "dw_rows",
               "dw_last_rows", "dw_sh2", "dw_sw2", "dw_kw_m1")

_SIGNED = ("pt_neg", "pl_neg", "pv", "za", "zb", "ma", "mb", "z_out", "lo", "hi")
#: Signed fields compared with lanes / codes: widened to the code width.
_CODES = ("lo", "hi", "z_out", "pv")


def descriptor_values(program) -> list[dict]:
    """One dict of field values per hardware step."""
    out = []
    amod = 1 << addr_bits(program.act_words)  # the controller's address width
    for l in program.layers:
        out.append({
            "kind": KIND_CODES[l.kind], "ih": l.ih, "iw": l.iw, "ich": l.ich, "oh": l.oh, "ow": l.ow,
            "och": l.och, "kh": l.kh, "kw": l.kw, "sh": l.sh, "sw": l.sw, "nt": l.nt, "cis": l.cis,
            "tpg": l.tpg, "k": l.k, "t": l.t, "ng": l.ng, "cout": l.cout,
            "coff_chunk": l.coff // program.simd, "coff_lane": l.coff % program.simd,
            "in_base": l.in_base, "in2_base": l.in2_base, "out_base": l.out_base, "w_base": l.w_base,
            "ch_word": l.ch_base // program.rq_lanes, "lut_base": l.lut_base, "lut_en": l.lut_en, "drain": l.drain,
            "qh": l.qh, "qw": l.qw, "wsh": l.wsh, "wsw": l.wsw,
            "pt_neg": -l.pt, "pl_neg": -l.pl,
            "pv": l.pv, "za": l.za, "zb": l.zb, "ma": l.ma, "mb": l.mb, "z_out": l.z_out,
            "lo": l.lo, "hi": l.hi, "loads_m1": l.oh * l.ow * l.nt - 1, "stream": l.stream,
            "wpk": l.wpk, "wlr": l.wlr, "wk": l.wk or l.k,
        })
        # The depthwise unit's and the serializer's sweep (zeros for other steps).
        dw = l.kind == "dw"
        last_rows = l.doh - (l.qh - 1) * l.dwr if dw else 0
        out[-1].update({
            "dw_rows": l.dwr if dw else 0, "dw_last_rows": last_rows, "dw_ow": l.dow if dw else 0,
            "dw_groups": l.qh if dw else 0, "dw_row_step": (l.dow * l.och) % amod if dw else 0,
            "dw_grp_step": (l.dwr * l.dow * l.och) % amod if dw else 0,
            "dw_kh_m1": l.dkh - 1 if dw else 0, "dw_kw_m1": l.dkw - 1 if dw else 0,
            "dw_cols_m1": l.qw - 1 if dw else 0, "dw_groups_m1": l.qh - 1 if dw else 0,
            "dw_sh2": int(dw and l.dsh == 2), "dw_sw2": int(dw and l.dsw == 2),
        })
        if dw:
            out[-1]["loads_m1"] = l.nt * l.doh * l.dow - 1
        out[-1].update({f"{f}_m1": out[-1][f] - 1 for f in _MINUS_ONE})
        # Address steps in words (the controller has no multiply), modulo 2**aw: first pixel
        # origin; next output pixel, next output row (from the row's last pixel); next
        # window column, next window row (from the row's last column); next kernel column
        # (from ci = cis - 1), next kernel row (from its last column).
        ich, cis, iw = l.ich, l.cis, l.iw
        out[-1]["nwin_m1"] = l.oh * l.ow * l.nt * l.qh * l.qw - 1  # window positions in the layer, - 1
        out[-1].update({f: v % amod for f, v in (
            ("a_org", (-l.pt * iw - l.pl) * ich), ("a_sw", l.sw * ich),
            ("a_orow", (l.sh * iw - (l.ow - 1) * l.sw) * ich), ("a_wsw", l.wsw * ich),
            ("a_wrow", (l.wsh * iw - (l.qw - 1) * l.wsw) * ich), ("a_kx", ich - (cis - 1)),
            ("a_krow", (iw - (l.kw - 1)) * ich - (cis - 1)))})
        out[-1].update({f"{f}_m2": max(0, out[-1][f] - 2) for f in _MINUS_TWO})
        out[-1]["is1"] = sum(1 << i for i, f in enumerate(LOOPS) if out[-1][f] == 1)
        if l.kind == "xnor":
            # The XNOR unit hands a tile's results to the back end ``xch`` a chunk
            # (rtl/xnor_array.py): the serializer counts each chunk as a tile of its own
            # (the controller's loop keeps ``nt_m1``, set above).
            chunks = l.nb // l.xch
            out[-1].update(ng=l.xch // program.rq_lanes, nt=l.nt * chunks, loads_m1=l.nt * chunks - 1)
    if not program.narrow_lrs:  # every weight at the ROM's width: no field for it
        for v in out:
            del v["wlr"]
    if not any(l.kind == "dw" for l in program.layers):  # no depthwise unit: no fields for it
        for v in out:
            for f in DW_FIELDS:
                del v[f]
    return out


def descriptor_fields(program, values: list[dict] | None = None) -> dict[str, tuple[int, bool]]:
    """``{field: (width, signed)}`` in ROM order (the first field in the low bits).

    ``values`` are :func:`descriptor_values` (computed if not given).
    """
    vals = descriptor_values(program) if values is None else values
    fields: dict[str, tuple[int, bool]] = {}
    for f in _UNSIGNED + tuple(f"{f}_m1" for f in _MINUS_ONE) + tuple(f"{f}_m2" for f in _MINUS_TWO):
        if f not in vals[0]:
            continue
        fields[f] = (max(1, max(v[f] for v in vals).bit_length()), False)
    fields["is1"] = (len(LOOPS), False)
    for f in _SIGNED:
        fields[f] = (max(2, bits_for_range(min(0, min(v[f] for v in vals)), max(0, max(v[f] for v in vals)))), True)
    code = max(program.abits, *(fields[f][0] for f in _CODES))
    for f in _CODES:
        fields[f] = (code, True)
    return fields
