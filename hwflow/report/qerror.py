"""Report section: each layer's quantization error distribution and SQNR.

The float network and the integer reference run on the same inputs; for each layer's
output the error is ``dequantized integer − float``, shown in units of the output's
LSB (rounding alone gives ±0.5 LSB; wider tails are clipping and error carried in from
earlier layers). SQNR is ``10·log10(Σ float² / Σ error²)``, so a layer's SQNR includes
everything upstream of it: where the curve drops is where precision is lost.
"""

from __future__ import annotations

import numpy as np

from ._context import int_activations, sample_inputs
from ._figure import figure, img_tag
from ._html import Section, note, para, table

__all__ = ["layer_errors", "errors_section"]

_SPAN = 8.0  # histogram range in LSB; errors beyond it are counted in the end bins


def layer_errors(ctx, x: np.ndarray) -> list[dict]:
    """Per tensor (the input, then each layer's output): name, op, SQNR (dB), the
    error in LSB (flattened), the share of errors over half an LSB."""
    from ..ref.float import run_float

    qg = ctx.qgraph
    tin = qg.tensors[qg.input]
    fenv = run_float(ctx.graph, x.astype(np.float32), keep=True)
    ienv = int_activations(qg, tin.quantize(x))
    out = []
    for name, op in [(qg.input, "input")] + [(l.output, l.op) for l in qg.layers]:
        if name not in fenv:
            continue
        t = qg.tensors[name]
        f = np.asarray(fenv[name], np.float64).reshape(len(x), -1)
        q = t.dequantize(ienv[name]).reshape(len(x), -1)
        err = q - f
        noise = float(np.sum(err ** 2))
        sqnr = float("inf") if noise == 0 else float(10 * np.log10(max(np.sum(f ** 2), 1e-300) / noise))
        lsb = err.ravel() / t.scale
        out.append({"tensor": name, "op": op, "bits": t.bits, "sqnr_db": sqnr, "lsb": lsb,
                    "over_half": float(np.mean(np.abs(lsb) > 0.5 + 1e-9)),
                    "layer": name if op == "input" else next(l.name for l in qg.layers if l.output == name)})
    return out


def _sqnr_figure(errs: list[dict]):
    fig = figure(7.5, 2.8)
    ax = fig.add_subplot()
    names = [e["layer"] for e in errs]
    vals = [min(e["sqnr_db"], 99.0) for e in errs]
    worst = int(np.argmin(vals))
    colors = ["#d04040" if i == worst else "#4878a8" for i in range(len(vals))]
    ax.bar(range(len(vals)), vals, color=colors)
    ax.plot(range(len(vals)), vals, "k.-", lw=0.8)
    for i, v in enumerate(vals):
        ax.text(i, v + 0.5, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(vals)), names, rotation=20 if len(vals) > 6 else 0, fontsize=8)
    ax.set_ylabel("SQNR vs float (dB)")
    ax.set_ylim(0, max(vals) * 1.15 + 1)
    ax.set_title("Signal-to-quantization-noise ratio after each layer (red: lowest)")
    return fig


def _hist_figure(errs: list[dict]):
    n = len(errs)
    cols = min(3, n)
    rows = -(-n // cols)
    fig = figure(7.5, 2.1 * rows)
    span = float(np.clip(np.ceil(max(np.abs(e["lsb"]).max() for e in errs)), 2, _SPAN))
    bins = np.arange(-span - 0.125, span + 0.25, 0.25)
    for i, e in enumerate(errs):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.hist(np.clip(e["lsb"], -span, span), bins=bins, color="#4878a8")
        ax.axvspan(-0.5, 0.5, color="0.5", alpha=0.2, lw=0)
        ax.set_yscale("log")
        ax.set_title(f"{e['layer']} ({e['op']}): {e['sqnr_db']:.1f} dB", fontsize=8)
        ax.tick_params(labelsize=7)
        if i % cols == 0:
            ax.set_ylabel("values", fontsize=7)
        if i >= n - cols:
            ax.set_xlabel("error (output LSB)", fontsize=7)
    return fig


def errors_section(ctx) -> Section:
    """Per-layer error histograms and the SQNR curve through the network."""
    sid, title = "errors", "Quantization error per layer"
    x, source = sample_inputs(ctx)
    errs = layer_errors(ctx, x)
    if not errs:
        return Section(sid, title, note("No float tensor matches the integer network's tensors."))
    worst = min(errs[1:] or errs, key=lambda e: e["sqnr_db"])
    rows = [[e["layer"], e["op"], e["bits"], round(e["sqnr_db"], 2),
             round(100 * e["over_half"], 2), round(float(np.abs(e["lsb"]).max()), 2)] for e in errs]
    body = [
        para(f"Float network and integer reference on {source}. Error = dequantized integer − float, "
             "in units of the output's LSB (grey band: ±0.5 LSB, rounding alone). SQNR includes "
             f"the error carried in from earlier layers. Lowest: {worst['layer']} "
             f"({worst['sqnr_db']:.1f} dB)."),
        table(["layer", "op", "bits", "SQNR dB", "|error| > 0.5 LSB %", "max |error| LSB"], rows),
        img_tag(_sqnr_figure(errs), "SQNR per layer", "errors_sqnr"),
        img_tag(_hist_figure(errs), "error histograms per layer", "errors_hist"),
    ]
    return Section(sid, title, "\n".join(body))
