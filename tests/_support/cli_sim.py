"""``hwflow simulate BUILD --json`` through the CLI, checked exact (a test helper)."""

from __future__ import annotations

import json
from pathlib import Path

from hwflow.cli import main


def simulate_exact(capsys, build: Path, simulator: str, *extra: str) -> dict:
    """Simulate ``build`` and check it passed with no mismatch and exactly the manifest's
    cycles; the JSON result."""
    capsys.readouterr()
    rc = main(["simulate", str(build), "--simulator", simulator, "--json", *extra])
    res = json.loads(capsys.readouterr().out)
    manifest = json.loads((build / "manifest.json").read_text())
    assert res["first_mismatch"] == "" and (rc, res["passed"], res["mismatches"]) == (0, True, 0), res
    assert res["cycles"] == res["predicted_cycles"] == manifest["cycles"]
    return res
