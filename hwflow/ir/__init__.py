"""hwflow.ir."""
