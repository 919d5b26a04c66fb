"""Reference interpreters: float (numpy, equal to onnxruntime) and bit-exact integer."""

# hwflow.quant first: its quantize module imports ref.integer, which imports quant.arith;
# entering the cycle from the quant side lets both finish (importing hwflow.ref alone
# would otherwise fail with a partially initialised module).
from .. import quant as _quant  # noqa: F401,E402  isort: skip
from .integer import acc_bounds, run_int, run_int_batch, run_layer

__all__ = ["acc_bounds", "run_int", "run_int_batch", "run_layer"]
