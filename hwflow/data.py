"""Data in and out of the integer network.

:func:`load_data` loads float samples (calibration and test data: ``.npz`` with ``x``
and optional ``y``, or ``.npy`` of ``x``); :func:`input_codes` turns what a user passes
as inputs (floats or integer codes) into input codes; :func:`random_codes` makes test
vectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

__all__ = ["load_data", "load_inputs", "input_codes", "random_codes"]


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


def input_codes(x, tensor, where: str = "the array", shape=None) -> np.ndarray:
    """Input codes of ``tensor`` (a :class:`~hwflow.quant.qgraph.QTensor`) for ``x``.

    Integer arrays are codes (checked against the tensor's range); float arrays are
    real values, quantized with the tensor's scale and zero point.

    Parameters
    ----------
    x : array-like
        ``(N, *shape[1:])``, ``(N, size)``, or one vector of the input's shape.
    tensor : QTensor
        The network's input.
    where : str
        How messages name ``x`` ("inputs in {where} ..."), e.g. the file it came from.
    shape : tuple of int, optional
        The user's input shape (:attr:`QGraph.input_shape`, e.g. NHWC), when it is not
        the tensor's own.

    Returns
    -------
    numpy.ndarray of int64, shape ``(N, *shape[1:])``

    Raises
    ------
    DataError
        Non-numeric dtype, a shape that is not the input's, NaN/Inf, or codes outside the
        input's range.
    """
    sample = tuple((tensor.shape if shape is None else shape)[1:])
    size = int(np.prod(sample))
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise DataError(f"inputs in {where} have dtype {x.dtype}; need integer codes or floats")
    if x.shape in (sample, (1,) + sample) or (x.ndim == 1 and x.size == size):
        x = x.reshape((1,) + sample)
    elif x.ndim >= 2 and x.shape[0] > 0 and (x.shape[1:] == sample or int(np.prod(x.shape[1:])) == size
                                             and x.ndim == 2):
        x = x.reshape((x.shape[0],) + sample)
    else:
        raise DataError(f"inputs in {where} have shape {x.shape}; the model expects (N, {', '.join(map(str, sample))})")

    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise DataError(f"inputs in {where} contain NaN or Inf")
        return tensor.quantize(x).astype(np.int64)
    lo, hi = tensor.range
    if x.min() < lo or x.max() > hi:
        raise DataError(
            f"input codes in {where} span [{x.min()}, {x.max()}], outside the "
            f"{tensor.bits}-bit range [{lo}, {hi}]; pass floats to have them quantized"
        )
    return x.astype(np.int64)


def load_inputs(path, tensor, shape=None) -> np.ndarray:
    """:func:`input_codes` of the array in ``path`` (``.npy``, or ``.npz`` with ``x``).

    Raises
    ------
    DataError
        Unreadable file, no ``x`` in an ``.npz``, or what :func:`input_codes` rejects.
    """
    path = Path(path)
    try:
        raw = np.load(path, allow_pickle=False)
        if isinstance(raw, np.lib.npyio.NpzFile):
            with raw:
                if "x" not in raw.files:
                    raise DataError(f"{str(path)!r} has no array 'x'; save inputs with np.save or np.savez(path, x=...)")
                raw = raw["x"]
    except FileNotFoundError:
        raise DataError(f"inputs file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"inputs file {str(path)!r} is not a readable .npy/.npz ({exc})") from None
    return input_codes(raw, tensor, repr(str(path)), shape)


def random_codes(tensor, n: int, seed: int = 0, shape=None) -> np.ndarray:
    """``n`` vectors of uniform random codes in ``tensor``'s range, ``(n, *shape[1:])`` int64
    (``shape``: the user's input shape, default the tensor's)."""
    lo, hi = tensor.range
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, size=(n,) + tuple((tensor.shape if shape is None else shape)[1:]), dtype=np.int64)
