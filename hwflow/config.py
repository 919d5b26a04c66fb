"""The options of a compile, as typed, validated configs.

One frozen dataclass per stage, checked where it is built (a bad value is an
:class:`~hwflow.errors.OptionError` naming it), shared by the Python API and the command
line (which builds them from its options) and recorded in the BUILD's manifest:

- :class:`~hwflow.quant.config.QuantConfig`: scheme, widths, calibration, recovery;
- :class:`~hwflow.quant.config.AutoBitsConfig`: choose per-layer weight widths;
- :class:`PruneConfig`: magnitude and channel pruning, weight sharing;
- :class:`ScheduleConfig`: the MAC array's shape and MaxPool fusion.

The ``check_*`` functions take the name to put in the message (a field here, a flag on
the command line), so both say which value is wrong in the user's own terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import OptionError
from .quant.config import AutoBitsConfig, QuantConfig

__all__ = ["QuantConfig", "AutoBitsConfig", "PruneConfig", "ScheduleConfig", "FUSE_MODES",
           "PRUNE_SCOPES", "PRUNE_NORMS", "check_positive", "check_sparsity", "check_channel_fraction",
           "check_share"]

#: ScheduleConfig.fuse values.
FUSE_MODES = ("auto", "always", "never")
#: PruneConfig.scope values: one threshold over all layers, or the same sparsity in each.
PRUNE_SCOPES = ("global", "layer")
#: PruneConfig.norm values: the channel score of structured pruning.
PRUNE_NORMS = ("l1", "l2")


def check_positive(value: Any, what: str) -> int:
    """``value`` if it is an integer >= 1, else OptionError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{what} must be a positive integer, not {value!r}")
    return value


def check_sparsity(value: Any, what: str) -> float:
    """A magnitude-pruning sparsity in [0, 1) as a float, else OptionError naming ``what``."""
    from .prune import check_sparsity as check

    return check(value, what)


def check_channel_fraction(value: Any, what: str) -> float:
    """A fraction of channels to remove, in [0, 1), else OptionError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise OptionError(f"{what} must be in [0, 1) (fraction of each layer's output channels removed; "
                          f"removing them all leaves nothing to compute), not {value!r}")
    return float(value)


def check_share(value: Any, what: str) -> int:
    """Weight-sharing bits (a codebook of 2**bits weights), else OptionError naming ``what``."""
    from .prune import SHARE_BITS

    if isinstance(value, bool) or not isinstance(value, int) or value not in SHARE_BITS:
        raise OptionError(f"{what} must be {min(SHARE_BITS)}..{max(SHARE_BITS)} bits (a codebook of "
                          f"{2 ** min(SHARE_BITS)}..{2 ** max(SHARE_BITS)} weights), not {value!r}")
    return value


def _choice(value: Any, what: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise OptionError(f"unknown {what} {value!r}; use one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class PruneConfig:
    """Pruning and weight sharing, applied around quantization.

    Order: channel pruning, magnitude pruning, bias correction (on the float graph),
    quantization, pruned weights put back to zero, weight sharing (on the integer graph).
    Give at least one of ``sparsity``, ``channels`` and ``share``.

    Parameters
    ----------
    sparsity : float or None
        Magnitude pruning: the fraction of Conv/Gemm weights set to zero, in [0, 1).
    scope : {"global", "layer"}
        ``sparsity`` with one threshold over all layers, or the same sparsity in each layer.
    channels : float or None
        Structured pruning: the fraction of each layer's output channels removed (with
        the next layer's inputs), in [0, 1).
    norm : {"l1", "l2"}
        Channel score for ``channels``.
    bias_correction : bool
        After pruning, correct each layer's bias for its mean output shift (needs
        calibration data and ``sparsity`` or ``channels``).
    share : int or None
        Weight sharing: a per-layer k-means codebook of ``2**share`` integer weights
        (2..5 bits); the weight ROM then holds ``share``-bit indices.
    """

    sparsity: float | None = None
    scope: str = "global"
    channels: float | None = None
    norm: str = "l1"
    bias_correction: bool = False
    share: int | None = None

    def __post_init__(self) -> None:
        if self.sparsity is None and self.channels is None and self.share is None:
            raise OptionError("a PruneConfig needs sparsity, channels or share (else pass prune=None)")
        if self.sparsity is not None:
            object.__setattr__(self, "sparsity", check_sparsity(self.sparsity, "sparsity"))
        if self.channels is not None:
            object.__setattr__(self, "channels", check_channel_fraction(self.channels, "channels"))
        if self.share is not None:
            check_share(self.share, "share")
        _choice(self.scope, "pruning scope", PRUNE_SCOPES)
        _choice(self.norm, "channel norm", PRUNE_NORMS)
        if not isinstance(self.bias_correction, bool):
            raise OptionError(f"bias_correction must be True or False, not {self.bias_correction!r}")
        if self.bias_correction and self.sparsity is None and self.channels is None:
            raise OptionError("pruning bias correction needs sparsity or channels to prune")

    def settings(self) -> dict[str, Any]:
        """The record of these settings kept in ``quant.json`` (``attrs["pruning"]``) and the
        manifest (``pruning.settings``), under the command line's names."""
        out: dict[str, Any] = {}
        for key, value in (("prune", self.sparsity), ("prune_channels", self.channels), ("share", self.share)):
            if value is not None:
                out[key] = value
        out.update(prune_scope=self.scope, prune_norm=self.norm, prune_bias_correction=self.bias_correction)
        return out


@dataclass(frozen=True)
class ScheduleConfig:
    """How the QGraph is mapped onto the MAC array.

    Parameters
    ----------
    pe : int or None
        Output channels computed in parallel (default: the target's).
    simd : int or None
        Inputs per PE multiplied in parallel; also the lanes of a stream beat (default:
        the target's).
    fuse : {"auto", "always", "never"}
        Fuse a MaxPool into the convolution before it when that saves cycles (``auto``),
        whenever legal (``always``), or not at all (``never``).
    argmax : bool
        Compute the class index in hardware (a comparator after the last layer; the
        output stream carries one beat, the index) instead of streaming the logits out.
    """

    pe: int | None = None
    simd: int | None = None
    fuse: str = "auto"
    argmax: bool = False

    def __post_init__(self) -> None:
        for name in ("pe", "simd"):
            if getattr(self, name) is not None:
                check_positive(getattr(self, name), name)
        _choice(self.fuse, "fuse mode", FUSE_MODES)
        if not isinstance(self.argmax, bool):
            raise OptionError(f"argmax must be True or False, not {self.argmax!r}")
