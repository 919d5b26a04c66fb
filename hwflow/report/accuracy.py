"""Report section: float against quantized accuracy and top-1 agreement (``--data``)."""

from __future__ import annotations

import numpy as np

from ._figure import figure, img_tag
from ._html import Section, note, para, table

__all__ = ["accuracy", "accuracy_section"]


def accuracy(ctx) -> dict:
    """``{float_accuracy, quant_accuracy (with labels), agreement, sqnr_db, samples}`` on ``--data``."""
    from ..quant.evaluate import evaluate

    x, y = ctx.data
    res = evaluate(ctx.graph, ctx.qgraph, np.asarray(x, np.float64), y)
    res["samples"] = int(len(x))
    return res


def _figure(res: dict):
    fig = figure(5.5, 2.4)
    ax = fig.add_subplot()
    names, vals = [], []
    for key, label in (("float_accuracy", "float accuracy"), ("quant_accuracy", "quantized accuracy"),
                       ("agreement", "top-1 agreement")):
        if key in res:
            names.append(label)
            vals.append(100 * res[key])
    ax.barh(names, vals, color=["#4878a8", "#e08040", "#60a060"][: len(vals)])
    for i, v in enumerate(vals):
        ax.text(v - 1, i, f"{v:.2f}%", va="center", ha="right", color="white", fontsize=9)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("%")
    return fig


def accuracy_section(ctx) -> Section:
    sid, title = "accuracy", "Accuracy: float against quantized"
    if ctx.data is None:
        return Section(sid, title, note("No test data given: run hwflow report BUILD --data TEST.npz "
                                        "(x and optional labels y) to compare float and integer networks."))
    res = accuracy(ctx)
    rows = [["samples", res["samples"]]]
    if "float_accuracy" in res:
        rows += [["float accuracy %", round(100 * res["float_accuracy"], 2)],
                 ["quantized accuracy %", round(100 * res["quant_accuracy"], 2)],
                 ["accuracy change (points)", round(100 * (res["quant_accuracy"] - res["float_accuracy"]), 2)]]
    rows += [["top-1 agreement %", round(100 * res["agreement"], 2)],
             ["output SQNR dB", round(res["sqnr_db"], 2)],
             ["weight storage (bit)", res["weight_bits"]]]
    body = [para(f"Float reference and bit-exact integer reference on {ctx.data_name}; agreement is the "
                 "share of samples where both pick the same class."),
            table(["metric", "value"], rows), img_tag(_figure(res), "accuracy", "accuracy")]
    return Section(sid, title, "\n".join(body))
