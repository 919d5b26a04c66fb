"""QGraph to and from a JSON-able dict (integer parameters; the hand-off file)."""

from __future__ import annotations

import numpy as np

from .._files import jsonable
from .qgraph import QGraph, QLayer, QTensor

__all__ = ["qgraph_to_dict", "qgraph_from_dict"]

_ARRAYS = ("weight", "bias", "m", "n", "lut")


def qgraph_to_dict(qg: QGraph) -> dict:
    """Every tensor and layer field as plain JSON values (arrays as nested lists)."""
    return jsonable({
        "name": qg.name, "input": qg.input, "output": qg.output, "host_tail": list(qg.host_tail),
        "tensors": {n: {"shape": list(t.shape), "bits": t.bits, "scale": t.scale, "zero_point": t.zero_point}
                    for n, t in qg.tensors.items()},
        "layers": [l.__dict__ for l in qg.layers],
        "attrs": qg.attrs,
    })


def qgraph_from_dict(d: dict) -> QGraph:
    """The inverse of :func:`qgraph_to_dict`."""
    tensors = {n: QTensor(n, tuple(t["shape"]), t["bits"], t["scale"], t["zero_point"]) for n, t in d["tensors"].items()}
    layers = []
    for l in d["layers"]:
        kw = dict(l)
        for k in _ARRAYS:
            if kw.get(k) is not None:
                kw[k] = np.asarray(kw[k], dtype=np.int64)
        for k in ("kernel", "strides", "pads", "add_m"):
            kw[k] = tuple(kw[k])
        layers.append(QLayer(**kw))
    return QGraph(d["name"], tensors, layers, d["input"], d["output"], list(d["host_tail"]), dict(d.get("attrs", {})))
