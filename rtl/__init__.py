"""Amaranth hardware blocks of hwflow (installed as ``hwflow.rtl``)."""
