"""``hwflow synth`` on the command line: exit codes and one-line messages."""

import pytest

from hwflow.cli import main
from hwflow._files import sha256_file
from hwflow.build import FORMAT, RESULTS, write_manifest


def _seal(path, target):
    """Seal ``path`` as a build of its Verilog file t.v for ``target``."""
    write_manifest(path / "manifest.json", {"format": FORMAT, "results": RESULTS, "top": "t", "target": target,
                                            "verilog": "t.v", "files": {"t.v": sha256_file(path / "t.v")}})


def _demo_build(path, target):
    """A sealed build of one (trivial) Verilog file for ``target``."""
    (path / "t.v").write_text("module t; endmodule\n")
    _seal(path, target)


def test_missing_build_dir(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "does not exist; run hwflow compile first" in err


def test_not_a_build_dir(tmp_path, capsys):
    assert main(["synth", str(tmp_path)]) == 2
    assert "is not an hwflow build (no manifest.json)" in capsys.readouterr().err


def test_manifest_without_top(tmp_path, capsys):
    write_manifest(tmp_path / "manifest.json", {"format": FORMAT, "target": "fpga-small", "files": {}})
    assert main(["synth", str(tmp_path)]) == 2
    assert "manifest.json is malformed (KeyError: 'top')" in capsys.readouterr().err


def test_generic_target_cannot_be_synthesized(tmp_path, capsys):
    _demo_build(tmp_path, "generic")
    assert main(["synth", str(tmp_path)]) == 2
    assert "'generic', which has no device" in capsys.readouterr().err


def test_unknown_target_in_manifest(tmp_path, capsys):
    _demo_build(tmp_path, "fpga-huge")
    assert main(["synth", str(tmp_path)]) == 2
    assert "unknown target 'fpga-huge'; known targets:" in capsys.readouterr().err


def test_corrupt_handoff(tmp_path, capsys):
    _demo_build(tmp_path, "fpga-small")
    (tmp_path / "handoff.json").write_text("{")
    assert main(["synth", str(tmp_path)]) == 2
    assert "delete it and rerun hwflow synth" in capsys.readouterr().err


@pytest.mark.slow
def test_tool_failure_keeps_its_log(tmp_path, capsys):
    # A Verilog syntax error: Yosys fails, the message quotes its ERROR line and the log
    # it names exists.
    (tmp_path / "t.v").write_text("module t(clk, cycles); input clk; output [31:0] cycles;\n"
                                  "assign cycles = ;\nendmodule\n")
    _seal(tmp_path, "fpga-small")
    assert main(["synth", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwflow: error: Yosys failed: ") and "ERROR" in err
    log = err.split("(full log: ")[1].rstrip(")")
    assert log == str(tmp_path / "synth" / "yosys.log")
    assert "syntax error" in open(log).read()
