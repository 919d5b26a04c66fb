"""Mapping a QGraph onto the PE x SIMD MAC array: tiling, exact cycles, memory map, budget."""

from .budget import check_budget
from .estimate import estimate
from .program import LayerProgram, Program, TensorMap
from .schedule import schedule

__all__ = ["schedule", "Program", "LayerProgram", "TensorMap", "check_budget", "estimate"]
