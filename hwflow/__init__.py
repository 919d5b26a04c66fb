"""hwflow: compile trained ONNX networks into verified hardware for small FPGAs."""

from importlib.metadata import PackageNotFoundError, version

from .errors import HwflowError

try:
    __version__ = version("hwflow")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["HwflowError", "__version__"]
