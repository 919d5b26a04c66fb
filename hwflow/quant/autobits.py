"""Automatic per-layer weight widths: greedy by measured sensitivity.

Starting from every layer at ``config.wbits``, each step tries lowering one layer's
weights by one candidate width and keeps the move that costs the least output noise
per bit saved (noise measured on the calibration data: the error power of the
quantized logits against float). It stops at the storage budget, or before the
top-1 agreement would fall under the floor. Every step is recorded: the curve of
storage against agreement and SQNR.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError
from ..ir.graph import Graph
from ._lower import lower
from .config import QuantConfig
from .evaluate import compare, quant_logits
from .quantize import quantize_plan

__all__ = ["auto_bits", "CANDIDATE_BITS"]

#: weight widths the search moves through, widest first
CANDIDATE_BITS = (16, 12, 8, 7, 6, 5, 4, 3, 2)


def auto_bits(graph: Graph, config: QuantConfig, calib: np.ndarray, budget_kbit: float | None = None,
              agreement_floor: float | None = None, max_eval: int = 2000) -> tuple[QuantConfig, list[dict]]:
    """Choose ``layer_bits`` for ``graph``.

    Parameters
    ----------
    graph : Graph
    config : QuantConfig
        Everything but the per-layer weight widths (``abits`` per layer are kept).
    calib : numpy.ndarray
        Calibration inputs; sensitivity is measured on them.
    budget_kbit : float, optional
        Stop once weight storage is at most this many kbit (1 kbit = 1000 bits).
    agreement_floor : float, optional
        Never accept a step that takes top-1 agreement with float below this.
    max_eval : int
        Cap on quantize-and-evaluate rounds (each step costs one per layer).

    Returns
    -------
    (QuantConfig, list of dict)
        The chosen config and the curve: one point per step with ``kbit``,
        ``agreement``, ``sqnr_db`` and ``bits`` (layer -> wbits).

    Raises
    ------
    OptionError
        If neither stop criterion is given, the config asks for other weight formats than
        ``int`` or for 1-bit activations, or the budget cannot be met even at 2 bits.
    """
    if budget_kbit is None and agreement_floor is None:
        raise OptionError("auto-bits needs a storage budget (kbit) or an agreement floor")
    if not config.int_only:
        raise OptionError("auto-bits searches int weight widths; it does not combine with pot/binary/ternary "
                          "weights or 1-bit activations")
    calib = np.asarray(calib, dtype=np.float32)
    plan0 = lower(graph)
    names = [l.name for l in plan0.layers if l.has_weight]
    sizes = {l.name: int(l.weight.size) for l in plan0.layers if l.has_weight}
    abits = {n: config.bits_of(n)[1] for n in names}
    bits = {n: config.bits_of(n)[0] for n in names}

    from ..ref.float import run_float

    ref = None
    evals = 0
    cache: dict = {}  # activation ranges do not depend on weight widths (CLE/clamp aside)

    def measure(b: dict[str, int]) -> dict:
        nonlocal ref, evals
        evals += 1
        cfg = config.with_(layer_bits={**config.layer_bits, **{n: (b[n], abits[n]) for n in names}})
        qg = quantize_plan(lower(graph), cfg, calib, graph.meta.get("fixed_qparams"), range_cache=cache)
        if ref is None:
            ref = np.asarray(run_float(graph, calib, keep=True)[qg.output], np.float64).reshape(len(calib), -1)
        out = quant_logits(qg, calib)
        m = compare(ref, out)
        m["noise"] = float(np.mean((ref - out) ** 2))
        m["kbit"] = qg.weight_bits() / 1000
        m["bits"] = dict(b)
        return m

    cur = measure(bits)
    curve = [_point(cur)]

    def done(m) -> bool:
        return budget_kbit is not None and m["kbit"] <= budget_kbit

    while not done(cur) and evals < max_eval:
        best, best_score = None, None
        for n in names:
            lower_bits = [c for c in CANDIDATE_BITS if c < bits[n]]
            if not lower_bits:
                continue
            trial = {**bits, n: lower_bits[0]}
            m = measure(trial)
            if agreement_floor is not None and m["agreement"] < agreement_floor:
                continue
            saved = (bits[n] - lower_bits[0]) * sizes[n]
            score = max(m["noise"] - cur["noise"], 1e-30) / saved  # noise per bit saved
            if best_score is None or score < best_score:
                best, best_score = (trial, m), score
        if best is None:
            break
        bits, cur = best
        curve.append(_point(cur))
    if budget_kbit is not None and not done(cur):
        why = "the agreement floor stops it" if agreement_floor is not None else "even 2-bit weights do not fit"
        raise OptionError(
            f"--budget-kbit {budget_kbit:g} cannot be met: the smallest reached is {cur['kbit']:.1f} kbit ({why})"
        )
    out = config.with_(layer_bits={**config.layer_bits, **{n: (bits[n], abits[n]) for n in names}})
    return out, curve


def _point(m: dict) -> dict:
    return {"kbit": m["kbit"], "agreement": m["agreement"], "sqnr_db": m["sqnr_db"], "bits": dict(m["bits"])}
