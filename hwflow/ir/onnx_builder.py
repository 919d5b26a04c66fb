"""The part of writing an ONNX graph that every exporter shares: unique names and initializers."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["OnnxBuilder"]


class OnnxBuilder:
    """Collects ONNX nodes and initializers under names that never collide.

    Parameters
    ----------
    taken : iterable of str
        Names already in use (e.g. the tensors of the graph being exported).
    """

    def __init__(self, taken: Iterable[str] = ()):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: set[str] = set(taken)

    def fresh(self, base: str) -> str:
        """``base``, or ``base_N`` if it is taken; the name is then taken."""
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, base: str, value: np.ndarray) -> str:
        """Add an initializer holding ``value`` under a fresh name and return the name."""
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name
