"""hwflow's float graph IR: Graph/Node/Tensor, shape rules, ONNX import and export."""

from .export import to_onnx
from .graph import Graph, Node, Tensor
from .onnx_import import HOST_OPS, SUPPORTED_OPS, from_onnx, load_model
from .shapes import check_shapes

__all__ = [
    "Graph", "Node", "Tensor", "check_shapes", "load_model", "from_onnx", "to_onnx",
    "SUPPORTED_OPS", "HOST_OPS",
]  # fmt: skip
