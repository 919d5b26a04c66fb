"""PyTorch, the optional engine of fine-tuning (``pip install 'hwflow[train]'``)."""

from __future__ import annotations

from ..errors import ToolError

#: The one line a user without torch reads.
MISSING = "fine-tuning needs PyTorch, which is not installed: pip install 'hwflow[train]'"


def require_torch():
    """The ``torch`` module, or ToolError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ToolError(MISSING) from None
    return torch
