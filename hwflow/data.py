"""Loading calibration and test data (.npz with ``x`` and optional ``y``, or .npy of ``x``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["load_data"]


def load_data(path, input_shape) -> tuple[np.ndarray, np.ndarray | None]:
    """Load samples for a model whose input has shape ``input_shape``.

    Parameters
    ----------
    path : str or pathlib.Path
        ``.npz`` holding ``x`` (and optionally ``y``, integer labels), or ``.npy`` holding ``x``.
    input_shape : tuple of int
        The model's input shape including its batch dimension of 1 (e.g. ``(1, 1, 8, 8)``).

    Returns
    -------
    x : numpy.ndarray of float32, shape ``(N, *input_shape[1:])``
    y : numpy.ndarray of int64, shape ``(N,)``, or None

    Raises
    ------
    DataError
        Unreadable file, missing ``x``, non-numeric dtype, no samples, NaN/Inf, a shape
        that does not reshape exactly to the input, or labels that do not match.
    """
    path = Path(path)
    sample = tuple(int(d) for d in input_shape)[1:]
    size = int(np.prod(sample, dtype=np.int64))
    where = f"data file {str(path)!r}"
    try:
        raw = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{where} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{where} is not a readable .npz/.npy file ({exc})") from None
    y = None
    if isinstance(raw, np.lib.npyio.NpzFile):
        with raw:
            if "x" not in raw.files:
                raise DataError(f"{where} has no array 'x' (found {', '.join(raw.files) or 'nothing'}); save it with np.savez(path, x=..., y=...)")
            x = raw["x"]
            y = raw["y"] if "y" in raw.files else None
    else:
        x = raw
    if x.dtype.kind not in "fiub":
        raise DataError(f"{where}: x has dtype {x.dtype}, expected a numeric (float or integer) array")
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"{where}: x has no samples (shape {x.shape})")
    n = x.shape[0]
    if x.shape[1:] != sample:
        if int(np.prod(x.shape[1:], dtype=np.int64)) != size:
            raise DataError(
                f"{where}: x has shape {x.shape}, the model expects (N, {', '.join(map(str, sample))})"
            )
        x = x.reshape(n, *sample)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x).reshape(n, -1).all(axis=1))[0, 0])
        raise DataError(f"{where}: x contains NaN or Inf (first in sample {bad})")
    if y is not None:
        if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0)):
            raise DataError(f"{where}: y has dtype {y.dtype}, expected integer class labels")
        if y.shape != (n,):
            raise DataError(f"{where}: y has shape {y.shape}, expected ({n},) labels matching x")
        y = y.astype(np.int64)
    return x, y
