"""Finding and running the synthesis tools (YoWASP wheels or system binaries)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..errors import ToolError


def find_tool(names: list[str], module: str, pip: str,
              min_version: tuple[int, int] | None = None,
              search_path: str | None = None) -> list[str]:
    """argv prefix for the first of ``names`` on the PATH, else the YoWASP ``module`` run
    by this Python (a pip install without its scripts on the PATH).

    System binaries (names without ``yowasp-``) must be at least ``min_version``.
    """
    for name in names:
        exe = shutil.which(name, path=search_path)
        if exe and (name.startswith("yowasp-") or min_version is None
                    or _version(exe) >= min_version):
            return [exe]
    if _find_module(module):
        script = pip  # the YoWASP console script has the package's name
        entry = script.replace("yowasp-", "_run_").replace("-", "_") + "_argv"
        return [sys.executable, "-c",
                f"import sys, {module}; sys.argv[0] = {script!r}; sys.exit({module}.{entry}())"]
    need = f" >= {min_version[0]}.{min_version[1]}" if min_version else ""
    tool = pip.replace("yowasp-", "")
    raise ToolError(f"{tool}{need} not found; install it with: pip install {pip}")


def _find_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _version(exe: str) -> tuple[int, int]:
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    m = re.search(r"(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def run_tool(argv: list[str], cwd: Path, log: Path, what: str) -> float:
    """Run ``argv`` in ``cwd`` with its output in ``log``; seconds taken, ToolError on failure.

    The failure message quotes the tool's first ERROR line and names the log.
    """
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        try:
            proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        except OSError as exc:
            raise ToolError(f"cannot run {what} ({argv[0]}): {exc.strerror}") from None
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        text = log.read_text(encoding="utf-8", errors="replace")
        errors = [line.strip() for line in text.splitlines() if "ERROR" in line]
        detail = errors[0] if errors else f"exit code {proc.returncode}"
        raise ToolError(f"{what} failed: {detail} (full log: {log})")
    return seconds
