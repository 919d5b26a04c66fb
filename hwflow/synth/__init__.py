"""Hand-off to synthesis: bundles, Yosys and nextpnr runners, report parsing.

``hwflow compile`` calls :func:`write_handoff` to put the bundle in BUILD;
``hwflow synth`` calls :func:`synthesize`, which records its report in BUILD.
"""

from .bundle import write_handoff
from .flow import synthesize
from .nextpnr import parse_report
from .report import build_report, format_report, misses
from .yosys import parse_stat

__all__ = ["build_report", "format_report", "misses", "parse_report", "parse_stat",
           "synthesize", "write_handoff"]
