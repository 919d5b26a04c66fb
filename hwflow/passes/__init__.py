"""Graph optimisation passes and the default pipeline, :func:`optimize`.

Each pass lives in its own module and returns ``PassResult(graph, modified)``; the
:class:`PassManager` runs them to a fixed point and verifies the graph in between.
"""

from __future__ import annotations

from ..ir.graph import Graph
from .base import Pass, PassError, PassResult, PostconditionError, PreconditionError
from .dead_code import EliminateDeadCode
from .eliminate_identity import EliminateIdentity
from .fold_affine import FoldAffine
from .fold_batchnorm import FoldBatchNorm
from .fold_constants import FoldConstants
from .fold_input_affine import FoldInputAffine
from .fuse_activation import FuseActivation
from .fuse_pad import FusePad
from .manager import PassManager
from .lift_1d import Lift1D
from .matmul_to_gemm import MatMulAddToGemm
from .normalize_reshape import NormalizeReshape

__all__ = [
    "Pass", "PassResult", "PassError", "PreconditionError", "PostconditionError", "PassManager",
    "EliminateIdentity", "FoldConstants", "FoldBatchNorm", "FoldAffine", "FoldInputAffine", "MatMulAddToGemm",
    "FuseActivation", "FusePad", "Lift1D", "NormalizeReshape", "EliminateDeadCode", "default_passes", "optimize",
]  # fmt: skip


def default_passes() -> list[Pass]:
    """The default pipeline, in order: clean up, fold, fuse, then drop what is dead."""
    return [
        EliminateIdentity(),
        FoldConstants(),
        Lift1D(),
        FusePad(),
        NormalizeReshape(),
        MatMulAddToGemm(),
        FoldBatchNorm(),
        FoldAffine(),
        FoldInputAffine(),
        FuseActivation(),
        EliminateDeadCode(),
    ]


def optimize(graph: Graph, steps: int = 20) -> Graph:
    """Run the default pipeline to a fixed point on a copy of ``graph``.

    Parameters
    ----------
    graph : Graph
        An imported (verified) graph; it is not modified.
    steps : int
        Cap on the rounds over the whole pipeline.

    Returns
    -------
    Graph
        The optimized graph, verified.
    """
    return PassManager(default_passes(), steps=steps)(graph.copy()).graph
