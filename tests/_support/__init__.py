"""Test-only helpers imported by the tests (``tests/`` is on pytest's ``pythonpath``).

- :mod:`_support.graphs` — hand-built random QGraphs (:class:`GraphBuilder`,
  :func:`random_graph`, :func:`digits_cnn`), no quantizer involved.
- :mod:`_support.accel_sim` — :func:`simulate`: the Accelerator in Amaranth's simulator on
  code vectors, with optional random stalls.
"""
