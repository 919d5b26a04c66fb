"""Quantization: schemes, calibration, accuracy recovery, the QGraph they produce, and the
bit-exact integer reference that executes it (:mod:`hwflow.quant.reference`)."""

from .arith import bits_for_range, int_range, requantize, rshift_round
from .config import AutoBitsConfig, QuantConfig
from .qgraph import LAYER_OPS, QGraph, QLayer, QTensor
from .quantize import quantize
from .reference import acc_bounds, run_int, run_int_batch, run_layer

__all__ = [
    "LAYER_OPS", "QGraph", "QLayer", "QTensor", "AutoBitsConfig", "QuantConfig", "quantize",
    "bits_for_range", "int_range", "requantize", "rshift_round",
    "acc_bounds", "run_int", "run_int_batch", "run_layer",
]
