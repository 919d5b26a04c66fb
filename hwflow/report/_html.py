"""Small HTML building blocks shared by the report sections."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass
class Section:
    """One report section: ``<section id=...><h2>title</h2>body</section>``."""

    id: str
    title: str
    body: str

    def render(self) -> str:
        return f'<section id="{self.id}">\n<h2>{esc(self.title)}</h2>\n{self.body}\n</section>'


def esc(text: object) -> str:
    return html.escape(str(text))


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def para(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def fmt(v: object, digits: int = 2) -> str:
    """Numbers for tables: thousands separators, ``digits`` decimals for floats."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "–"
        if v in (float("inf"), float("-inf")):
            return "∞" if v > 0 else "−∞"
        return f"{v:,.{digits}f}"
    return str(v)


def table(header: list[str], rows: list[list[object]], cls: str = "") -> str:
    """An HTML table; cells are escaped and numbers formatted with :func:`fmt`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"
