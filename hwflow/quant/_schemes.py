"""Scheme lookup by name."""

from .scheme_asymmetric import AsymmetricScheme
from .scheme_pow2 import Pow2Scheme
from .scheme_symmetric import SymmetricScheme

SCHEME_CLASSES = {c.name: c for c in (Pow2Scheme, SymmetricScheme, AsymmetricScheme)}


def make_scheme(name: str, mbits: int):
    """The scheme called ``name`` with a ``mbits``-bit multiplier."""
    return SCHEME_CLASSES[name](mbits)
