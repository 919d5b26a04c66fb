"""The compile flow (``hwflow compile``) and the BUILD directory it writes.

The flow is a list of named steps, FINN-builder style; each step reads and extends a
:class:`FlowState`::

    load → optimize → quantize → schedule → generate → vectors → write

A BUILD is written atomically: everything goes into a temporary directory next to the
target (same filesystem) that is renamed into place only when complete, so a failure or
Ctrl-C leaves no half-written BUILD and never destroys a previous good one.

BUILD layout::

    manifest.json        what was built: top, target, ops, host tail, predicted cycles,
                         memory bits, resource estimate, input/output types, options,
                         and the sha256 of every file below (edits are detected)
    <top>.v              the generated Verilog (what Icarus/Verilator simulate)
    schedule.json        Program.to_json(): loops, memory map, per-layer cycles
    quant.json           the QGraph: every tensor's type, every layer's integer parameters
                         (hwflow.quant.serialize's format plus a format tag)
    vectors/inputs.npy   test vectors: input codes (vectors, *input_shape[1:])
    vectors/expected.npy the integer reference's output codes for them
    vectors/stream.npz   in_map, out_map: the code each stream lane carries (hwflow.sim.beats)
    sim/run.py           standalone cocotb runner (cocotb_tools + numpy only)
    sim/tb_accelerator.py, sim/beats.py  the cocotb testbench it runs, and its packing
    handoff.json, synth.ys, files.f, <top>.core, constraints, README.md
                         the synthesis hand-off (device targets only)
    sim_build/<sim>/     simulator build caches written by ``hwflow simulate`` (not hashed)

``quant.json`` is also how ``hwflow simulate`` gets back the integer network: the
loader :func:`qgraph_from_json` sits next to the writer :func:`qgraph_to_json`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .errors import BuildError, DataError, OptionError

__all__ = [
    "STEPS",
    "FlowState",
    "compile_model",
    "Build",
    "load_build",
    "qgraph_to_json",
    "qgraph_from_json",
    "atomic_directory",
    "load_inputs",
    "random_codes",
    "reference_outputs",
    "HOST_TAIL_NOTE",
]

HOST_TAIL_NOTE = "Softmax/ArgMax stay on the host"
MANIFEST = "manifest.json"


def _sim_dir() -> Path:
    """Where hwflow.sim lives (``sim/`` in a checkout; ``hwflow/sim`` when installed)."""
    from . import sim

    return Path(sim.__file__).resolve().parent


# ---- QGraph <-> JSON ---------------------------------------------------------------------

def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def qgraph_to_json(qg) -> dict:
    """The QGraph as the ``quant.json`` document: the quantizer's own serialization
    (:func:`hwflow.quant.serialize.qgraph_to_dict`) with a format tag. Integers are
    exact and scales round-trip exactly (``json`` writes floats with ``repr``)."""
    from .quant.serialize import qgraph_to_dict

    return {"format": "hwflow.qgraph/1", **_jsonable(qgraph_to_dict(qg))}


def qgraph_from_json(doc: dict):
    """Rebuild the QGraph written by :func:`qgraph_to_json`.

    Raises
    ------
    ValueError, KeyError, TypeError
        If the document is malformed (callers turn this into BuildError).
    """
    from .quant.serialize import qgraph_from_dict

    if doc.get("format") != "hwflow.qgraph/1":
        raise ValueError(f"unknown quant.json format {doc.get('format')!r}")
    return qgraph_from_dict(doc)


# ---- atomic output directory ----------------------------------------------------------

@contextlib.contextmanager
def atomic_directory(out_dir: str | Path, *, keep: tuple[str, ...] = ()):
    """Yield a temporary directory that replaces ``out_dir`` only if the block succeeds.

    The temporary directory is a sibling of ``out_dir`` (same filesystem, so the final
    rename is atomic). A previous ``out_dir`` is moved aside, the new one renamed in,
    then the old one deleted; entries named in ``keep`` (caches) are carried over.
    Any exception, KeyboardInterrupt included, removes the temporary directory and
    leaves ``out_dir`` as it was.
    """
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a BUILD should not be
    try:
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "build")
        try:
            os.rename(tmp, out)
        except BaseException:
            if old is not None:  # put the previous build back
                os.rename(old / "build", out)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            for name in keep:
                src = old / "build" / name
                if src.exists() and not (out / name).exists():
                    os.rename(src, out / name)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _top_name(stem: str) -> str:
    name = re.sub(r"\W", "_", stem).strip("_") or "accel"
    return name if name[0].isalpha() else f"m_{name}"


# ---- the flow ---------------------------------------------------------------------------

@dataclass
class FlowState:
    """Everything the steps read and produce."""

    model_path: Path
    target: Any
    out_dir: Path
    quant_config: Any
    calib_path: Path | None
    pe: int | None
    simd: int | None
    top: str
    vectors: int
    seed: int
    options: dict | None = None
    optimized: bool = False
    storage: dict | None = None
    tmp: Path | None = None
    graph: Any = None
    qgraph: Any = None
    program: Any = None
    verilog: str = ""
    calib: np.ndarray | None = None
    inputs: np.ndarray | None = None
    expected: np.ndarray | None = None
    vector_source: str = ""
    handoff: dict | None = None
    manifest: dict = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)


def step_load(s: FlowState) -> None:
    """Import the ONNX model (static shapes, verified).

    A pre-quantized model (QDQ / QONNX) is imported by the quantizer's loader, which
    strips the quantization nodes, keeps their parameters and optimizes in one go.
    """
    from .ir import load_model

    if _is_prequantized(s.model_path):
        from .commands._quant_options import load_optimized

        s.graph, s.optimized = load_optimized(s.model_path), True
    else:
        s.graph = load_model(s.model_path)


def _is_prequantized(path: Path) -> bool:
    try:
        import onnx

        from .quant.qdq_import import is_quantized

        return is_quantized(onnx.load(str(path), load_external_data=False))
    except Exception:  # noqa: BLE001 - unreadable: load_model says why, in one line
        return False


def step_optimize(s: FlowState) -> None:
    """The default pass pipeline, to a fixed point."""
    from .passes import optimize

    if not s.optimized:
        s.graph = optimize(s.graph)


def step_quantize(s: FlowState) -> None:
    """Prune (if asked), then quantize, calibrating on ``--calib`` data when given."""
    from .data import load_data

    if s.calib_path is not None:
        s.calib, _ = load_data(s.calib_path, s.graph.shape(s.graph.inputs[0]))
    if s.options is None:
        from .quant import quantize

        s.qgraph = quantize(s.graph, s.quant_config, s.calib)
        return
    from .commands._prune_options import finish_pruning, prune_graph
    from .commands._quant_options import quantize_from_options

    pruned, info = prune_graph(s.graph, s.calib, **s.options)
    s.qgraph, s.quant_config, _ = quantize_from_options(pruned, s.calib, **s.options)
    s.storage = finish_pruning(s.qgraph, info)


def step_schedule(s: FlowState) -> None:
    """Map onto the PE x SIMD array; checks the target's budget (FitError)."""
    from .schedule import schedule

    s.program = schedule(s.qgraph, s.target, pe=s.pe, simd=s.simd)


def step_generate(s: FlowState) -> None:
    """Amaranth → Verilog."""
    from .rtl.accelerator import to_verilog

    s.verilog = to_verilog(s.program, s.top)


def step_vectors(s: FlowState) -> None:
    """Test vectors (calibration samples quantized with the input type, else random
    codes) and the integer reference's outputs for them."""
    tin = s.qgraph.tensors[s.qgraph.input]
    if s.calib is not None:
        s.inputs = tin.quantize(s.calib[: s.vectors])
        s.vector_source = f"first {len(s.inputs)} samples of {s.calib_path.name}, quantized"
    else:
        s.inputs = random_codes(tin, s.vectors, s.seed)
        s.vector_source = f"uniform random codes (seed {s.seed})"
    s.inputs = s.inputs.reshape((len(s.inputs),) + tuple(tin.shape[1:])).astype(np.int64)
    s.expected = reference_outputs(s.qgraph, s.inputs)


def step_write(s: FlowState) -> None:
    """Write every BUILD file into the temporary directory, then the manifest."""
    d = s.tmp
    vfile = f"{s.top}.v"
    (d / vfile).write_text(s.verilog, encoding="utf-8")
    _write_json(d / "schedule.json", s.program.to_json())
    _write_json(d / "quant.json", qgraph_to_json(s.qgraph))
    (d / "vectors").mkdir()
    np.save(d / "vectors" / "inputs.npy", s.inputs)
    np.save(d / "vectors" / "expected.npy", s.expected)
    in_map, out_map = s.program.stream_maps()
    np.savez(d / "vectors" / "stream.npz", in_map=in_map, out_map=out_map)
    (d / "sim").mkdir()
    shutil.copyfile(_sim_dir() / "tb_accelerator.py", d / "sim" / "tb_accelerator.py")
    shutil.copyfile(_sim_dir() / "beats.py", d / "sim" / "beats.py")
    shutil.copyfile(_sim_dir() / "templates" / "run.py", d / "sim" / "run.py")
    if not s.target.unlimited:
        from .synth.bundle import write_handoff

        s.handoff = write_handoff(d, d / vfile, s.top, s.target, lanes=s.program.simd)
    s.manifest = _manifest(s, vfile)
    write_manifest(d / MANIFEST, s.manifest)


#: The compile flow: (name, step) in order.
STEPS: list[tuple[str, Callable[[FlowState], None]]] = [
    ("load", step_load),
    ("optimize", step_optimize),
    ("quantize", step_quantize),
    ("schedule", step_schedule),
    ("generate", step_generate),
    ("vectors", step_vectors),
    ("write", step_write),
]


def random_codes(tensor, n: int, seed: int = 0) -> np.ndarray:
    """``n`` vectors of uniform random codes in ``tensor``'s range."""
    lo, hi = tensor.range
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, size=(n,) + tuple(tensor.shape[1:]), dtype=np.int64)


def reference_outputs(qgraph, inputs: np.ndarray) -> np.ndarray:
    """The integer reference's output codes, one row per input vector."""
    from .ref.integer import run_int

    tout = qgraph.tensors[qgraph.output]
    return np.stack([np.asarray(run_int(qgraph, x)).reshape(tout.shape[1:]) for x in inputs]).astype(np.int64)


def _write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(_jsonable(doc), indent=1) + "\n", encoding="utf-8")


def _manifest_digest(manifest: dict) -> str:
    """sha256 of the manifest without its own ``manifest_sha256`` (canonical JSON)."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(_jsonable(body), sort_keys=True).encode()).hexdigest()


def write_manifest(path: str | Path, manifest: dict) -> None:
    """Write ``manifest.json`` sealed with its own checksum, so hand edits are detected."""
    manifest = {**manifest, "manifest_sha256": _manifest_digest(manifest)}
    _write_json(Path(path), manifest)


def _qtensor_json(t) -> dict:
    return {"name": t.name, "shape": list(t.shape), "bits": t.bits, "scale": float(t.scale),
            "zero_point": t.zero_point}


def _manifest(s: FlowState, vfile: str) -> dict:
    p, qg = s.program, s.qgraph
    files = sorted(str(f.relative_to(s.tmp)) for f in s.tmp.rglob("*") if f.is_file())
    memory = {
        "weight_rom_bits": p.weight_rom_bits,
        "channel_rom_bits": p.chan_rom_bits,
        "lut_rom_bits": p.lut_rom_bits,
        "activation_bits": p.act_bits,
    }
    memory["total_bits"] = sum(memory.values())
    cfg = s.quant_config
    options = {
        "quant": _jsonable(asdict(cfg)) if cfg is not None else None,
        "calib": str(s.calib_path) if s.calib_path else None,
        "pe": p.pe,
        "simd": p.simd,
        "vectors": int(len(s.inputs)),
        "seed": s.seed,
        "command_line": _jsonable({k: v for k, v in (s.options or {}).items() if v not in (None, (), False)}),
    }
    return {
        "format": "hwflow.build/1",
        "hwflow_version": __version__,
        "model": str(s.model_path),
        "model_sha256": _sha256(s.model_path),
        "top": s.top,
        "verilog": vfile,
        "verilog_lines": s.verilog.count("\n"),
        "target": s.target.name,
        "target_source": s.target.source or s.target.name,
        "pe": p.pe,
        "simd": p.simd,
        "ops": [{"name": l.name, "op": l.op} for l in qg.layers],
        "host_tail": {"ops": list(qg.host_tail), "note": HOST_TAIL_NOTE},
        "cycles": p.cycles,
        "ideal_cycles": p.ideal_cycles,
        "macs": p.macs,
        "layer_cycles": {l.name: l.cycles for l in p.layers},
        "memory": memory,
        "estimate": _jsonable(p.estimate),
        "input": _qtensor_json(qg.tensors[qg.input]),
        "output": _qtensor_json(qg.tensors[qg.output]),
        "input_size": p.input_size,
        "output_size": p.output_size,
        "stream": {"lanes": p.simd, "in_bits": p.in_bits, "out_bits": p.out_bits,
                   "input_beats": p.input_beats, "output_beats": p.output_beats,
                   "maps": "vectors/stream.npz",
                   "note": "one beat = one word of lanes (lane 0 in the low bits); in_map/out_map "
                           "give each lane's flat NCHW code index, -1 = none (drive 0, ignore)"},
        "vectors": {"count": int(len(s.inputs)), "source": s.vector_source},
        "handoff": s.handoff,
        "pruning": _jsonable(s.storage),
        "options": options,
        "files": {f: _sha256(s.tmp / f) for f in files},
    }


def compile_model(
    model_path: str | Path,
    target: Any = "fpga-small",
    out_dir: str | Path | None = None,
    quant_config: Any = None,
    calib_path: str | Path | None = None,
    pe: int | None = None,
    simd: int | None = None,
    *,
    top: str | None = None,
    vectors: int = 8,
    seed: int = 0,
    options: dict | None = None,
    on_step: Callable[[str, float], None] | None = None,
) -> dict:
    """Compile an ONNX model into a BUILD directory (atomically).

    Parameters
    ----------
    model_path : path
        The ONNX model.
    target : str, path or Target
        Target name or TOML file (default ``fpga-small``).
    out_dir : path, optional
        The BUILD directory (default ``build/<model stem>``). An existing directory is
        replaced only if it is an earlier hwflow BUILD (or empty).
    quant_config : QuantConfig, optional
        Quantization settings (default ``QuantConfig()``).
    calib_path : path, optional
        Calibration data (``.npz``/``.npy``); also the source of the test vectors.
    pe, simd : int, optional
        Override the target's array shape.
    top : str, optional
        Verilog top module name (default: from the model file name).
    vectors : int
        Test vectors to store (default 8).
    seed : int
        Seed of the random vectors (when there is no calibration data).
    options : dict, optional
        The command line's quantization and pruning options (``hwflow compile``'s
        ``--scheme``, ``--bits``, ``--auto-bits``, ``--prune``, ``--share``, ...); when
        given they replace ``quant_config``.
    on_step : callable, optional
        Called as ``on_step(name, seconds)`` after each step.

    Returns
    -------
    dict
        The manifest, with ``"path"`` (the BUILD directory) and ``"compile_seconds"``
        (per step; not stored in the BUILD, which is reproducible byte for byte) added.

    Raises
    ------
    HwflowError
        ModelError, UnsupportedOpError, DataError, OptionError, TargetError, FitError:
        one line each, from the step that found the problem.
    """
    from .quant import QuantConfig
    from .targets import load_target

    model_path = Path(model_path)
    if not model_path.exists():
        from .errors import ModelError

        raise ModelError(f"model file {str(model_path)!r} does not exist")
    out = Path(out_dir) if out_dir is not None else Path("build") / model_path.stem
    _check_out_dir(out)
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
        raise OptionError(f"vectors must be a positive integer, not {vectors!r}")
    state = FlowState(
        model_path=model_path,
        target=load_target(target),
        out_dir=out,
        quant_config=quant_config if quant_config is not None else QuantConfig(),
        calib_path=Path(calib_path) if calib_path is not None else None,
        pe=pe,
        simd=simd,
        top=top or _top_name(model_path.stem),
        vectors=vectors,
        seed=seed,
        options=options,
    )
    with atomic_directory(out, keep=("sim_build",)) as tmp:
        state.tmp = tmp
        for name, step in STEPS:
            t0 = time.perf_counter()
            step(state)
            state.times[name] = time.perf_counter() - t0
            if on_step is not None:
                on_step(name, state.times[name])
        _keep_mtime_if_unchanged(out / state.manifest["verilog"], tmp / state.manifest["verilog"])
    # timings are returned, not written: the same compile must give a byte-identical BUILD
    seconds = {k: round(v, 4) for k, v in state.times.items()}
    return {**state.manifest, "compile_seconds": seconds, "path": str(out)}


def _keep_mtime_if_unchanged(old: Path, new: Path) -> None:
    """Give an unchanged Verilog file its old timestamp, so the simulators' caches in
    sim_build (Verilator skips identical inputs, Icarus compares mtimes) stay valid."""
    try:
        if old.is_file() and old.read_bytes() == new.read_bytes():
            st = old.stat()
            os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError:
        pass


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OptionError(f"output {str(out)!r} exists and is not a directory; choose another -o")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise OptionError(
            f"output directory {str(out)!r} is not empty and is not an hwflow build; "
            "choose another -o (hwflow only replaces its own builds)"
        )


# ---- reading a BUILD ---------------------------------------------------------------------

@dataclass
class Build:
    """A checked BUILD directory (see the module docstring for the layout)."""

    path: Path
    manifest: dict

    @property
    def top(self) -> str:
        return self.manifest["top"]

    @property
    def verilog_path(self) -> Path:
        return self.path / self.manifest["verilog"]

    @property
    def predicted_cycles(self) -> int:
        return int(self.manifest["cycles"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.manifest["input"]["shape"])

    def inputs(self) -> np.ndarray:
        return np.load(self.path / "vectors" / "inputs.npy")

    def expected(self) -> np.ndarray:
        return np.load(self.path / "vectors" / "expected.npy")

    def stream_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(in_map, out_map)``: which code each stream lane carries (see :mod:`hwflow.sim.beats`)."""
        with np.load(self.path / "vectors" / "stream.npz") as f:
            return f["in_map"], f["out_map"]

    def qgraph(self):
        """The integer network, from ``quant.json``."""
        try:
            return qgraph_from_json(json.loads((self.path / "quant.json").read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            raise BuildError(f"{self.path / 'quant.json'} is malformed ({exc}); re-run hwflow compile") from None

    def program(self):
        """Re-run the scheduler on ``quant.json`` with the recorded target and array
        shape, and check that the result equals ``schedule.json``.

        The Amaranth simulator needs the Program object (``schedule.json`` is a summary,
        not a loadable Program); scheduling is deterministic, so the check proves the
        rebuilt hardware is the one that was compiled.
        """
        from .schedule import schedule
        from .targets import load_target

        try:
            target = load_target(self.manifest["target_source"])
        except Exception:  # noqa: BLE001 - a moved target file falls back to the name
            target = load_target(self.manifest["target"])
        prog = schedule(self.qgraph(), target, pe=self.manifest["pe"], simd=self.manifest["simd"])
        want = json.loads((self.path / "schedule.json").read_text())
        got = json.loads(json.dumps(_jsonable(prog.to_json())))
        if got != want:
            raise BuildError(
                f"re-scheduling {self.path / 'quant.json'} does not reproduce schedule.json: this "
                f"hwflow ({__version__}) schedules differently from the one that compiled it "
                f"({self.manifest.get('hwflow_version')}); re-run hwflow compile"
            )
        return prog


_SIM_KEYS = ("cycles", "input", "output", "pe", "simd")
_SIM_FILES = ("quant.json", "schedule.json", "vectors/inputs.npy", "vectors/expected.npy", "vectors/stream.npz")


def load_build(path: str | Path, *, simulate: bool = True) -> Build:
    """Open a BUILD directory and check it is complete and unedited.

    Parameters
    ----------
    path : str or Path
    simulate : bool
        Also require what simulation needs (quant.json, schedule.json, vectors);
        synthesis needs only the manifest and the Verilog.

    Raises
    ------
    BuildError
        Missing directory or manifest, a missing file, or a file whose checksum differs
        from the manifest's (edited by hand); one line with what to do.
    """
    path = Path(path)
    if not path.is_dir():
        raise BuildError(f"build directory {str(path)!r} does not exist; run hwflow compile first")
    mfile = path / MANIFEST
    if not mfile.exists():
        raise BuildError(f"{str(path)!r} is not an hwflow build (no {MANIFEST}); run hwflow compile first")
    try:
        manifest = json.loads(mfile.read_text())
        files = manifest["files"]
        for key in ("top", "verilog", "target") + (_SIM_KEYS if simulate else ()):
            manifest[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{mfile} is malformed ({exc.__class__.__name__}: {exc}); re-run hwflow compile") from None
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise BuildError(f"{MANIFEST} in build {str(path)!r} was modified after compile (checksum differs); re-run hwflow compile")
    for rel, digest in files.items():
        f = path / rel
        if not f.is_file():
            raise BuildError(f"build {str(path)!r} is incomplete: {rel} is missing; re-run hwflow compile")
        if _sha256(f) != digest:
            raise BuildError(f"{rel} in build {str(path)!r} was modified after compile (checksum differs); re-run hwflow compile")
    for rel in (manifest["verilog"],) + (_SIM_FILES if simulate else ()):
        if rel not in files:
            raise BuildError(f"build {str(path)!r} is incomplete: the manifest lists no {rel}; re-run hwflow compile")
    return Build(path, manifest)


def load_inputs(path: str | Path, build: Build) -> np.ndarray:
    """Test inputs for ``hwflow simulate --inputs``: integer arrays are codes, float
    arrays are real values quantized with the input's scale and zero point.

    Accepts ``(N, *shape[1:])``, ``(N, size)`` or one vector of the input's shape.

    Raises
    ------
    DataError
        Unreadable file, wrong shape, or codes outside the input's range.
    """
    from .quant.qgraph import QTensor

    path = Path(path)
    t = build.manifest["input"]
    tin = QTensor(t["name"], tuple(t["shape"]), t["bits"], t["scale"], t["zero_point"])
    sample = tuple(tin.shape[1:])
    size = int(np.prod(sample))
    try:
        raw = np.load(path, allow_pickle=False)
        if isinstance(raw, np.lib.npyio.NpzFile):
            with raw:
                if "x" not in raw.files:
                    raise DataError(f"{str(path)!r} has no array 'x'; save inputs with np.save or np.savez(path, x=...)")
                raw = raw["x"]
    except FileNotFoundError:
        raise DataError(f"inputs file {str(path)!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"inputs file {str(path)!r} is not a readable .npy/.npz ({exc})") from None
    x = np.asarray(raw)
    if x.dtype.kind not in "iuf":
        raise DataError(f"inputs in {str(path)!r} have dtype {x.dtype}; need integer codes or floats")
    if x.shape in (sample, tuple(tin.shape)) or (x.ndim == 1 and x.size == size):
        x = x.reshape((1,) + sample)
    elif x.ndim >= 2 and x.shape[0] > 0 and (x.shape[1:] == sample or int(np.prod(x.shape[1:])) == size
                                             and x.ndim == 2):
        x = x.reshape((x.shape[0],) + sample)
    else:
        raise DataError(
            f"inputs in {str(path)!r} have shape {x.shape}; the model expects (N, {', '.join(map(str, sample))})"
        )
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise DataError(f"inputs in {str(path)!r} contain NaN or Inf")
        return tin.quantize(x)
    lo, hi = tin.range
    if x.min() < lo or x.max() > hi:
        raise DataError(
            f"input codes in {str(path)!r} span [{x.min()}, {x.max()}], outside the "
            f"{tin.bits}-bit range [{lo}, {hi}]; pass floats to have them quantized"
        )
    return x.astype(np.int64)
