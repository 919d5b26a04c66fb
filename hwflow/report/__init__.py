"""hwflow.report."""
