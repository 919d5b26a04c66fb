"""hwflow.data.load_data: formats and every bad-input case, one clear line each."""

import numpy as np
import pytest

from hwflow.data import load_data
from hwflow.errors import DataError


def test_npz_with_labels_and_flat_reshape(tmp_path):
    x = np.random.default_rng(0).random((5, 64)).astype(np.float64)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(5))
    xs, y = load_data(tmp_path / "d.npz", (1, 1, 8, 8))
    assert xs.shape == (5, 1, 8, 8) and xs.dtype == np.float32 and y.tolist() == [0, 1, 2, 3, 4]


def test_npy_without_labels(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((3, 4), np.uint8))
    x, y = load_data(tmp_path / "d.npy", (1, 4))
    assert x.shape == (3, 4) and y is None


@pytest.mark.parametrize("make,msg", [
    (lambda p: np.savez(p, x=np.zeros((4, 5))), r"x has shape \(4, 5\), the model expects \(N, 4\)"),
    (lambda p: np.savez(p, x=np.zeros((0, 4))), "no samples"),
    (lambda p: np.savez(p, x=np.array([[0, np.nan, 0, 0]])), "NaN or Inf"),
    (lambda p: np.savez(p, x=np.array([["a", "b", "c", "d"]])), "expected a numeric"),
    (lambda p: np.savez(p, z=np.zeros((2, 4))), "has no array 'x'"),
    (lambda p: np.savez(p, x=np.zeros((2, 4)), y=np.zeros(3)), r"y has shape \(3,\)"),
    (lambda p: p.write_bytes(b"junk"), "not a readable"),
])
def test_bad_data(tmp_path, make, msg):
    p = tmp_path / "d.npz"
    make(p)
    with pytest.raises(DataError, match=msg) as err:
        load_data(p, (1, 4))
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "nope.npz", (1, 4))
