"""Float vs integer comparison: accuracy, top-1 agreement, logit SQNR, storage."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ref.float import run_float
from .reference import run_int_batch
from .qgraph import QGraph

__all__ = ["float_logits", "quant_logits", "compare", "evaluate", "sqnr_db"]


def float_logits(graph: Graph, qg: QGraph, x: np.ndarray) -> np.ndarray:
    """The float value of the tensor the QGraph outputs (before the host tail), ``(N, K)``."""
    env = run_float(graph, x, keep=True)
    return np.asarray(env[qg.output], dtype=np.float64).reshape(len(x), -1)


def quant_logits(qg: QGraph, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Host-quantize ``x``, run the integer reference, dequantize: ``(N, K)`` floats."""
    tin, tout = qg.tensors[qg.input], qg.tensors[qg.output]
    outs = [tout.dequantize(run_int_batch(qg, tin.quantize(x[i:i + batch])))
            for i in range(0, len(x), batch)]
    return np.concatenate(outs).reshape(len(x), -1)


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """``10·log10(Σref² / Σ(ref - test)²)`` (inf when equal)."""
    noise = float(np.sum((ref - test) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise))


def compare(ref: np.ndarray, test: np.ndarray, y: np.ndarray | None = None) -> dict:
    """Metrics of ``test`` logits against float ``ref`` logits (and labels ``y``)."""
    out = {}
    if y is not None:
        out["float_accuracy"] = float((ref.argmax(1) == y).mean())
        out["quant_accuracy"] = float((test.argmax(1) == y).mean())
    out["agreement"] = float((ref.argmax(1) == test.argmax(1)).mean())
    out["sqnr_db"] = sqnr_db(ref, test)
    return out


def evaluate(graph: Graph, qg: QGraph, x: np.ndarray, y: np.ndarray | None = None) -> dict:
    """:func:`compare` on the graph and its quantization, plus ``weight_bits``."""
    res = compare(float_logits(graph, qg, x), quant_logits(qg, x), y)
    res["weight_bits"] = qg.weight_bits()
    return res
