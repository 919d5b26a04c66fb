"""Run passes to a fixed point under a step cap, verifying the graph between passes."""

from __future__ import annotations

from typing import Sequence

from ..errors import HwflowError
from ..ir.graph import Graph
from .base import Pass, PassError, PassResult

__all__ = ["PassManager"]


class PassManager:
    """Apply ``passes`` in order, repeatedly, until none modifies the graph.

    Parameters
    ----------
    passes : sequence of Pass
    steps : int
        At most this many rounds over all passes (a guard against passes that undo
        each other); the result after the last round is returned.
    verify : bool
        Run :meth:`Graph.verify` after every pass.

    Notes
    -----
    A failure inside a pass is re-raised naming the pass and the step: a
    :class:`~hwflow.errors.HwflowError` keeps its class (it is the user's problem),
    anything else becomes a :class:`PassError` chained to the original.
    """

    def __init__(self, passes: Sequence[Pass], steps: int = 10, verify: bool = True):
        passes = list(passes)
        for p in passes:
            if not isinstance(p, Pass):
                raise TypeError(f"PassManager takes Pass instances, not {p!r}")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, not {steps!r}")
        self.passes = passes
        self.steps = steps
        self.verify = verify

    def __call__(self, graph: Graph) -> PassResult:
        modified = False
        for step in range(self.steps):
            changed = False
            for p in self.passes:
                graph, did = self._run(p, graph, step)
                changed |= did
            modified |= changed
            if not changed:
                break
        return PassResult(graph, modified)

    def _run(self, p: Pass, graph: Graph, step: int) -> tuple[Graph, bool]:
        try:
            result = p(graph)
            if self.verify:
                result.graph.verify()
        except HwflowError as exc:
            raise type(exc)(f"pass {p.name} (step {step}): {exc}") from exc
        except Exception as exc:
            raise PassError(f"pass {p.name} failed at step {step}: {type(exc).__name__}: {exc}") from exc
        return result.graph, result.modified
