"""hwflow._files: atomic writes keep a plain open's permissions and leave nothing behind."""

import os

import pytest

from hwflow._files import atomic_directory, atomic_write


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_modes_are_a_plain_open_and_mkdir(tmp_path, umask_027):
    f = atomic_write(tmp_path / "a.txt", "x")
    assert f.read_text() == "x" and f.stat().st_mode & 0o777 == 0o640
    with atomic_directory(tmp_path / "d") as d:
        (d / "f").write_text("y")
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_a_failure_leaves_the_old_output_and_no_temporary(tmp_path, exc):
    atomic_write(tmp_path / "a.txt", "old")
    with pytest.raises(exc), atomic_directory(tmp_path / "d") as d:
        (d / "f").write_text("half")
        raise exc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old"
