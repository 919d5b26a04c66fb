"""hwflow.schedule."""
