"""Verification: simulator runners and cocotb testbenches (installed as ``hwflow.sim``)."""
