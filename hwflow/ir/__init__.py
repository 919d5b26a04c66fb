"""hwflow's float graph IR: Graph/Node/Tensor, the op registry (shape rules, float
kernels, what each stage does with an op), ONNX import and export."""

from .export import to_onnx
from .graph import Graph, Node, Tensor
from .onnx_import import from_onnx, load_model
from .ops import HOST_OPS, OPS, SUPPORTED_OPS, check_shapes

__all__ = [
    "Graph", "Node", "Tensor", "check_shapes", "load_model", "from_onnx", "to_onnx",
    "OPS", "SUPPORTED_OPS", "HOST_OPS",
]  # fmt: skip
