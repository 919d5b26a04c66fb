"""hwflow.prune."""
