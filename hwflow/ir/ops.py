"""The op registry: every ONNX op hwflow accepts, and what each stage does with it.

One :class:`OpDef` per op in :data:`OPS` gives its shape rule (:mod:`.shapes`), its
float kernel (:mod:`.kernels`), how the importer accepts it, how the quantizer lowers
it and the facts the passes, the pruner and ``hwflow inspect`` need. Every list of ops
elsewhere (:data:`SUPPORTED_OPS`, :data:`HOST_OPS`, the fusable activations...) is
computed from it. This module also holds the two look-ups every stage uses: a node's
output shapes (:func:`infer_node_shapes`, :func:`check_shapes`) and its float value
(:func:`run_node`).

Adding an op: write its shape rule in :mod:`.shapes` and its kernel in :mod:`.kernels`,
add its entry here; if it quantizes to an existing QLayer op, give ``quant`` and (for a
new kind of layer) teach :func:`hwflow.quant._lower.lower` its lowering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from . import kernels as k
from . import shapes as s
from .kernels import Kernel
from .shapes import Rule

if TYPE_CHECKING:
    from .graph import Graph, Node

__all__ = [
    "OpDef", "OPS", "SUPPORTED_OPS", "HOST_OPS", "CONST_ONLY_OPS", "ACTIVATIONS", "WEIGHTED_OPS", "QONNX_OPS",
    "QONNX_DOMAIN",
    "infer_node_shapes", "check_shapes", "run_node",
]  # fmt: skip

_ACCEPT = ("model", "host", "const", "rewrite")

#: The ONNX domain of QONNX's custom ops, as Brevitas' export writes it.
QONNX_DOMAIN = "qonnx.custom_op.general"


@dataclass(frozen=True)
class OpDef:
    """What hwflow knows about one ONNX op.

    Attributes
    ----------
    shape : Rule
        ``(node, input shapes, input constants) -> output shapes`` (:mod:`.shapes`).
    kernel : Kernel
        ``(node, input arrays) -> output arrays`` with ONNX semantics (:mod:`.kernels`).
    accept : str
        How the importer takes it: ``"model"`` anywhere in a model; ``"host"`` only at
        the network's tail, where it runs on the host after the accelerator;
        ``"const"`` only where it folds to a constant (or in the host tail, with
        ``host_tail``); ``"rewrite"`` rewritten into other ops on import (Sum -> Adds).
    quant : str or None
        What the quantizer makes of it: the QLayer op it lowers to when it stands
        alone (one of :data:`hwflow.quant.qgraph.LAYER_OPS`), ``"layout"`` (no arithmetic: layers read through
        it), ``"const"`` (a constant), or None: it cannot be quantized (host ops are
        left to the host). A Sub/Mul/Div/Add of a per-channel constant folds into the layer before
        it (the passes) or else becomes a depthwise 1x1 Conv.
        Some ops fuse into the layer before them instead: an ``activation``, an Add of
        a constant (the bias), a BatchNormalization after a Conv.
    activation : str or None
        An elementwise activation that the optimizer fuses into a Conv/Gemm
        (``attrs["activation"]``) and the quantizer realises as a ``"clamp"`` of the
        layer's output range or a lookup ``"table"``.
    operands : str
        Which inputs may be computed tensors: ``"any"``; ``"one"`` (at most one, in
        any slot: Sub/Mul/Div/MatMul by a constant); ``"first"`` (only input 0: a
        layer, whose other inputs are its weights).
    host_tail : bool
        Pure data movement: runs on the host when it only reads host results.
    per_channel : bool
        Acts on each channel alone (structured pruning removes channels through it).
    params : bool
        Its constant float inputs are learned parameters (``hwflow inspect`` counts
        them; a Reshape's target shape is not one).
    weighted : bool
        A layer with its weight in input 1 and an optional bias in input 2: the passes fold
        per-channel affine ops, BatchNormalization and activations into it, and the pruner
        prunes it.
    shape_only : bool
        Its value depends only on its input's static shape (Shape folds on any input).
    domain : str
        The ONNX domain (``"ai.onnx.ml"`` for ArrayFeatureExtractor).
    fold : bool
        Constant inputs make a constant (folded on import). False for QONNX's quantizers:
        a quantized weight stays a node, so its integer codes and scale are not lost
        (its output still counts as constant for the importer's rules).
    """

    shape: Rule
    kernel: Kernel
    accept: str = "model"
    quant: str | None = None
    activation: str | None = None
    operands: str = "any"
    host_tail: bool = False
    per_channel: bool = False
    params: bool = False
    weighted: bool = False
    shape_only: bool = False
    domain: str = ""
    fold: bool = True

    def __post_init__(self) -> None:
        if self.accept not in _ACCEPT:
            raise ValueError(f"accept must be one of {_ACCEPT!r}, not {self.accept!r}")
        if self.activation not in (None, "clamp", "table"):
            raise ValueError(f"activation must be None, 'clamp' or 'table', not {self.activation!r}")
        if self.operands not in ("any", "one", "first"):
            raise ValueError(f"operands must be 'any', 'one' or 'first', not {self.operands!r}")

    @property
    def host(self) -> bool:
        """Runs on the host, after the accelerator."""
        return self.accept == "host"

    @property
    def in_hardware(self) -> bool:
        """Becomes (part of) a QLayer that the accelerator runs."""
        return self.quant not in (None, "layout", "const")


#: ONNX op type -> :class:`OpDef`. The order is the one of the supported list in messages.
OPS: dict[str, OpDef] = {
    "Conv": OpDef(s.conv, k.op_conv, quant="conv", operands="first", params=True, weighted=True),
    "Gemm": OpDef(s.gemm, k.op_gemm, quant="gemm", operands="first", params=True, weighted=True),
    "MatMul": OpDef(s.matmul, k.op_matmul, quant="gemm", operands="one", params=True),
    "Add": OpDef(s.broadcast, k.op_add, quant="add", params=True),
    # Sub/Mul/Div by a constant: the passes fold them into a neighbouring layer
    "Sub": OpDef(s.broadcast, k.op_sub, operands="one", params=True),
    "Mul": OpDef(s.broadcast, k.op_mul, operands="one", params=True),
    "Div": OpDef(s.broadcast, k.op_div, operands="one", params=True),
    "BatchNormalization": OpDef(s.batchnorm, k.op_batchnorm, quant="conv", operands="first", params=True,
                                per_channel=True),
    "Relu": OpDef(s.same, k.op_relu, quant="lut", activation="clamp", per_channel=True),
    "LeakyRelu": OpDef(s.same, k.op_leaky_relu, quant="lut", activation="table", per_channel=True),
    "Clip": OpDef(s.same, k.op_clip, quant="lut", activation="clamp", per_channel=True),
    "Sigmoid": OpDef(s.same, k.op_sigmoid, quant="lut", activation="table", per_channel=True),
    "Tanh": OpDef(s.same, k.op_tanh, quant="lut", activation="table", per_channel=True),
    # a binarizing activation: 1-bit (bipolar) outputs are thresholds (hwflow.quant.qgraph)
    "Sign": OpDef(s.same, k.op_sign, quant="lut", activation="table", per_channel=True),
    "MaxPool": OpDef(s.pool, k.op_maxpool, quant="maxpool", per_channel=True),
    "AveragePool": OpDef(s.pool, k.op_avgpool, quant="avgpool", per_channel=True),
    "GlobalAveragePool": OpDef(s.global_pool, k.op_global_avgpool, quant="avgpool", per_channel=True),
    # a mean or maximum over every spatial axis (torch's AdaptiveAvgPool to 1 as its dynamo exporter
    # writes it; Keras' GlobalMaxPooling): rewritten on import into a window over the whole map
    "ReduceMean": OpDef(s.reduce, k.op_reduce_mean, accept="rewrite"),
    "ReduceMax": OpDef(s.reduce, k.op_reduce_max, accept="rewrite"),
    "GlobalMaxPool": OpDef(s.global_pool, k.op_global_maxpool, accept="rewrite"),
    "Flatten": OpDef(s.flatten, k.op_flatten, quant="layout", host_tail=True),
    "Reshape": OpDef(s.reshape, k.op_reshape, quant="layout", host_tail=True),
    "Transpose": OpDef(s.transpose, k.op_transpose, host_tail=True),
    "Concat": OpDef(s.concat, k.op_concat, quant="concat", params=True),
    # spatial zero padding: the passes fuse it into the Conv/pool after it
    "Pad": OpDef(s.pad, k.op_pad, operands="first", per_channel=True),
    "Identity": OpDef(s.same, k.op_identity, quant="layout", host_tail=True, per_channel=True),
    "Dropout": OpDef(s.same, k.op_identity, quant="layout", per_channel=True),
    "Cast": OpDef(s.same, k.op_cast, host_tail=True),
    "Constant": OpDef(s.constant, k.op_constant, quant="const"),
    "Softmax": OpDef(s.softmax, k.op_softmax, accept="host"),
    "LogSoftmax": OpDef(s.softmax, k.op_logsoftmax, accept="host"),
    "ArgMax": OpDef(s.argmax, k.op_argmax, accept="host"),
    # skl2onnx's class-label lookup
    "ArrayFeatureExtractor": OpDef(s.array_feature_extractor, k.op_array_feature_extractor, accept="host",
                                   domain="ai.onnx.ml"),
    "ConstantOfShape": OpDef(s.constant_of_shape, k.op_constant_of_shape, accept="const"),
    "Shape": OpDef(s.shape, k.op_shape, accept="const", shape_only=True),
    "Gather": OpDef(s.gather, k.op_gather, accept="const"),
    "Unsqueeze": OpDef(s.unsqueeze, k.op_unsqueeze, quant="layout", host_tail=True),
    "Squeeze": OpDef(s.squeeze, k.op_squeeze, quant="layout", host_tail=True),
    "Sum": OpDef(s.broadcast, k.op_sum, accept="rewrite", quant="add"),
    # QONNX (Brevitas): pre-quantized models, quantized exactly by hwflow.quant.qonnx
    "Quant": OpDef(s.same, k.op_quant, domain=QONNX_DOMAIN, fold=False, params=True),
    "BipolarQuant": OpDef(s.same, k.op_bipolar_quant, domain=QONNX_DOMAIN, fold=False, params=True),
    "Trunc": OpDef(s.same, k.op_trunc, domain=QONNX_DOMAIN, fold=False, params=True),
}

#: QONNX's custom ops (``Quant``, ``BipolarQuant``, ``Trunc``).
QONNX_OPS = tuple(op for op, d in OPS.items() if d.domain == QONNX_DOMAIN)

#: Ops a user model may contain after import.
SUPPORTED_OPS = tuple(op for op, d in OPS.items() if d.accept in ("model", "host"))
#: Ops that run on the host after the accelerator, at the network's tail.
HOST_OPS = tuple(op for op, d in OPS.items() if d.host)
#: Ops accepted only when they fold to constants during import (or in the host tail).
CONST_ONLY_OPS = tuple(op for op, d in OPS.items() if d.accept == "const")
#: Elementwise activations the optimizer fuses into a Conv/Gemm.
ACTIVATIONS = tuple(op for op, d in OPS.items() if d.activation)
#: Layers with weights (and a bias slot) that the passes fold into and the pruner prunes.
WEIGHTED_OPS = tuple(op for op, d in OPS.items() if d.weighted)


def infer_node_shapes(
    node: Node, shapes: list[tuple[int, ...] | None], consts: list[np.ndarray | None]
) -> list[tuple[int, ...]] | None:
    """Output shapes of ``node`` given its input shapes (None for omitted inputs).

    Returns None when the shapes depend on a tensor computed at run time (a Reshape
    whose target shape is not folded yet).

    Raises
    ------
    ModelError
        If the inputs do not fit together, naming the node.
    UnsupportedOpError
        If hwflow has no shape rule for the op.
    """
    d = OPS.get(node.op)
    if d is None:
        raise UnsupportedOpError(f"node {node.name!r}: no shape rule for op {node.op}")
    try:
        return [tuple(int(x) for x in sh) for sh in d.shape(node, shapes, consts)]
    except s.Unknown:
        return None
    except (s.Mismatch, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelError(f"node {node.name!r} ({node.op}): inconsistent shapes: {exc}") from None


def check_shapes(graph: Graph) -> None:
    """Re-derive every node's output shapes and compare them with the declared ones.

    Raises
    ------
    ModelError
        Naming the first node whose declared output shape differs from the one its
        inputs give, or whose inputs do not fit together.
    """
    for node in graph.nodes:
        shapes = [graph.shape(t) if t else None for t in node.inputs]
        consts = [graph.const(t) if t else None for t in node.inputs]
        derived = infer_node_shapes(node, shapes, consts)
        if derived is None:
            continue
        for t, want in zip(node.outputs, derived):
            if t and graph.shape(t) != want:
                raise ModelError(
                    f"node {node.name!r} ({node.op}): output {t!r} is declared {graph.shape(t)!r} "
                    f"but its inputs give {want!r}"
                )


def run_node(node: Node, ins: list) -> list[np.ndarray]:
    """Evaluate one node on numpy inputs (``None`` for omitted optional inputs)."""
    d = OPS.get(node.op)
    if d is None:
        raise UnsupportedOpError(
            f"node {node.name!r}: op {node.op} has no float kernel; supported: {', '.join(sorted(OPS))}"
        )
    return [np.asarray(o) for o in d.kernel(node, ins)]
