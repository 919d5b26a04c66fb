"""hwflow's error hierarchy.

Every mistake a user can make (bad model, bad data, bad option, a design too big
for the target, a missing tool) raises a subclass of :class:`HwflowError`. The CLI
prints its message as one line and exits with code 2; nothing else does that, so
any other exception is a bug in hwflow, not in the user's input.
"""

__all__ = [
    "HwflowError",
    "ModelError",
    "UnsupportedOpError",
    "DataError",
    "OptionError",
    "TargetError",
    "FitError",
    "ToolError",
    "BuildError",
]


class HwflowError(Exception):
    """Base of every error caused by the user's input or environment."""


class ModelError(HwflowError):
    """The model file is unreadable, malformed, or has values hwflow cannot use."""


class UnsupportedOpError(ModelError):
    """The model uses an operator (or attribute) hwflow does not support."""


class DataError(HwflowError):
    """Calibration or test data has the wrong shape, dtype or content."""


class OptionError(HwflowError):
    """A command-line or API option has an invalid value."""


class TargetError(HwflowError):
    """A target name is unknown or a target file is malformed."""


class FitError(HwflowError):
    """The design does not fit the target's resources."""


class ToolError(HwflowError):
    """An external tool (simulator, Yosys, nextpnr) is missing or failed."""


class BuildError(HwflowError):
    """A build directory is missing, incomplete, or was edited by hand."""
