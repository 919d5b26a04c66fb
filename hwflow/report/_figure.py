"""Matplotlib figures rendered to embedded PNGs, without pyplot (no global backend state)."""

from __future__ import annotations

import base64
import html
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figure(width: float = 7.5, height: float = 3.2) -> Figure:
    """A new Agg figure of ``width`` x ``height`` inches."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def img_tag(fig: Figure, alt: str, name: str) -> str:
    """An ``<img>`` with the figure embedded as base64 PNG; ``name`` is a ``data-name``
    (what ``--save-figures`` uses as the file name)."""
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return (f'<img class="fig" data-name="{html.escape(name)}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}">')
