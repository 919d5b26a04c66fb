"""The pruning and sharing options shared by ``eval``, ``quantize`` and ``compile``.

They only build a :class:`~hwflow.config.PruneConfig`; the work is
:func:`hwflow.flow.quantize_graph`::

    @click.command("eval")
    @prune_options
    def eval_cmd(model, **kwargs):
        prune = prune_config(**kwargs)   # None unless --prune, --prune-channels or --share

Each value is checked as it is parsed, by the config's own check under the flag's name.
"""

from __future__ import annotations

import click

from ..config import PRUNE_NORMS, PRUNE_SCOPES, PruneConfig, check_channel_fraction, check_share, check_sparsity
from ..errors import OptionError
from ._checks import checked

__all__ = ["prune_options", "prune_config", "PRUNE_OPTION_NAMES"]

#: keyword names the decorator adds
PRUNE_OPTION_NAMES = ("prune", "prune_channels", "share", "prune_scope", "prune_norm", "prune_bias_correction")


def prune_options(fn):
    """Click decorator adding ``--prune``, ``--prune-channels``, ``--share`` and their settings."""
    opts = [
        click.option("--prune", "prune", type=float, default=None, metavar="SPARSITY",
                     callback=checked(check_sparsity, "--prune sparsity"),
                     help="Magnitude pruning: fraction of Conv/Gemm weights set to zero, in [0, 1)."),
        click.option("--prune-scope", type=click.Choice(PRUNE_SCOPES), default="global", show_default=True,
                     help="--prune with one threshold over all layers, or the same sparsity in each layer."),
        click.option("--prune-channels", "prune_channels", type=float, default=None, metavar="FRACTION",
                     callback=checked(check_channel_fraction, "--prune-channels"),
                     help="Structured pruning: fraction of each layer's output channels removed (with the next "
                          "layer's inputs), in [0, 1)."),
        click.option("--prune-norm", type=click.Choice(PRUNE_NORMS), default="l1", show_default=True,
                     help="Channel score for --prune-channels."),
        click.option("--prune-bias-correction", is_flag=True,
                     help="After pruning, correct each layer's bias for its mean output shift (needs --calib)."),
        click.option("--share", "share", type=int, default=None, metavar="BITS",
                     callback=checked(check_share, "--share"),
                     help="Weight sharing: per-layer k-means codebook of 2^BITS integer weights (BITS 2..5); "
                          "the weight ROM then holds BITS-bit indices."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def prune_config(**kwargs) -> PruneConfig | None:
    """The PruneConfig the options ask for; None when none of ``--prune``, ``--prune-channels``
    and ``--share`` is given (unknown keys are ignored).

    Raises
    ------
    OptionError
        ``--prune-bias-correction`` without ``--prune`` or ``--prune-channels``.
    """
    sparsity, channels = kwargs.get("prune"), kwargs.get("prune_channels")
    if kwargs.get("prune_bias_correction") and sparsity is None and channels is None:
        raise OptionError("--prune-bias-correction needs --prune or --prune-channels")
    if sparsity is None and channels is None and kwargs.get("share") is None:
        return None
    return PruneConfig(sparsity=sparsity, scope=kwargs.get("prune_scope", "global"), channels=channels,
                       norm=kwargs.get("prune_norm", "l1"), bias_correction=bool(kwargs.get("prune_bias_correction")),
                       share=kwargs.get("share"))
