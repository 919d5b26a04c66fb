"""hwflow.passes."""
