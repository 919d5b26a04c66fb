"""Target descriptions (TOML), installed as ``hwflow._targets``; see :mod:`hwflow.targets`."""
