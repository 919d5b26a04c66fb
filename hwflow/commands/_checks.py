"""Checking an option's value as click parses it, with hwflow's own checks."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["checked"]


def checked(check: Callable[[Any, str], Any], flag: str):
    """A click callback running ``check(value, flag)`` on a given value.

    The check raises :class:`~hwflow.errors.OptionError` naming ``flag`` (one line,
    exit 2, before the command does anything) or returns the value to use.
    """
    return lambda ctx, param, value: value if value is None else check(value, flag)
