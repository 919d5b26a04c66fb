"""The pass protocol: a pass takes a Graph and returns ``PassResult(graph, modified)``.

As in onnx-ir's pass infrastructure, a pass states its preconditions in
:meth:`Pass.requires` and its postconditions in :meth:`Pass.ensures`; both are checked
in one place, :meth:`Pass.__call__`, never scattered through the rewrite itself.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from ..ir.graph import Graph

__all__ = ["Pass", "PassResult", "PassError", "PreconditionError", "PostconditionError"]


@dataclass(frozen=True)
class PassResult:
    """What a pass returns.

    Parameters
    ----------
    graph : Graph
        The rewritten graph (passes rewrite in place and return the same object).
    modified : bool
        Whether anything changed; the :class:`PassManager` stops at a fixed point.
    """

    graph: Graph
    modified: bool


class PassError(RuntimeError):
    """A pass failed: a bug in hwflow, not in the user's model."""


class PreconditionError(PassError):
    """The graph given to a pass does not meet :meth:`Pass.requires`."""


class PostconditionError(PassError):
    """A pass left the graph without the property :meth:`Pass.ensures` promises."""


class Pass(abc.ABC):
    """A graph rewrite.

    Subclasses implement :meth:`call`; they may override :meth:`requires` and
    :meth:`ensures` to raise (any exception) when a condition does not hold.
    """

    @property
    def name(self) -> str:
        """The pass's name (its class name)."""
        return type(self).__name__

    def requires(self, graph: Graph) -> None:
        """Raise if ``graph`` is not a valid input for this pass."""

    def ensures(self, graph: Graph) -> None:
        """Raise if the rewritten ``graph`` lacks what this pass promises."""

    @abc.abstractmethod
    def call(self, graph: Graph) -> PassResult:
        """Rewrite ``graph``; return whether anything changed."""

    def __call__(self, graph: Graph) -> PassResult:
        try:
            self.requires(graph)
        except PassError:
            raise
        except Exception as exc:
            raise PreconditionError(f"{self.name}: precondition failed: {exc}") from exc
        result = self.call(graph)
        if not isinstance(result, PassResult):
            raise TypeError(f"{self.name}.call must return a PassResult, not {result!r}")
        try:
            self.ensures(result.graph)
        except PassError:
            raise
        except Exception as exc:
            raise PostconditionError(f"{self.name}: postcondition failed: {exc}") from exc
        return result
