"""Report section: weight histograms on a powers-of-two axis, against the quantization grid.

For each Conv/Gemm, the histogram of ``log2(|w|/s)`` (float weights as the quantizer
saw them, each over its own channel's scale ``s``, i.e. in LSBs of its code) is drawn
with what the ``b``-bit code can hold: the precision limit ``1/2`` LSB (smaller weights
round to zero), the clip limit ``2^(b-1) - 1/2`` LSB (larger ones saturate) and the grid
of representable magnitudes ``k`` as ticks. The top axis gives absolute ``|w|`` at the
median channel scale (exact for per-tensor scales).
"""

from __future__ import annotations

import numpy as np

from ._figure import figure, img_tag
from ._html import Section, note, para, table

__all__ = ["weight_stats", "weights_section"]


def _scales(layer) -> np.ndarray | None:
    s = layer.attrs.get("w_scale")
    if s is None:
        return None
    s = np.asarray(s, np.float64)
    return np.broadcast_to(s if s.size > 1 else s.reshape(1), (layer.weight.shape[0],))


def weight_stats(layer, w: np.ndarray) -> dict:
    """Fixed-point statistics of float weights ``w`` against ``layer``'s codes and scales.

    Returns
    -------
    dict
        ``below`` / ``beyond``: fractions of weights under the precision limit (nonzero
        weights that round to 0) and outside the range (clipped); ``sqnr_db`` of the
        dequantized weights; ``max_abs_error``; ``scale`` (per channel).
    """
    s = _scales(layer)
    lo, hi = (int(v) for v in layer.weight_format.levels[[0, -1]])  # the format's extreme values
    sb = s.reshape((-1,) + (1,) * (w.ndim - 1))
    v = w / sb
    deq = layer.weight * sb
    noise = float(np.sum((w - deq) ** 2))
    return {
        "below": float(np.mean((w != 0) & (np.abs(v) < 0.5))),
        "beyond": float(np.mean((v > hi + 0.5) | (v < lo - 0.5))),
        "sqnr_db": float("inf") if noise == 0 else float(10 * np.log10(np.sum(w ** 2) / noise)),
        "max_abs_error": float(np.max(np.abs(w - deq))),
        "scale": s,
    }


_SUP = str.maketrans("-0123456789.", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹·")


def _pow2_formatter():
    from matplotlib.ticker import FuncFormatter

    # unicode superscripts: mathtext labels cost most of the figure's drawing time
    return FuncFormatter(lambda x, _: "2" + (f"{x:g}" if abs(x - round(x)) < 1e-6 else f"{x:.1f}").translate(_SUP))


def _pow2_axis(ax) -> None:
    from matplotlib.ticker import MultipleLocator

    ax.xaxis.set_major_locator(MultipleLocator(1 if np.ptp(ax.get_xlim()) <= 14 else 2))
    ax.xaxis.set_major_formatter(_pow2_formatter())


def _figure(name: str, layer, w: np.ndarray, st: dict):
    s = st["scale"]
    lo, hi = (int(v) for v in layer.weight_format.levels[[0, -1]])  # the format's extreme values
    sb = s.reshape((-1,) + (1,) * (w.ndim - 1))
    x = np.log2(np.abs(w / sb)[w != 0])  # in LSBs of the weight's own (channel) scale
    prec, clip = -1.0, float(np.log2(hi + 0.5))
    left = min(np.floor(x.min()), prec - 1) - 0.5
    right = max(np.ceil(x.max()), np.ceil(clip)) + 0.5
    fig = figure(7.5, 3.1)
    ax = fig.add_subplot()
    ax.hist(x, bins=np.arange(left, right + 0.25, 0.25), color="#4878a8", alpha=0.9,
            label=f"|w| / s, {w.size:,} weights")
    ax.axvspan(left, prec, color="0.6", alpha=0.3, lw=0)
    ax.axvspan(clip, right, color="#d04040", alpha=0.18, lw=0)
    ax.axvline(prec, color="0.25", lw=1.5, ls="--", label="precision limit s/2 (rounds to 0)")
    ax.axvline(clip, color="#c02020", lw=1.5, ls="--", label=f"clip limit {hi}.5·s ({-lo}.5·s if negative)")
    ax.vlines(np.log2(np.arange(1, hi + 1)), 0, 0.05, transform=ax.get_xaxis_transform(), color="k",
              lw=0.6, label=f"grid: codes k = 1..{hi}")
    ax.set_xlim(left, right)
    _pow2_axis(ax)
    per_channel = np.ptp(s) > 0
    ax.set_xlabel("|w| / s in LSBs" + (" (each weight over its channel's scale s)" if per_channel else "")
                  + ", powers-of-two axis")
    ax.set_ylabel("weights")
    ref = float(np.median(s))
    top = ax.secondary_xaxis("top", functions=(lambda v: v + np.log2(ref), lambda v: v - np.log2(ref)))
    top.xaxis.set_major_formatter(_pow2_formatter())
    top.set_xlabel(f"|w|{' at the median channel scale' if per_channel else ''} (s = {ref:.3g})",
                   fontsize=8)
    top.tick_params(labelsize=7)
    fmt = "" if layer.wformat == "int" else f" {layer.wformat}"
    ax.set_title(f"{name}: {layer.op}, {layer.wbits}-bit{fmt} weights, weight SQNR {st['sqnr_db']:.1f} dB",
                 fontsize=10)
    ax.text(0.01, 0.97, f"below precision\n{100 * st['below']:.2f}%", transform=ax.transAxes,
            va="top", ha="left", fontsize=8, color="0.15")
    ax.text(0.99, 0.97, f"beyond range\n{100 * st['beyond']:.2f}%", transform=ax.transAxes,
            va="top", ha="right", fontsize=8, color="#a01010")
    ax.legend(loc="upper left", bbox_to_anchor=(0.22, 0.97), fontsize=7, frameon=True, framealpha=0.85)
    return fig


def weights_section(ctx) -> Section:
    """Histogram and fixed-point statistics of every weighted layer."""
    sid, title = "weights", "Weights against the fixed-point grid"
    layers = [l for l in ctx.qgraph.layers if l.weight is not None]
    if not layers:
        return Section(sid, title, note("The network has no weighted layers."))
    rows, figs = [], []
    for layer in layers:
        w = ctx.float_weights.get(layer.name)
        if w is None or w.shape != layer.weight.shape or _scales(layer) is None:
            rows.append([layer.name, layer.op, "x".join(map(str, layer.weight.shape)), layer.wbits,
                         "float weights not matched", None, None, None, None])
            continue
        st = weight_stats(layer, w)
        s = st["scale"]
        rows.append([layer.name, layer.op, "x".join(map(str, w.shape)), layer.wbits,
                     f"2^{np.log2(s.min()):.1f} .. 2^{np.log2(s.max()):.1f}",
                     round(100 * st["below"], 2), round(100 * st["beyond"], 2),
                     round(st["sqnr_db"], 1), f"{st['max_abs_error']:.3g}"])
        figs.append(img_tag(_figure(layer.name, layer, w, st), f"weight histogram of {layer.name}",
                            f"weights_{layer.name}"))
    body = [
        para("Histogram of |w| per layer in LSBs of its code (|w| / s, s the weight's channel scale) on a "
             "powers-of-two axis. Left of the grey line (s/2) a weight rounds to zero (below precision); "
             "right of the red line it saturates (beyond range). Ticks along the axis are the "
             "representable magnitudes k·s; the top axis is |w| itself."),
        table(["layer", "op", "shape", "wbits", "scale s", "below precision %", "beyond range %",
               "weight SQNR dB", "max |error|"], rows),
        *figs,
    ]
    return Section(sid, title, "\n".join(body))
