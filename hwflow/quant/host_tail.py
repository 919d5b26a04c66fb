"""The host tail: what the host computes from the accelerator's output to every model output.

The accelerator computes one tensor (the QGraph's ``output``, integer codes). Everything
the model computes after it runs on the host in float: Softmax probabilities, an ArgMax
label and skl2onnx's class lookup (ArrayFeatureExtractor, Reshape, Cast), and, for a
pre-quantized (QONNX) model, the per-channel scale and offset that turn the exact integer
logits into the model's real output. :class:`HostTail` holds that part of the model as a
small float graph (the ops' own kernels evaluate it, :mod:`hwflow.ref.float`), so the
integer reference, ``Build.predict`` and ``hwflow eval`` give the user every output.

Its input is the real value of the accelerator's output, ``scale * (q - zero_point)``,
or with ``QGraph.argmax`` the class index the hardware computes (an int64 ``(N, 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import Graph, Node, Tensor

__all__ = ["HostTail", "ARGMAX_OUTPUT"]

#: Name of the model output ``--argmax`` adds when no output of the model is a class index.
ARGMAX_OUTPUT = "argmax"

# Ops through which the argmax over classes is unchanged (per-row monotone or no-ops).
_ORDER_KEEPING = ("Softmax", "LogSoftmax", "Identity")


def _encode(v):
    if isinstance(v, np.dtype):
        return {"dtype": v.str}
    if isinstance(v, np.ndarray):
        return {"array": v.tolist(), "dtype": v.dtype.str}
    if isinstance(v, dict):
        return {"dict": {k: _encode(x) for k, x in v.items()}}
    return v


def _decode(v):
    if isinstance(v, dict) and "dict" in v:
        return {k: _decode(x) for k, x in v["dict"].items()}
    if isinstance(v, dict) and "array" in v:
        return np.asarray(v["array"], dtype=np.dtype(v["dtype"]))
    if isinstance(v, dict) and "dtype" in v:
        return np.dtype(v["dtype"])
    return v


@dataclass
class HostTail:
    """The float graph from the accelerator's output tensor to the model's outputs.

    Parameters
    ----------
    graph : hwflow.ir.Graph
        One input (the accelerator's output, real values), the model's outputs, host
        nodes and their constants. No nodes: the model's output is the accelerator's.
    logits : str
        The tensor whose argmax over axis 1 is the predicted class (the accelerator's
        output, or its real value after a per-channel scale).
    label : str or None
        The model output holding the class label, if the model computes one (an ArgMax,
        maybe looked up in a class list); ``hwflow eval`` scores it.
    """

    graph: Graph
    logits: str
    label: str | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.graph.inputs) != 1:
            raise ValueError(f"a host tail has one input, not {self.graph.inputs!r}")
        for t in (self.logits, self.label):
            if t is not None and t not in self.graph.tensors:
                raise ValueError(f"host tail names {t!r}, which it does not compute")

    @classmethod
    def identity(cls, name: str, shape: tuple[int, ...]) -> "HostTail":
        """The tail of a model whose only output is the accelerator's output ``name``."""
        g = Graph("host_tail", [name], [name])
        g.add_tensor(Tensor(name, tuple(shape), np.float32))
        return cls(g, name)

    @property
    def input(self) -> str:
        """The accelerator's output tensor it reads."""
        return self.graph.inputs[0]

    @property
    def outputs(self) -> list[str]:
        """The model's outputs, in order."""
        return list(self.graph.outputs)

    @property
    def ops(self) -> list[str]:
        """Op types run on the host, in order."""
        return [n.op for n in self.graph.nodes]

    def run(self, value: np.ndarray, keep: bool = False) -> dict[str, np.ndarray]:
        """Every model output (or, with ``keep``, every tail tensor) for a batch ``value``
        of the accelerator's output (real values, or class indices with ``--argmax``)."""
        from ..ref.float import run_float_multi

        t = self.graph.tensors[self.input]
        value = np.asarray(value)
        value = value.reshape((len(value),) + tuple(t.shape[1:])).astype(t.dtype, copy=False)
        return run_float_multi(self.graph, {self.input: value}, keep=keep)

    def predicted_class(self, value: np.ndarray) -> np.ndarray:
        """The class each sample is given: the label output if the model has one, else the
        argmax of the logits; ``(N,)``."""
        env = self.run(value, keep=True)
        if self.label is not None:
            return np.asarray(env[self.label]).reshape(len(value), -1)[:, 0]
        return np.asarray(env[self.logits], dtype=np.float64).reshape(len(value), -1).argmax(axis=1)

    def with_argmax(self, index_shape=(1, 1)) -> "HostTail":
        """The tail when the hardware outputs the class index (``--argmax``).

        Outputs computed from an ArgMax over classes of the logits (through Softmax or
        LogSoftmax) keep their computation on the index; the others (probabilities,
        logits) cannot be computed from it and are dropped. A model without such an
        output gets the index itself as its output, :data:`ARGMAX_OUTPUT`.

        Raises
        ------
        UnsupportedOpError
            The logits pass a per-channel scale on the host (argmax of the codes would
            not be argmax of the model's outputs), or an ArgMax is not over classes.
        """
        g = self.graph
        if self.logits != self.input:
            node = g.producer(self.logits)
            raise UnsupportedOpError(
                f"--argmax: the model's logits get a per-class scale on the host (node {node.name!r}, "
                f"{node.op}), so the largest code need not be the largest logit; compile without --argmax"
            )
        order = {self.input}
        argmaxes = []
        for n in g.nodes:
            if not n.inputs or n.inputs[0] not in order:
                continue
            if n.op in _ORDER_KEEPING:
                order.add(n.outputs[0])
            elif n.op == "ArgMax":
                rank = len(g.shape(n.inputs[0]))
                axis = int(n.attrs.get("axis", 0))
                if (axis + rank if axis < 0 else axis) != 1 or int(n.attrs.get("select_last_index", 0)):
                    raise UnsupportedOpError(
                        f"--argmax: node {n.name!r} (ArgMax) is not the first maximum over the classes (axis 1); "
                        "compile without --argmax"
                    )
                argmaxes.append(n)
        idx_name = f"{self.input}::argmax"
        tail = Graph("host_tail", [idx_name], [])
        tail.add_tensor(Tensor(idx_name, tuple(index_shape), np.int64))
        if not argmaxes:
            tail.outputs = [idx_name]
            return HostTail(tail, idx_name, idx_name, [f"{ARGMAX_OUTPUT}: the class index"])
        # the ArgMax outputs become the index (reshaped when keepdims=0); what follows is kept
        live = {}
        for a in argmaxes:
            out = a.outputs[0]
            tail.add_tensor(Tensor(out, g.shape(out), np.int64))
            tail.add_node(Node(f"{a.name}::hw", "Reshape", [idx_name, _shape_const(tail, out, g.shape(out))], [out],
                               {"host": True}))
            live[out] = True
        for n in g.nodes:
            if any(t in live for t in n.inputs if t) and all(
                    t in live or g.tensors[t].is_const for t in n.inputs if t):
                for t in n.inputs:
                    if t and g.tensors[t].is_const and t not in tail.tensors:
                        tail.add_tensor(Tensor(t, g.shape(t), g.tensors[t].dtype, g.tensors[t].data))
                for t in n.outputs:
                    tail.add_tensor(Tensor(t, g.shape(t), g.tensors[t].dtype))
                    live[t] = True
                tail.add_node(Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs)))
        tail.outputs = [t for t in g.outputs if t in live]
        dropped = [t for t in g.outputs if t not in live]
        label = self.label if self.label in live else tail.outputs[0]
        notes = [f"--argmax: outputs {dropped!r} need the logits and are not computed"] if dropped else []
        return HostTail(tail, idx_name, label, notes)

    # ---- serialization ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON values (quant.json's ``host_tail``)."""
        g = self.graph
        return {
            "input": self.input, "outputs": self.outputs, "logits": self.logits, "label": self.label,
            "notes": list(self.notes),
            "tensors": {n: {"shape": list(t.shape), "dtype": t.dtype.str,
                            **({"data": t.data.tolist()} if t.is_const else {})} for n, t in g.tensors.items()},
            "nodes": [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "outputs": list(n.outputs),
                       "attrs": {k: _encode(v) for k, v in n.attrs.items()}} for n in g.nodes],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "HostTail":
        """The inverse of :meth:`to_dict`."""
        g = Graph("host_tail", [d["input"]], list(d["outputs"]))
        for name, t in d["tensors"].items():
            dtype = np.dtype(t["dtype"])
            data = np.asarray(t["data"], dtype=dtype) if "data" in t else None
            g.add_tensor(Tensor(name, tuple(t["shape"]), dtype, data))
        for n in d["nodes"]:
            g.add_node(Node(n["name"], n["op"], n["inputs"], n["outputs"],
                            {k: _decode(v) for k, v in n["attrs"].items()}))
        return cls(g, d["logits"], d.get("label"), list(d.get("notes", [])))


def _shape_const(g: Graph, out: str, shape) -> str:
    return g.add_const(f"{out}::shape", np.asarray([-1 if i == 0 else d for i, d in enumerate(shape)],
                                                   np.int64)).name
