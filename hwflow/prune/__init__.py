"""Pruning and weight sharing: magnitude and channel pruning, k-means sharing, storage report.

Float-graph stages (before quantization): :func:`prune_channels`, :func:`prune_magnitude`,
:func:`correct_bias`. Integer stages (on the QGraph): :func:`mask_qgraph` (keeps pruned
weights at zero after quantization), :func:`share_weights`. :func:`storage_report` counts
the bits, Deep Compression style.
"""

from .bias_correction import correct_bias
from .channels import channel_plan, prune_channels
from .magnitude import check_sparsity, mask_qgraph, prune_magnitude
from .sharing import SHARE_BITS, check_share_bits, codebook_bits, codebook_indices, kmeans_1d, share_weights
from .storage import entropy_bits, format_storage, sparse_entries, storage_report

__all__ = [
    "correct_bias", "channel_plan", "prune_channels", "check_sparsity", "mask_qgraph", "prune_magnitude",
    "SHARE_BITS", "check_share_bits", "codebook_bits", "codebook_indices", "kmeans_1d", "share_weights",
    "entropy_bits", "format_storage", "sparse_entries", "storage_report",
]
