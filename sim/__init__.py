"""Verification: simulator runners and cocotb testbenches (installed as ``hwflow.sim``).

Modules (imported on demand; this package stays light because the cocotb testbench
is imported inside the simulator process):

- :mod:`~hwflow.sim.result` — :class:`SimResult`, common to every simulator; pass
  means bit-exact outputs and every vector's cycles equal to the prediction.
- :mod:`~hwflow.sim.amaranth_runner` — :func:`run_amaranth`: Amaranth's simulator.
- :mod:`~hwflow.sim.cocotb_runner` — :func:`run_cocotb`: Icarus or Verilator through
  cocotb_tools, one kept sim_build per design and simulator.
- :mod:`~hwflow.sim.tb_accelerator` — the cocotb testbench (driver, monitor, model,
  checker); standalone, copied into every BUILD's ``sim/``.
- :mod:`~hwflow.sim.speed` — :func:`measure_speed` and :func:`speed_table`:
  cycles per second per simulator, for benchmarks.
"""
