"""Progress display for long steps (calibration, simulation, synthesis, sweeps).

One small API every command can call; it draws a ``rich`` progress bar on stderr only
when stderr is a terminal and the user did not ask for ``--quiet``, so piped output,
CI logs and ``--json`` stay clean::

    from hwflow.report.progress import progress, track

    with progress("calibrating", total=len(batches), quiet=quiet) as bar:
        for b in batches:
            ...
            bar.advance()

    for point in track(points, "sweep", quiet=quiet):
        ...

    with progress("synthesizing (yosys)", quiet=quiet):   # no total: a spinner
        run_yosys(...)
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterable, Iterator, TypeVar

__all__ = ["progress", "track", "enabled", "Bar"]

T = TypeVar("T")


def enabled(quiet: bool = False, stream=None) -> bool:
    """Whether progress is drawn: not ``quiet`` and ``stream`` (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    if quiet:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class Bar:
    """Handle of one progress task; a no-op when progress is disabled."""

    def __init__(self, prog=None, task=None) -> None:
        self._prog, self._task = prog, task

    def advance(self, n: float = 1) -> None:
        """Count ``n`` more units done."""
        if self._prog is not None:
            self._prog.advance(self._task, n)

    def update(self, description: str | None = None, total: float | None = None) -> None:
        """Change the label (e.g. the current item) or the total."""
        if self._prog is not None:
            kw = {k: v for k, v in (("description", description), ("total", total)) if v is not None}
            self._prog.update(self._task, **kw)


@contextlib.contextmanager
def progress(description: str, total: float | None = None, *, quiet: bool = False,
             stream=None) -> Iterator[Bar]:
    """A progress bar (or a spinner when ``total`` is None) for the ``with`` block.

    Parameters
    ----------
    description : str
        What is running (``"simulating 8 vectors"``).
    total : float, optional
        Units of work; None draws a spinner with the elapsed time.
    quiet : bool
        Draw nothing (the command's ``--quiet``).
    stream : file, optional
        Where to draw (default ``sys.stderr``); nothing is drawn unless it is a TTY.
    """
    if not enabled(quiet, stream):
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,
                               TextColumn, TimeElapsedColumn)

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    console = Console(file=sys.stderr if stream is None else stream)
    with Progress(*columns, console=console, transient=True) as prog:
        yield Bar(prog, prog.add_task(description, total=total))


def track(items: Iterable[T], description: str, total: int | None = None, *,
          quiet: bool = False, stream=None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar (``total`` defaults to ``len(items)``)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(description, total, quiet=quiet, stream=stream) as bar:
        for item in items:
            yield item
            bar.advance()
