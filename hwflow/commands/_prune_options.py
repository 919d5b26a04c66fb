"""The pruning and sharing options shared by ``eval``, ``quantize`` and ``compile``.

Usage in a command::

    @click.command("eval")
    @quant_options
    @prune_options
    def eval_cmd(model, **kwargs):
        pruned, info = prune_graph(graph, calib_x, **kwargs)   # float stages (or as is)
        qg = quantize(pruned, ...)
        storage = finish_pruning(qg, info)                     # integer stages; None if no option

or all at once: ``qg, storage = apply_pruning(graph, config, calib_x, **kwargs)``.
Order: channel pruning, magnitude pruning, bias correction (float graph), quantization,
zeros put back, weight sharing (integer graph).
"""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from ..errors import OptionError

__all__ = ["prune_options", "prune_graph", "finish_pruning", "apply_pruning", "prune_settings",
           "PRUNE_OPTION_NAMES"]

#: keyword names the decorator adds
PRUNE_OPTION_NAMES = ("prune", "prune_channels", "share", "prune_scope", "prune_norm", "prune_bias_correction")


def prune_options(fn):
    """Click decorator adding ``--prune``, ``--prune-channels``, ``--share`` and their settings."""
    opts = [
        click.option("--prune", "prune", type=float, default=None, metavar="SPARSITY",
                     help="Magnitude pruning: fraction of Conv/Gemm weights set to zero, in [0, 1)."),
        click.option("--prune-scope", type=click.Choice(["global", "layer"]), default="global", show_default=True,
                     help="--prune with one threshold over all layers, or the same sparsity in each layer."),
        click.option("--prune-channels", "prune_channels", type=float, default=None, metavar="FRACTION",
                     help="Structured pruning: fraction of each layer's output channels removed (with the next "
                          "layer's inputs), in [0, 1)."),
        click.option("--prune-norm", type=click.Choice(["l1", "l2"]), default="l1", show_default=True,
                     help="Channel score for --prune-channels."),
        click.option("--prune-bias-correction", is_flag=True,
                     help="After pruning, correct each layer's bias for its mean output shift (needs --calib)."),
        click.option("--share", "share", type=int, default=None, metavar="BITS",
                     help="Weight sharing: per-layer k-means codebook of 2^BITS integer weights (BITS 2..5); "
                          "the weight ROM then holds BITS-bit indices."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def prune_settings(**kwargs) -> dict[str, Any]:
    """The pruning options among ``kwargs``, checked; ``{}`` when none is asked for.

    Raises
    ------
    OptionError
        Sparsity or fraction outside [0, 1), sharing bits outside 2..5.
    """
    from ..prune import check_share_bits, check_sparsity

    s = {k: kwargs.get(k) for k in PRUNE_OPTION_NAMES if kwargs.get(k) is not None}
    if not any(s.get(k) is not None for k in ("prune", "prune_channels", "share")):
        if s.get("prune_bias_correction"):
            raise OptionError("--prune-bias-correction needs --prune or --prune-channels")
        return {}
    if s.get("prune") is not None:
        s["prune"] = check_sparsity(s["prune"], "--prune sparsity")
    if s.get("prune_channels") is not None:
        f = s["prune_channels"]
        if not 0.0 <= f < 1.0:
            raise OptionError(f"--prune-channels must be in [0, 1) (fraction of each layer's channels removed; "
                              f"removing them all leaves nothing to compute), not {f!r}")
    if s.get("share") is not None:
        try:
            s["share"] = check_share_bits(s["share"])
        except OptionError:
            raise OptionError(f"--share must be 2..5 bits (a codebook of 4..32 weights), not {s['share']!r}") from None
    if s.get("prune_bias_correction") and s.get("prune") is None and s.get("prune_channels") is None:
        raise OptionError("--prune-bias-correction needs --prune or --prune-channels")
    return s


def prune_graph(graph, calib: np.ndarray | None = None, **kwargs):
    """The float-graph stages: ``(graph, info)``; the graph unchanged and ``info`` None without options."""
    from ..prune import correct_bias, prune_channels, prune_magnitude

    s = prune_settings(**kwargs)
    if not s:
        return graph, None
    if s.get("prune_bias_correction") and calib is None:
        raise OptionError("--prune-bias-correction measures mean outputs on data: pass --calib CALIB.npz")
    from ..prune._layers import weight_nodes

    pruned, info = graph, {"settings": s, "masks": {}, "channels": None,
                           "original_weights": {n.name: graph.tensors[n.inputs[1]].size for n in weight_nodes(graph)}}
    if s.get("prune_channels"):
        pruned, info["channels"] = prune_channels(pruned, s["prune_channels"], norm=s.get("prune_norm", "l1"))
    if s.get("prune"):
        pruned, info["masks"] = prune_magnitude(pruned, s["prune"], scope=s.get("prune_scope", "global"))
    if s.get("prune_bias_correction"):
        pruned, _ = correct_bias(graph, pruned, calib)
    return pruned, info


def finish_pruning(qg, info) -> dict | None:
    """The integer stages on ``qg`` (in place): zeros put back, weights shared; returns the storage report."""
    from ..prune import mask_qgraph, share_weights, storage_report

    if info is None:
        return None
    s = info["settings"]
    if info["masks"]:
        mask_qgraph(qg, info["masks"])
    if s.get("share"):
        share_weights(qg, s["share"])
    qg.attrs["pruning"] = {k: v for k, v in s.items()}
    if info["channels"] is not None:
        qg.attrs["pruning"]["channels"] = {k: list(v) for k, v in info["channels"]["pruned"].items()}
    report = storage_report(qg, info["original_weights"])
    report["settings"] = dict(qg.attrs["pruning"])
    return report


def apply_pruning(graph, qconfig=None, calib: np.ndarray | None = None, **kwargs):
    """Prune, quantize with ``qconfig`` and share: ``(qgraph, storage report or None)``."""
    from ..quant import quantize

    pruned, info = prune_graph(graph, calib, **kwargs)
    qg = quantize(pruned, qconfig, calib)
    return qg, finish_pruning(qg, info)
