"""Window geometry shared by shape inference, the float kernels, the quantizer and the passes.

ONNX Conv/MaxPool/AveragePool describe padding in four ways (explicit ``pads`` or
``auto_pad`` SAME_UPPER/SAME_LOWER/VALID) and pools may round up (``ceil_mode``). This
module turns all of them into one explicit description so nobody re-derives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Window:
    """Resolved geometry of a sliding window over ``len(kernel)`` spatial axes."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def pads(self) -> tuple[int, ...]:
        """ONNX order: all begins, then all ends."""
        return self.pads_begin + self.pads_end


def _as_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def window(in_spatial: Sequence[int], kernel: Sequence[int], attrs: dict[str, Any]) -> Window:
    """Resolve a Conv/pool node's window from its spatial input size and attributes.

    Parameters
    ----------
    in_spatial : sequence of int
        Spatial input extent (without N and C).
    kernel : sequence of int
        Kernel extent per spatial axis.
    attrs : dict
        The node's attributes (``strides``, ``pads``, ``dilations``, ``auto_pad``,
        ``ceil_mode``); missing ones take the ONNX defaults.
    """
    r = len(kernel)
    kernel = tuple(int(k) for k in kernel)
    strides = tuple(int(s) for s in attrs.get("strides") or (1,) * r)
    dilations = tuple(int(d) for d in attrs.get("dilations") or (1,) * r)
    auto_pad = _as_str(attrs.get("auto_pad", "NOTSET")) or "NOTSET"
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    for what, v, n in (("kernel_shape", kernel, r), ("strides", strides, r), ("dilations", dilations, r)):
        if len(v) != n or min(v, default=1) < 1:
            raise ValueError(f"{what} {list(v)!r} must be {n} positive integers")
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = tuple(-(-i // s) for i, s in zip(in_spatial, strides))
        total = tuple(max((o - 1) * s + e - i, 0) for o, s, e, i in zip(out, strides, extent, in_spatial))
        small = tuple(t // 2 for t in total)
        big = tuple(t - t // 2 for t in total)
        begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        return Window(kernel, strides, dilations, begin, end, out)
    if auto_pad == "VALID":
        begin = end = (0,) * r
    else:
        pads = tuple(int(p) for p in attrs.get("pads") or (0,) * (2 * r))
        begin, end = pads[:r], pads[r:]
    out = []
    for i, b, e, k, s in zip(in_spatial, begin, end, extent, strides):
        span = i + b + e - k
        o = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= i + b:  # last window must start inside the input
            o -= 1
        out.append(o)
    return Window(kernel, strides, dilations, tuple(begin), tuple(end), tuple(out))
