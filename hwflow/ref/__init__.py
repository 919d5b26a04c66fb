"""Reference interpreters: float (numpy, equal to onnxruntime) and bit-exact integer."""

from .integer import acc_bounds, run_int, run_layer

__all__ = ["acc_bounds", "run_int", "run_layer"]
