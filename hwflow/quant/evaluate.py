"""Float vs integer comparison: accuracy, top-1 agreement, logit SQNR, storage."""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ref.float import run_float
from .reference import run_int_batch
from .qgraph import QGraph

__all__ = ["float_logits", "quant_logits", "quant_outputs", "compare", "evaluate", "sqnr_db"]


def float_logits(graph: Graph, qg: QGraph, x: np.ndarray) -> np.ndarray:
    """The float value of the logits (the tensor the host tail's class comes from), ``(N, K)``."""
    env = run_float(graph, x, keep=True)
    return np.asarray(env[qg.host_tail.logits], dtype=np.float64).reshape(len(x), -1)


def quant_outputs(qg: QGraph, x: np.ndarray, batch: int = 256, keep: bool = False) -> dict[str, np.ndarray]:
    """Host-quantize ``x``, run the integer reference and the host tail: every model output
    (every host-tail tensor with ``keep``), by name."""
    tin, tout = qg.tensors[qg.input], qg.tensors[qg.output]
    out = np.concatenate([run_int_batch(qg, tin.quantize(x[i:i + batch])) for i in range(0, len(x), batch)])
    return qg.host_tail.run(out if qg.argmax else tout.dequantize(out), keep=keep)


def quant_logits(qg: QGraph, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Host-quantize ``x``, run the integer reference, dequantize (and apply a per-channel
    host scale): the logits, ``(N, K)`` floats."""
    env = quant_outputs(qg, x, batch, keep=True)
    return np.asarray(env[qg.host_tail.logits], dtype=np.float64).reshape(len(x), -1)


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """``10·log10(Σref² / Σ(ref - test)²)`` (inf when equal)."""
    noise = float(np.sum((ref - test) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref ** 2) / noise))


def compare(ref: np.ndarray, test: np.ndarray, y: np.ndarray | None = None,
            ref_class: np.ndarray | None = None, test_class: np.ndarray | None = None) -> dict:
    """Metrics of ``test`` logits against float ``ref`` logits (and labels ``y``).

    ``ref_class``/``test_class`` are the classes the models predict when they compute a
    label themselves; default: the argmax of the logits.
    """
    ref_class = ref.argmax(1) if ref_class is None else np.asarray(ref_class).reshape(-1)
    test_class = test.argmax(1) if test_class is None else np.asarray(test_class).reshape(-1)
    out = {}
    if y is not None:
        out["float_accuracy"] = float((ref_class == y).mean())
        out["quant_accuracy"] = float((test_class == y).mean())
    out["agreement"] = float((ref_class == test_class).mean())
    out["sqnr_db"] = sqnr_db(ref, test)
    return out


def evaluate(graph: Graph, qg: QGraph, x: np.ndarray, y: np.ndarray | None = None) -> dict:
    """:func:`compare` on the graph and its quantization, plus ``weight_bits``.

    Accuracy scores the model's label output when it has one (a classifier's ArgMax and
    class lookup, :attr:`HostTail.label`), else the argmax of the logits.
    """
    tail = qg.host_tail
    env = run_float(graph, x, keep=True)
    ref = np.asarray(env[tail.logits], dtype=np.float64).reshape(len(x), -1)
    qenv = quant_outputs(qg, x, keep=True)
    test = np.asarray(qenv[tail.logits], dtype=np.float64).reshape(len(x), -1)
    classes = (None, None)
    if tail.label is not None:
        classes = tuple(np.asarray(e[tail.label]).reshape(len(x), -1)[:, 0] for e in (env, qenv))
    res = compare(ref, test, y, *classes)
    if tail.label is not None:
        res["scored_output"] = tail.label
    res["weight_bits"] = qg.weight_bits()
    return res
