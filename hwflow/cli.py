"""The ``hwflow`` command line.

Each command lives in :mod:`hwflow.commands` (one file a command); this module only
builds the group and turns every :class:`~hwflow.errors.HwflowError` into one line on
stderr and exit code 2. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from . import __version__
from .errors import HwflowError

__all__ = ["cli", "main"]

# (module in hwflow.commands, click command attribute); a module that is not there yet
# is simply not offered.
_COMMANDS = [
    ("inspect", "inspect_cmd"),
    ("eval", "eval_cmd"),
    ("quantize", "quantize_cmd"),
    ("compile", "compile_cmd"),
    ("finetune", "finetune_cmd"),
    ("simulate", "simulate_cmd"),
    ("synth", "synth_cmd"),
    ("report", "report_cmd"),
    ("sweep", "sweep_cmd"),
    ("targets", "targets_cmd"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hwflow")
def cli() -> None:
    """hwflow: compile an ONNX network into verified hardware for small FPGAs.

    \b
    Typical flow:
      hwflow inspect model.onnx
      hwflow eval model.onnx --data test.npz
      hwflow compile model.onnx --target fpga-small -o build/
      hwflow simulate build/ --simulator verilator
      hwflow synth build/
    """


for _module, _attr in _COMMANDS:
    try:
        _mod = importlib.import_module(f"hwflow.commands.{_module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"hwflow.commands.{_module}":
            raise
        continue
    cli.add_command(getattr(_mod, _attr))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hwflow`` console script."""
    try:
        rv = cli.main(args=argv, prog_name="hwflow", standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except HwflowError as exc:
        click.echo(f"hwflow: error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("hwflow: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        # a usage error is bad input too: one line, with where to look
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        click.echo(f"hwflow: error: {' '.join(exc.format_message().split())}{hint}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("hwflow: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
