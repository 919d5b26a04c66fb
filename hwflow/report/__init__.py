"""hwflow.report: the HTML compile report, design-space sweeps and progress display.

Imports are lazy so that ``from hwflow.report.progress import progress`` (called by
other commands) does not load matplotlib. (``progress`` is not re-exported here: the
name is the submodule's.)
"""

from __future__ import annotations

import importlib

__all__ = ["SECTIONS", "render_report", "write_report", "run_sweep"]

_WHERE = {"SECTIONS": "html_report", "render_report": "html_report", "write_report": "html_report",
          "run_sweep": "sweep"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
