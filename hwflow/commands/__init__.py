"""One module per ``hwflow`` command; see :mod:`hwflow.cli`."""
