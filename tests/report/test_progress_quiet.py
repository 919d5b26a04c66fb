"""Progress display: drawn on a terminal only, silent when stderr is not a TTY or with --quiet."""

from __future__ import annotations

import io

import pytest

from hwflow.report.progress import enabled, progress, track


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_tty_prints_nothing(capsys):
    with progress("work", total=3) as bar:  # stderr under pytest is not a TTY
        for _ in range(3):
            bar.advance()
            bar.update(description="work: step")
    assert list(track(range(4), "items")) == [0, 1, 2, 3]
    with progress("spinner"):
        pass
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""


def test_quiet_silences_a_terminal():
    tty = _Tty()
    assert enabled(False, tty) and not enabled(True, tty)
    assert list(track([1, 2], "items", quiet=True, stream=tty)) == [1, 2]
    assert tty.getvalue() == ""


def test_terminal_gets_a_bar():
    tty = _Tty()
    with progress("compiling points", total=2, stream=tty) as bar:
        bar.advance(2)
    assert "compiling points" in tty.getvalue()


def test_broken_stream_counts_as_not_a_tty():
    s = io.StringIO()
    s.close()
    assert not enabled(False, s)


@pytest.mark.slow
def test_report_and_sweep_cli_quiet_on_non_tty(tmp_path, capsys):
    """The commands' own progress stays off when stderr is captured (not a TTY)."""
    from pathlib import Path

    from hwflow.cli import main

    models = Path(__file__).resolve().parents[2] / "examples" / "models"
    assert main(["compile", str(models / "digits_mlp.onnx"), "-o", str(tmp_path / "b"), "--vectors", "2"]) in (0, None)
    capsys.readouterr()
    assert main(["report", str(tmp_path / "b"), "-o", str(tmp_path / "r.html")]) in (0, None)
    out = capsys.readouterr()
    assert out.err == "" and "report written to" in out.out
    assert main(["report", str(tmp_path / "b"), "-o", str(tmp_path / "r.html"), "--quiet"]) in (0, None)
    assert capsys.readouterr().err == ""
