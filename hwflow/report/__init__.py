"""hwflow.report: the HTML compile report, design-space sweeps and progress display."""

from .html_report import SECTIONS, render_report, write_report
from .progress import progress, track

__all__ = ["SECTIONS", "render_report", "write_report", "progress", "track"]
