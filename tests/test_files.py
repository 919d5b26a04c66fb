"""hwflow._files: atomic writes keep a plain open's permissions and leave nothing behind; jsonable."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hwflow._files import atomic_directory, atomic_write, jsonable


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


def test_jsonable_keeps_plain_nested_lists_and_converts_the_rest():
    rows = np.arange(24).reshape(2, 3, 4, 1).tolist()  # a weight tensor as quant.json holds it
    assert jsonable(rows) is rows  # already plain: kept, not copied
    for v, want in [
        ([], []),
        ([[[]]], [[[]]]),
        ([[1, "a", None, True, 1.5]], [[1, "a", None, True, 1.5]]),
        ([[1], [[2]]], [[1], [[2]]]),  # leaves at different depths: converted element by element
        ([[1], 2], [[1], 2]),
        ([[1], [np.float32(0.5)]], [[1], [0.5]]),
        ([(1, np.int64(2))], [[1, 2]]),
        ([[Path("a")]], [["a"]]),
        ({1: np.arange(2)}, {"1": [0, 1]}),
    ]:
        got = jsonable(v)
        assert got == want and json.loads(json.dumps(got)) == want
