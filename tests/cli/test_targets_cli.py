"""``hwflow targets`` and ``--target`` errors on the command line."""

import json

from hwflow.cli import main


def test_targets_table(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["target", "family", "device", "package"]
    small = next(line for line in lines if line.startswith("fpga-small"))
    assert "*" in small and "LFE5U-25F" in small and "24288" in small and "56x18K" in small
    tiny = next(line for line in lines if line.startswith("fpga-tiny"))
    assert "UP5K" in tiny and "30x4K" in tiny and " 39 " in tiny and "40 MHz" in tiny


def test_targets_json(capsys):
    assert main(["targets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == ["fpga-tiny", "fpga-small", "fpga-medium", "generic"]
    assert data[1]["dsps"] == 28 and data[3]["luts"] is None
