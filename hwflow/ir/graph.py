"""The float graph IR: tensors, nodes and a graph over networkx.

A :class:`Graph` holds named :class:`Tensor` s (values flowing between nodes,
including initializers, which carry their data as numpy arrays) and :class:`Node` s
(ONNX-style operators). Edges of the underlying ``networkx.DiGraph`` go from the
producing node to each consuming node and are labelled with the tensor name.

Conventions shared by every pass and stage:

- shapes are static tuples of ints (the importer resolves a symbolic batch dim to 1);
- node attributes are plain Python values (ints, floats, lists, strings, numpy arrays);
- every node's op is an entry of the op registry (:data:`hwflow.ir.ops.OPS`), which
  gives its shape rule and float kernel;
- a Conv/Gemm whose activation was fused carries ``attrs["activation"]``, a dict with
  ``op`` one of :data:`hwflow.ir.ops.ACTIVATIONS` (Relu, Clip, LeakyRelu, Sigmoid, Tanh, Sign)
  and, where they apply, ``min``/``max`` (Clip) or ``alpha`` (LeakyRelu);
- ops that run on the host (:data:`hwflow.ir.ops.HOST_OPS`: Softmax, LogSoftmax, ArgMax
  at the tail) stay in the graph with ``attrs["host"] = True``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import networkx as nx
import numpy as np

from ..errors import ModelError
from .ops import check_shapes

__all__ = ["Tensor", "Node", "Graph"]


@dataclass
class Tensor:
    """A value in the graph.

    Parameters
    ----------
    name : str
        Unique name.
    shape : tuple of int
        Static shape.
    dtype : numpy.dtype
        Element type (float32 for activations of an imported model).
    data : numpy.ndarray or None
        The constant value for initializers, ``None`` for activations.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    data: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"tensor name must be a non-empty string, not {self.name!r}")
        self.shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in self.shape):
            raise ValueError(f"tensor {self.name!r} has a negative dimension: {self.shape!r}")
        self.dtype = np.dtype(self.dtype)
        if self.data is not None:
            self.data = np.asarray(self.data)
            if tuple(self.data.shape) != self.shape:
                raise ValueError(
                    f"tensor {self.name!r}: data shape {self.data.shape!r} != declared {self.shape!r}"
                )

    @property
    def is_const(self) -> bool:
        """True for an initializer or folded constant."""
        return self.data is not None

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    """An operator.

    Parameters
    ----------
    name : str
        Unique node name.
    op : str
        ONNX op type (``"Conv"``, ``"Gemm"``...).
    inputs, outputs : list of str
        Tensor names; an empty string marks an omitted optional input.
    attrs : dict
        Attributes as plain Python values.
    """

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"node name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.op, str) or not self.op:
            raise ValueError(f"node {self.name!r}: op must be a non-empty string, not {self.op!r}")
        self.inputs = list(self.inputs)
        self.outputs = list(self.outputs)
        if not self.outputs:
            raise ValueError(f"node {self.name!r} ({self.op}) has no outputs")


class Graph:
    """A dataflow graph of :class:`Node` s over :class:`Tensor` s.

    Parameters
    ----------
    name : str
        Model name (used for the generated top-level module).
    inputs, outputs : list of str
        Names of the graph's input and output tensors, in order.
    """

    def __init__(self, name: str = "model", inputs: Iterable[str] = (), outputs: Iterable[str] = ()):
        self.name = name
        self.inputs: list[str] = list(inputs)
        self.outputs: list[str] = list(outputs)
        self.tensors: dict[str, Tensor] = {}
        self.meta: dict[str, Any] = {}
        self._g = nx.DiGraph()
        self._producer: dict[str, str] = {}

    # -- construction -------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        """Add (or replace) a tensor and return it."""
        self.tensors[tensor.name] = tensor
        return tensor

    def unique_name(self, name: str) -> str:
        """``name``, or ``name_N`` for the first N that no tensor has."""
        unique, i = name, 1
        while unique in self.tensors:
            unique, i = f"{name}_{i}", i + 1
        return unique

    def add_const(self, name: str, data: np.ndarray) -> Tensor:
        """Add an initializer holding ``data`` under a name not yet used (:meth:`unique_name`)."""
        data = np.asarray(data)
        return self.add_tensor(Tensor(self.unique_name(name), data.shape, data.dtype, data))

    def add_node(self, node: Node) -> Node:
        """Add a node; its output tensors must not already have a producer."""
        if node.name in self._g:
            raise ValueError(f"duplicate node name {node.name!r}")
        for out in node.outputs:
            if out in self._producer:
                raise ValueError(
                    f"tensor {out!r} produced by both {self._producer[out]!r} and {node.name!r}"
                )
        self._g.add_node(node.name, node=node)
        for out in node.outputs:
            self._producer[out] = node.name
        self._relink(node)
        return node

    def remove_node(self, name: str) -> Node:
        """Remove a node (its output tensors stay in ``tensors`` until pruned)."""
        node = self.node(name)
        for out in node.outputs:
            if self._producer.get(out) == name:
                del self._producer[out]
        self._g.remove_node(name)
        return node

    def replace_input(self, node: Node, old: str, new: str) -> None:
        """Make ``node`` read ``new`` wherever it read ``old``."""
        node.inputs = [new if t == old else t for t in node.inputs]
        self._relink(node)

    def rename_uses(self, old: str, new: str) -> None:
        """Make every consumer of ``old`` (and the graph outputs) use ``new`` instead."""
        for node in list(self.consumers(old)):
            self.replace_input(node, old, new)
        self.outputs = [new if t == old else t for t in self.outputs]

    def rename_tensor(self, old: str, new: str) -> None:
        """Rename tensor ``old`` to ``new`` everywhere (producer, consumers, graph inputs/outputs)."""
        if new in self.tensors:
            raise ValueError(f"cannot rename {old!r} to {new!r}: {new!r} already exists")
        tensor = self.tensors.pop(old)
        tensor.name = new
        self.tensors[new] = tensor
        prod = self._producer.pop(old, None)
        if prod is not None:
            node = self.node(prod)
            node.outputs = [new if t == old else t for t in node.outputs]
            self._producer[new] = prod
        for name in self._consumer_names(old):
            node = self.node(name)
            node.inputs = [new if t == old else t for t in node.inputs]
        for _, _, data in self._g.edges(data=True):
            if data.get("tensor") == old:
                data["tensor"] = new
        self.inputs = [new if t == old else t for t in self.inputs]
        self.outputs = [new if t == old else t for t in self.outputs]

    def _relink(self, node: Node) -> None:
        self._g.remove_edges_from(list(self._g.in_edges(node.name)))
        for t in node.inputs:
            src = self._producer.get(t)
            if src is not None:
                self._g.add_edge(src, node.name, tensor=t)
        for out in node.outputs:
            for consumer in self._consumer_names(out):
                self._g.add_edge(node.name, consumer, tensor=out)

    def _consumer_names(self, tensor: str) -> list[str]:
        return [n for n, d in self._g.nodes(data=True) if tensor in d["node"].inputs]

    # -- queries ------------------------------------------------------------------
    def node(self, name: str) -> Node:
        """The node called ``name``."""
        try:
            return self._g.nodes[name]["node"]
        except KeyError:
            raise KeyError(f"no node named {name!r}") from None

    @property
    def nodes(self) -> list[Node]:
        """Nodes in topological order (ties broken by insertion order)."""
        order = nx.lexicographical_topological_sort(self._g, key=self._insertion_key())
        return [self._g.nodes[n]["node"] for n in order]

    def _insertion_key(self):
        index = {n: i for i, n in enumerate(self._g.nodes)}
        return lambda n: f"{index[n]:09d}"

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def producer(self, tensor: str) -> Node | None:
        """The node producing ``tensor``, or None for graph inputs and constants."""
        name = self._producer.get(tensor)
        return None if name is None else self.node(name)

    def consumers(self, tensor: str) -> list[Node]:
        """The nodes reading ``tensor``, in topological order."""
        names = self._consumer_names(tensor)
        if len(names) <= 1:  # the common case needs no topological sort
            return [self.node(n) for n in names]
        names = set(names)
        return [n for n in self.nodes if n.name in names]

    def const(self, tensor: str) -> np.ndarray | None:
        """The data of ``tensor`` if it is a constant, else None."""
        t = self.tensors.get(tensor)
        return None if t is None else t.data

    def shape(self, tensor: str) -> tuple[int, ...]:
        """The static shape of ``tensor``."""
        return self.tensors[tensor].shape

    def ops(self) -> list[str]:
        """Op types in topological order."""
        return [n.op for n in self.nodes]

    def count(self, op: str) -> int:
        """How many nodes have op type ``op``."""
        return sum(1 for n in self.nodes if n.op == op)

    @property
    def nx(self) -> nx.DiGraph:
        """The underlying networkx graph (nodes are node names; edge attr ``tensor``)."""
        return self._g

    def remove_dead(self) -> bool:
        """Remove nodes and tensors no graph output depends on; return whether any were."""
        modified = False
        live = set(self.outputs)
        for node in reversed(self.nodes):  # consumers come before producers
            if any(t in live for t in node.outputs if t):
                live.update(t for t in node.inputs if t)
            else:
                self.remove_node(node.name)
                modified = True
        used = set(self.inputs) | set(self.outputs)
        for node in self.nodes:
            used.update(t for t in node.inputs + node.outputs if t)
        for t in [t for t in self.tensors if t not in used]:
            del self.tensors[t]
            modified = True
        return modified

    def copy(self) -> "Graph":
        """A deep copy (initializer arrays included)."""
        return copy.deepcopy(self)

    # -- checking -----------------------------------------------------------------
    def verify(self) -> None:
        """Check the graph's invariants.

        Raises
        ------
        ModelError
            If the graph has a cycle, a tensor consumed without producer, a node
            whose tensors are undeclared, or a graph output nothing produces.
        """
        if not nx.is_directed_acyclic_graph(self._g):
            cycle = nx.find_cycle(self._g)
            raise ModelError(f"graph {self.name!r} has a cycle through nodes {[e[0] for e in cycle]!r}")
        available = set(self.inputs) | {t for t, v in self.tensors.items() if v.is_const}
        for node in self.nodes:
            for t in node.inputs:
                if not t:
                    continue
                if t not in self.tensors:
                    raise ModelError(f"node {node.name!r} ({node.op}) reads undeclared tensor {t!r}")
                if t not in available and t not in self._producer:
                    raise ModelError(f"node {node.name!r} ({node.op}) reads {t!r}, which nothing produces")
            for t in node.outputs:
                if t not in self.tensors:
                    raise ModelError(f"node {node.name!r} ({node.op}) writes undeclared tensor {t!r}")
                if self.tensors[t].is_const:
                    raise ModelError(f"node {node.name!r} ({node.op}) writes constant tensor {t!r}")
        for t in self.inputs:
            if t not in self.tensors:
                raise ModelError(f"graph input {t!r} is not declared")
        for t in self.outputs:
            if t not in self._producer and t not in self.inputs and not (
                t in self.tensors and self.tensors[t].is_const
            ):
                raise ModelError(f"graph output {t!r} is not produced by any node")
        check_shapes(self)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes, inputs={self.inputs!r}, outputs={self.outputs!r})"
