"""QGraph to and from a JSON-able dict (integer parameters; the hand-off file)."""

from __future__ import annotations

import numpy as np

from .._files import jsonable
from .host_tail import HostTail
from .qgraph import QGraph, QLayer, QTensor

__all__ = ["qgraph_to_dict", "qgraph_from_dict"]

_ARRAYS = ("weight", "bias", "m", "n", "lut")
# Fields written only when they differ from their defaults (older files lack them).
_OPTIONAL = {"rounding": "half_up", "acc_shift": 0}


def _tensor(t: QTensor) -> dict:
    d = {"shape": list(t.shape), "bits": t.bits, "scale": t.scale, "zero_point": t.zero_point}
    if t.rounding != "half_up":
        d["rounding"] = t.rounding
    if t.narrow:
        d["narrow"] = True
    return d


def qgraph_to_dict(qg: QGraph) -> dict:
    """Every tensor and layer field as plain JSON values (arrays as nested lists)."""
    doc = {
        "name": qg.name, "input": qg.input, "output": qg.output, "host_tail": qg.host_tail.to_dict(),
        "tensors": {n: _tensor(t) for n, t in qg.tensors.items()},
        "layers": [{k: v for k, v in l.__dict__.items() if not (k in _OPTIONAL and v == _OPTIONAL[k])}
                   for l in qg.layers],
        "attrs": qg.attrs,
    }
    if qg.input_layout is not None:
        doc["input_layout"] = qg.input_layout
    if qg.argmax:
        doc["argmax"] = True
    return jsonable(doc)


def qgraph_from_dict(d: dict) -> QGraph:
    """The inverse of :func:`qgraph_to_dict`."""
    tensors = {n: QTensor(n, tuple(t["shape"]), t["bits"], t["scale"], t["zero_point"], t.get("rounding", "half_up"),
                          t.get("narrow", False))
               for n, t in d["tensors"].items()}
    layers = []
    for l in d["layers"]:
        kw = dict(l)
        for k in _ARRAYS:
            if kw.get(k) is not None:
                kw[k] = np.asarray(kw[k], dtype=np.int64)
        for k in ("kernel", "strides", "pads", "add_m"):
            kw[k] = tuple(kw[k])
        layers.append(QLayer(**kw))
    tail = HostTail.from_dict(d["host_tail"]) if isinstance(d.get("host_tail"), dict) else None
    return QGraph(d["name"], tensors, layers, d["input"], d["output"], tail, dict(d.get("attrs", {})),
                  d.get("input_layout"), bool(d.get("argmax", False)))
