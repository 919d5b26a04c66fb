"""Verification: simulator runners and cocotb testbenches (installed as ``hwflow.sim``).

Modules (imported on demand; this package stays light because the cocotb testbench
is imported inside the simulator process):

- :mod:`~hwflow.sim.build_runner` — :func:`simulate`: a BUILD in any of them, its
  result recorded in the BUILD (``hwflow simulate``, ``hwflow.Build.simulate``).
- :mod:`~hwflow.sim.result` — :class:`SimResult`, common to every simulator; pass
  means bit-exact outputs and every vector's cycles equal to the prediction.
- :mod:`~hwflow.sim.amaranth_runner` — :func:`run_amaranth`: Amaranth's simulator.
- :mod:`~hwflow.sim.cocotb_runner` — :func:`run_cocotb`: Icarus or Verilator through
  cocotb_tools, one kept sim_build per design and simulator.
- :mod:`~hwflow.sim.tb_accelerator` — the cocotb testbench (driver, monitor, model,
  checker); standalone, copied into every BUILD's ``sim/``.
"""

__all__ = ["run_vectors"]


def run_vectors(program, inputs, simulator: str = "verilator", *, expected=None,
                top: str = "hwflow_top", build_dir=None, vcd=None, timeout=None):
    """Simulate ``program``'s accelerator on ``inputs`` (no BUILD directory needed).

    For benchmarks and tests that hold a :class:`~hwflow.schedule.Program`. Icarus and
    Verilator builds are cached under ``build_dir`` (default: a per-design directory in
    ``$XDG_CACHE_HOME/hwflow/sim``, keyed by the Verilog's hash and the Python
    environment, whose cocotb and Verilator the build's makefiles name), so only the
    first run of a design pays for the build.

    Parameters
    ----------
    program : hwflow.schedule.Program
    inputs : sequence of numpy.ndarray
        Input codes per vector (any shape with ``program.input_size`` codes).
    simulator : {"amaranth", "icarus", "verilator"}
    expected : array-like, optional
        Reference output codes per vector; without it outputs are only collected.

    Returns
    -------
    hwflow.sim.result.SimResult
        ``outputs`` (vectors x output_size), ``cycles`` per vector, and
        ``cycles_per_second`` / ``wall_time`` of the simulation loop alone (build and
        simulator start-up excluded).
    """
    import hashlib
    import os
    import sys
    from pathlib import Path

    import numpy as np

    x = np.stack([np.asarray(v).reshape(-1) for v in inputs]).astype(np.int64)
    load = None
    if program.weight_load:  # the weight image goes in through the weight-load port first
        from ..rtl.weight_rom import pack_words

        load = (pack_words(program.weights, program.stored_wbits), program.load_cycles)
    exp = None if expected is None else np.stack([np.asarray(v).reshape(-1) for v in expected])
    if simulator == "amaranth":
        from ..rtl.accelerator import Accelerator
        from .amaranth_runner import run_amaranth

        return run_amaranth(Accelerator(program), x, exp, program.cycles, output_size=program.output_size,
                            stream=program.stream_maps(), vcd=vcd, timeout=timeout, load=load)
    from ..rtl.accelerator import to_verilog
    from .cocotb_runner import run_cocotb

    text = to_verilog(program, top)
    if build_dir is None:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwflow" / "sim"
        # a build made from another venv names that venv's cocotb/Verilator files
        build_dir = cache / hashlib.sha256(f"{sys.prefix}\0{text}".encode()).hexdigest()[:16]
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    vfile = build_dir / f"{top}.v"
    if not vfile.exists() or vfile.read_text() != text:  # unchanged file: keep its mtime
        vfile.write_text(text)
    return run_cocotb(vfile, top, x, exp, program.cycles, simulator, build_dir / simulator,
                      output_size=program.output_size, stream=program.stream_maps(), vcd=vcd, timeout=timeout,
                      load=load)
