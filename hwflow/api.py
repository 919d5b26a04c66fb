"""hwflow's Python API: compile a model, then run, simulate, synthesize and report the BUILD.

::

    import hwflow

    build = hwflow.compile("model.onnx", target="fpga-small", calib="calib.npz", pe=4, simd=4)
    build.predict(x)                          # the bit-exact integer reference
    build.simulate("verilator", random=100)   # the hardware, checked against it
    build.synth()                             # Yosys + nextpnr
    build.report("r.html")
    build = hwflow.load("build/model")        # any BUILD, from anywhere
    hwflow.fit_check("big.onnx", "fpga-medium").verdict   # "too big", from shapes, in seconds

The command line is a thin shell over these calls (one per command), and everything
they produce is recorded in the BUILD (:mod:`hwflow.build`). Options travel as typed
configs: :class:`~hwflow.quant.config.QuantConfig`,
:class:`~hwflow.quant.config.AutoBitsConfig`, :class:`~hwflow.config.PruneConfig`,
:class:`~hwflow.config.ScheduleConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .build import BuildDir, load_build
from .config import AutoBitsConfig, PruneConfig, QuantConfig, ScheduleConfig

__all__ = ["Build", "compile", "fit_check", "load"]


@dataclass(repr=False)
class Build(BuildDir):
    """A compiled design: a checked BUILD directory and what can be done with it.

    Get one from :func:`compile` or :func:`load`. The manifest (``build.manifest``) holds
    the facts: ``cycles``, ``memory``, ``estimate``, ``ops``, ``input``/``output`` types...

    Parameters
    ----------
    path : Path
        The BUILD directory.
    manifest : dict
        Its checked ``manifest.json``.
    compile_seconds : dict or None
        Seconds per compile step, when this object comes from :func:`compile`.
    """

    compile_seconds: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self._qgraph = None

    def __repr__(self) -> str:
        m = self.manifest
        return (f"<hwflow.Build {self.top} for {m['target']} at {str(self.path)!r}: PE {m['pe']} x SIMD "
                f"{m['simd']}, {m['cycles']:,} cycles>")

    def _qg(self):
        if self._qgraph is None:
            self._qgraph = self.qgraph()
        return self._qgraph

    def predict(self, x, *, dequantize: bool = False) -> np.ndarray:
        """Run the bit-exact integer reference: what the hardware computes, code for code.

        Parameters
        ----------
        x : array-like
            Input vectors ``(N, *input_shape[1:])`` in the model's own layout (NHWC for a
            Keras model), or one vector: floats are real values, quantized with the
            input's scale and zero point; integers are codes.
        dequantize : bool
            Return real values ``scale * (q - zero_point)`` instead of codes (the class
            index itself when the BUILD computes ``--argmax``).

        Returns
        -------
        numpy.ndarray
            ``(N, *output_shape[1:])`` output codes (int64), or their real values. The
            host tail (Softmax, a label lookup, ``manifest["host_tail"]``) is not applied:
            :meth:`outputs` gives every model output.

        Raises
        ------
        DataError
            Wrong shape or dtype, NaN/Inf, or codes outside the input's range.
        """
        from .data import input_codes
        from .quant.reference import run_int_batch

        qg = self._qg()
        out = run_int_batch(qg, input_codes(x, qg.tensors[qg.input], shape=qg.input_shape)).astype(np.int64)
        return qg.tensors[qg.output].dequantize(out) if dequantize and not qg.argmax else out

    def outputs(self, x) -> dict[str, np.ndarray]:
        """Every output of the model, by name: the integer reference's output (what the
        hardware computes) and the host tail on it (``manifest["host_tail"]``: Softmax
        probabilities, an ArgMax label and its class lookup, a per-class scale).

        Parameters
        ----------
        x : array-like
            As for :meth:`predict`.

        Returns
        -------
        dict of str to numpy.ndarray
            One array per model output, in the model's order (with ``--argmax``, the ones
            the class index gives).
        """
        qg = self._qg()
        out = self.predict(x, dequantize=True)
        return qg.host_tail.run(out)

    def simulate(self, simulator: str = "icarus", *, inputs=None, random: int | None = None, seed: int = 0,
                 limit: int | None = None, vcd: str | Path | None = None, timeout: int | None = None,
                 stall: float = 0.0, resets: bool = False, x_unique: bool = False, netlist: bool = False):
        """Simulate the hardware against the integer reference; record the result in the BUILD.

        Passes when every output code equals :meth:`predict`'s, every inference takes
        exactly ``manifest["cycles"]`` cycles plus the cycles its streams stalled, and the
        stream interface rules hold (a BUILD whose weights are loaded after reset,
        ``manifest["load"]``, is loaded first, in exactly its cycles). The result is written to
        ``BUILD/simulation.json`` (the report shows it).

        Parameters
        ----------
        simulator : {"amaranth", "icarus", "verilator"}
        inputs : array-like, str or Path, optional
            Input vectors (floats or codes, as for :meth:`predict`), or a ``.npy``/``.npz``
            file of them. Default: the BUILD's stored test vectors.
        random : int, optional
            Run this many vectors of uniform random codes instead.
        seed : int
            Seed of ``random``, of the stalls and reset cycles, and (plus one) of the
            random initial values.
        limit : int, optional
            Run only the first ``limit`` vectors.
        vcd : path, optional
            Write a VCD waveform here.
        timeout : int, optional
            Cycles to wait for done per vector (default 4x the prediction + 1000).
        stall : float
            Probability per cycle that the source drops ``in_valid`` and the sink ``out_ready``.
        resets : bool
            Before each vector, reset the core in a random cycle of an inference on it.
        x_unique : bool
            Verilator: registers and RAM start from random values, not their initial ones.
        netlist : bool
            Simulate the core after the target family's Yosys synthesis, with its cell models.

        Returns
        -------
        hwflow.sim.result.SimResult
            ``passed``, ``mismatches``, ``cycles`` per vector, ``summary()``, ``to_json()``.
        """
        from .sim.build_runner import simulate

        return simulate(self, simulator, inputs=inputs, random=random, seed=seed, limit=limit, vcd=vcd,
                        timeout=timeout, stall=stall, resets=resets, x_unique=x_unique, netlist=netlist)

    def synth(self, *, pnr: bool = True, seed: int = 1) -> dict:
        """Synthesize with Yosys and place and route with nextpnr; record the report in the BUILD.

        Parameters
        ----------
        pnr : bool
            Run nextpnr after Yosys (packed figures and Fmax); without it the figures
            come from Yosys and timing is unknown.
        seed : int
            nextpnr's placer seed.

        Returns
        -------
        dict
            The report (:mod:`hwflow.synth.report`): ``resources`` used and available,
            ``fits``, ``fmax_mhz``, ``meets_timing``, ... Also in ``BUILD/synth.json``.

        Raises
        ------
        TargetError, ToolError
            A BUILD for the ``generic`` target; missing or failing tools.
        """
        from .synth import synthesize

        return synthesize(self, pnr=pnr, seed=seed)

    def report(self, output: str | Path | None = None, *, data: str | Path | None = None,
               simulate: str | None = None, quiet: bool = True) -> Path:
        """Write the HTML report (:func:`hwflow.report.write_report`).

        Parameters
        ----------
        output : path, optional
            The HTML file (default ``BUILD/report.html``).
        data : path, optional
            Test data (``.npz`` with ``x`` and optional ``y``): float against quantized
            accuracy and agreement.
        simulate : {"amaranth", "icarus", "verilator"}, optional
            Simulate now if the BUILD holds no result of this simulator.
        quiet : bool
            No progress display.

        Returns
        -------
        Path
        """
        from .report import write_report

        return write_report(self, output, data=data, simulate=simulate, quiet=quiet)


def compile(model: str | Path, target: Any = "fpga-small", *, calib: str | Path | None = None,
            out: str | Path | None = None, quant: QuantConfig | None = None, prune: PruneConfig | None = None,
            auto_bits: AutoBitsConfig | None = None, schedule: ScheduleConfig | None = None,
            pe: int | None = None, simd: int | None = None, top: str | None = None, vectors: int = 8,
            seed: int = 0, on_step: Callable[[str, float], None] | None = None) -> Build:
    """Compile an ONNX model into hardware: a BUILD directory, written atomically.

    Import, optimize, (prune,) quantize, schedule onto the ``pe x simd`` MAC array,
    generate Verilog, and store test vectors with the integer reference's outputs, a
    cocotb testbench, the synthesis hand-off and a copy of the model.

    Parameters
    ----------
    model : str or Path
        The ONNX model (float, or pre-quantized QDQ/QONNX).
    target : str, Path or Target
        A target name (``fpga-tiny``, ``fpga-small``, ``fpga-medium``, ``generic``) or a
        target TOML file.
    calib : str or Path, optional
        Calibration data (``.npz`` with ``x``, or ``.npy``); its first samples become the
        test vectors (else random codes).
    out : str or Path, optional
        The BUILD directory (default ``build/<model stem>``). An existing directory is
        replaced only if it is an earlier BUILD (or empty).
    quant : QuantConfig, optional
        Quantization settings (default ``QuantConfig()``).
    prune : PruneConfig, optional
        Pruning and weight sharing.
    auto_bits : AutoBitsConfig, optional
        Choose per-layer weight widths (needs ``calib``).
    schedule : ScheduleConfig, optional
        Array shape and MaxPool fusion.
    pe, simd : int, optional
        Shorthand for ``schedule=ScheduleConfig(pe=pe, simd=simd)`` (default: the target's).
    top : str, optional
        Verilog top module name (default: from the model file name).
    vectors : int
        Test vectors to store.
    seed : int
        Seed of random test vectors (without ``calib``).
    on_step : callable, optional
        Called as ``on_step(name, seconds)`` after each step of :data:`hwflow.flow.STEPS`.

    Returns
    -------
    Build

    Raises
    ------
    HwflowError
        ModelError, UnsupportedOpError, DataError, OptionError, TargetError, FitError:
        one line each, from the step that found the problem.
    """
    from .flow import compile_model

    m = compile_model(model, target, out, quant, calib, pe, simd, prune=prune, auto_bits=auto_bits,
                      schedule=schedule, top=top, vectors=vectors, seed=seed, on_step=on_step)
    seconds, path = m.pop("compile_seconds"), m.pop("path")
    return Build(Path(path), m, seconds)


def fit_check(model: str | Path, target: Any = "fpga-small", *, quant: QuantConfig | None = None,
              prune: PruneConfig | None = None, schedule: ScheduleConfig | None = None,
              pe: int | None = None, simd: int | None = None):
    """Will ``model`` fit ``target`` with these options? Sized from shapes alone, in seconds.

    The same verdict :func:`compile` checks before quantizing (and ``hwflow inspect MODEL
    --target T`` prints): ROM, RAM and DSPs by the scheduler's rules, exact where shapes
    decide them and bounded where quantization does (:mod:`hwflow.schedule.fit`).

    Returns
    -------
    hwflow.schedule.fit.FitReport
        ``verdict`` ("fits", "tight", "too big"), the figures, ``message()``, ``to_json()``
        and, when too big, the nearest options that fit.
    """
    from .flow import load_graph
    from .schedule.fit import fit_check as check

    if schedule is None:
        schedule = ScheduleConfig(pe=pe, simd=simd)
    return check(load_graph(model), target, quant, prune, schedule)


def load(path: str | Path) -> Build:
    """Open a BUILD directory, checked complete and unedited (:func:`hwflow.build.load_build`).

    Raises
    ------
    BuildError
        Missing, incomplete or edited BUILD; one line with what to do.
    """
    b = load_build(path)
    return Build(b.path, b.manifest)
