"""Writing files: numpy values as JSON, atomic file and directory writes, checksums.

Every JSON document hwflow writes goes through :func:`jsonable`, and every output a user
keeps (a BUILD, a report, a result record, a sweep) is written atomically: into a
temporary sibling that is renamed into place only when complete, so a failure or Ctrl-C
never leaves half a file and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["jsonable", "dumps", "digest", "sha256_file", "atomic_write", "write_json", "atomic_directory"]


def jsonable(v: Any) -> Any:
    """``v`` with numpy arrays and scalars, tuples, paths and dataclasses made plain JSON values.

    Dict keys become strings. Anything else that JSON cannot hold is a bug in the
    caller and raises TypeError.
    """
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if type(v) is list and _plain(v):  # already plain (a weight tensor's nested rows): kept as is
            return v
        return [jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Path):
        return str(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return jsonable(dataclasses.asdict(v))
    raise TypeError(f"{type(v).__name__} is not JSON serializable: {v!r}")


_SCALARS = frozenset((int, float, str, bool, type(None)))


def _plain(v: list) -> bool:
    """Whether list ``v`` holds only JSON scalars, or only lists that do (nested, every leaf
    at the same depth). Checked a nesting level at a time: a weight tensor's rows are
    hundreds of thousands of short lists, too many for a Python call each."""
    while True:
        types = set(map(type, v))
        if types <= _SCALARS:
            return True
        if types != {list}:
            return False
        v = list(itertools.chain.from_iterable(v))


def dumps(doc: Any, indent: int | None = 1) -> str:
    """``doc`` as JSON text (through :func:`jsonable`; floats round-trip exactly)."""
    return json.dumps(jsonable(doc), indent=indent)


def digest(doc: dict) -> str:
    """sha256 of ``doc`` as canonical JSON (sorted keys): a checksum of its content."""
    return hashlib.sha256(json.dumps(jsonable(doc), sort_keys=True).encode()).hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary sibling, then ``os.replace``).

    The file gets the permissions a plain ``open`` would give it (not ``mkstemp``'s 0600).
    Text is written as UTF-8.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = path.parent / f".{path.name}.{secrets.token_hex(6)}"  # named first, as in atomic_directory
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # a plain open's mode, less the umask
        except FileExistsError:  # not ours
            tmp = None
            raise
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, doc: Any, indent: int | None = 1) -> Path:
    """Write ``doc`` as JSON (with a final newline) atomically."""
    return atomic_write(path, dumps(doc, indent) + "\n")


@contextlib.contextmanager
def atomic_directory(out_dir: str | Path, *, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``out_dir`` only if the block succeeds.

    The temporary directory is a sibling of ``out_dir`` (same filesystem, so the final
    rename is atomic). A previous ``out_dir`` is moved aside, the new one renamed in,
    then the old one deleted; entries named in ``keep`` (caches) are carried over when
    the new directory has none of its own. Any exception, KeyboardInterrupt included,
    removes the temporary directory and leaves ``out_dir`` as it was.
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # named before it exists, so that an interrupt at any point after mkdir finds it to remove;
    # mkdir's default mode (0o777 less the umask): outputs are meant to be shared
    tmp: Path | None = out.parent / f".{out.name}.tmp-{secrets.token_hex(6)}"
    try:
        try:
            os.mkdir(tmp)
        except FileExistsError:  # not ours
            tmp = None
            raise
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "dir")
        try:
            os.rename(tmp, out)
        except BaseException:
            if old is not None:  # put the previous one back
                os.rename(old / "dir", out)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            for name in keep:
                src = old / "dir" / name
                if src.exists() and not (out / name).exists():
                    os.rename(src, out / name)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
