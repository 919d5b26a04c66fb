"""Quantization: schemes, calibration, accuracy recovery, and the QGraph they produce."""

from .arith import bits_for_range, int_range, requantize, rshift_round
from .qgraph import LAYER_OPS, QGraph, QLayer, QTensor

__all__ = [
    "LAYER_OPS", "QGraph", "QLayer", "QTensor",
    "bits_for_range", "int_range", "requantize", "rshift_round",
]

from .config import QuantConfig  # noqa: E402
from .quantize import quantize  # noqa: E402

__all__ += ["QuantConfig", "quantize"]
