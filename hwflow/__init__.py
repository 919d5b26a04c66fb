"""hwflow: compile trained ONNX networks into verified hardware for small FPGAs.

The Python API (:mod:`hwflow.api`)::

    import hwflow

    build = hwflow.compile("model.onnx", target="fpga-small", calib="calib.npz", pe=4, simd=4)
    build.predict(x)                          # bit-exact integer reference on floats or codes
    build.simulate("verilator", random=100)   # the hardware against it, bit and cycle exact
    build.synth()                             # Yosys + nextpnr: resources and Fmax
    build.report("r.html")
    hwflow.load("build/model")
    hwflow.finetune("model.onnx", "train.npz", out="qat.onnx",   # needs hwflow[train]
                    quant=hwflow.QuantConfig(wbits=2, abits=4))

Options travel as typed configs: :class:`QuantConfig`, :class:`AutoBitsConfig`,
:class:`PruneConfig`, :class:`ScheduleConfig`. Every user mistake raises a
:class:`HwflowError` with a one-line message.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import HwflowError

try:
    __version__ = version("hwflow")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["compile", "load", "fit_check", "finetune", "Build", "TrainConfig", "QuantConfig", "AutoBitsConfig",
           "PruneConfig", "ScheduleConfig", "HwflowError", "__version__"]

# Loaded on first use, so that `import hwflow` (and the CLI's start-up) stays light.
_LAZY = {"compile": "api", "load": "api", "fit_check": "api", "Build": "api", "QuantConfig": "config",
         "AutoBitsConfig": "config", "PruneConfig": "config", "ScheduleConfig": "config",
         "finetune": "train", "TrainConfig": "train"}  # train imports torch only when called


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
