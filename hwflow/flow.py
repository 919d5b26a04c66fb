"""The compile flow: ONNX model → BUILD directory (layout in :mod:`hwflow.build`).

The flow is a list of named steps, FINN-builder style; each step reads and extends a
:class:`FlowState`::

    load → optimize → fit → quantize → schedule → generate → vectors → write

``fit`` refuses a design too big for the target (from shapes and options) before
calibration, quantization and ROM building (:mod:`hwflow.schedule.fit`).

Two of its stages are also what the other commands use on their own:
:func:`load_graph` reads a model the way every command does (imported, optimized;
pre-quantized models keep their parameters), and :func:`quantize_graph` prunes,
quantizes and shares weights as the configs say (:mod:`hwflow.config`).

A BUILD is written atomically: everything goes into a temporary directory next to the
target (same filesystem) that is renamed into place only when complete, so a failure or
Ctrl-C leaves no half-written BUILD and never destroys a previous good one. The same
compile gives a byte-identical BUILD (timings are returned, not written).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from . import __version__
from ._files import atomic_directory, sha256_file, write_json
from .build import FORMAT, HOST_TAIL_NOTE, LOAD_FILE, MANIFEST, MODEL_FILE, RESULTS, qgraph_to_json, write_manifest
from .config import AutoBitsConfig, PruneConfig, QuantConfig, ScheduleConfig, check_positive
from .errors import ModelError, OptionError

__all__ = ["STEPS", "FlowState", "Quantized", "compile_model", "load_graph", "quantize_graph", "CALIB_HINT"]

#: How a message asks for calibration data (the same words for the CLI and the API).
CALIB_HINT = "pass calibration data (--calib CALIB.npz; calib= in Python)"


def _sim_dir() -> Path:
    """Where hwflow.sim lives (``sim/`` in a checkout; ``hwflow/sim`` when installed)."""
    from . import sim

    return Path(sim.__file__).resolve().parent


def _top_name(stem: str) -> str:
    name = re.sub(r"\W", "_", stem).strip("_") or "accel"
    return name if name[0].isalpha() else f"m_{name}"


# ---- the stages every command shares ---------------------------------------------------------

def _is_prequantized(path: Path) -> bool:
    try:
        import onnx

        from .quant.qdq_import import is_quantized

        return is_quantized(onnx.load(str(path), load_external_data=False))
    except Exception:  # noqa: BLE001 - unreadable: load_model says why, in one line
        return False


def load_graph(model: str | Path, optimized: bool = True):
    """Import an ONNX model and run the default optimization pipeline.

    A pre-quantized model (onnxruntime QDQ, or QONNX ``Quant`` nodes) loses its
    quantization nodes and keeps their parameters in ``graph.meta["fixed_qparams"]``
    (see :mod:`hwflow.quant.qdq_import`).

    Parameters
    ----------
    model : str or Path
        The ``.onnx`` file.
    optimized : bool
        Run the optimization passes (``False``: the graph as imported, for ``inspect --raw``).

    Returns
    -------
    hwflow.ir.Graph

    Raises
    ------
    ModelError, UnsupportedOpError
        Unreadable or unsupported model; one line naming the file, node or op.
    """
    import onnx

    from .ir.onnx_import import from_onnx, load_model
    from .passes import optimize
    from .quant.qdq_import import follow_fusion, strip_quantization

    if not _is_prequantized(Path(model)):
        graph = load_model(model)
        return optimize(graph) if optimized else graph
    float_model, params = strip_quantization(onnx.load(str(model)))
    graph = from_onnx(float_model, name=Path(model).stem)
    if not optimized:
        return graph
    params = follow_fusion(graph, params)
    graph = optimize(graph)
    graph.meta["fixed_qparams"] = params
    return graph


@dataclass
class Quantized:
    """What :func:`quantize_graph` made.

    Attributes
    ----------
    qgraph : QGraph
        The integer network.
    config : QuantConfig
        The settings used (with the per-layer widths auto bits chose, if asked).
    storage : dict or None
        The pruning/sharing storage report (:func:`hwflow.prune.storage_report` plus
        ``settings``); None without pruning.
    curve : list of dict or None
        Auto bits' trade-off, one point per step; None without auto bits.
    """

    qgraph: Any
    config: QuantConfig
    storage: dict | None = None
    curve: list[dict] | None = None


def _prune_float(graph, calib: np.ndarray | None, prune: PruneConfig | None):
    """The float-graph pruning stages: ``(graph, info)``; unchanged and None without pruning."""
    if prune is None:
        return graph, None
    from .prune import correct_bias, prune_channels, prune_magnitude
    from .prune._layers import weight_nodes

    if prune.bias_correction and calib is None:
        raise OptionError(f"pruning bias correction measures mean outputs on data: {CALIB_HINT}")
    pruned, info = graph, {"masks": {}, "channels": None,
                           "original_weights": {n.name: graph.tensors[n.inputs[1]].size for n in weight_nodes(graph)}}
    if prune.channels:
        pruned, info["channels"] = prune_channels(pruned, prune.channels, norm=prune.norm)
    if prune.sparsity:
        pruned, info["masks"] = prune_magnitude(pruned, prune.sparsity, scope=prune.scope)
    if prune.bias_correction:
        pruned, _ = correct_bias(graph, pruned, calib)
    return pruned, info


def _prune_integer(qg, prune: PruneConfig | None, info) -> dict | None:
    """The integer pruning stages on ``qg`` (in place): zeros put back, weights shared;
    returns the storage report."""
    if prune is None:
        return None
    from .prune import mask_qgraph, share_weights, storage_report

    if info["masks"]:
        mask_qgraph(qg, info["masks"])
    if prune.share:
        share_weights(qg, prune.share)
    qg.attrs["pruning"] = prune.settings()
    if info["channels"] is not None:
        qg.attrs["pruning"]["channels"] = {k: list(v) for k, v in info["channels"]["pruned"].items()}
    report = storage_report(qg, info["original_weights"])
    report["settings"] = dict(qg.attrs["pruning"])
    return report


def quantize_graph(graph, calib: np.ndarray | None = None, quant: QuantConfig | None = None, *,
                   prune: PruneConfig | None = None, auto_bits: AutoBitsConfig | None = None) -> Quantized:
    """Prune, quantize and share weights as the configs say.

    Order: channel pruning, magnitude pruning, pruning bias correction (float graph),
    auto bits (if asked), quantization, pruned weights put back to zero, weight sharing
    (integer graph).

    Parameters
    ----------
    graph : hwflow.ir.Graph
        An optimized float graph (:func:`load_graph`).
    calib : numpy.ndarray, optional
        Calibration inputs ``(N, *input_shape[1:])``. ``quant.calibration == "none"``
        quantizes without them (pruning bias correction still uses them).
    quant : QuantConfig, optional
        Default ``QuantConfig()``.
    prune : PruneConfig, optional
        No pruning or sharing when None.
    auto_bits : AutoBitsConfig, optional
        Choose per-layer weight widths (needs ``calib``).

    Returns
    -------
    Quantized

    Raises
    ------
    OptionError
        Auto bits or pruning bias correction without calibration data, a budget that
        cannot be met, unknown layer names in the per-layer bits.
    """
    from .quant import quantize

    quant = QuantConfig() if quant is None else quant
    pruned, info = _prune_float(graph, calib, prune)
    if quant.calibration == "none":
        calib = None
    curve = None
    if auto_bits is not None:
        if calib is None:
            raise OptionError(f"auto bits measure each layer's sensitivity on data: {CALIB_HINT}")
        from .quant.autobits import auto_bits as search

        quant, curve = search(pruned, quant, calib, budget_kbit=auto_bits.budget_kbit,
                              agreement_floor=auto_bits.agreement_floor)
    qg = quantize(pruned, quant, calib)
    return Quantized(qg, quant, _prune_integer(qg, prune, info), curve)


# ---- the flow ---------------------------------------------------------------------------

@dataclass
class FlowState:
    """Everything the steps read and produce."""

    model_path: Path
    target: Any
    out_dir: Path
    quant: QuantConfig
    prune: PruneConfig | None
    auto_bits: AutoBitsConfig | None
    schedule: ScheduleConfig
    calib_path: Path | None
    top: str
    vectors: int
    seed: int
    optimized: bool = False
    storage: dict | None = None
    tmp: Path | None = None
    graph: Any = None
    qgraph: Any = None
    program: Any = None
    verilog: str = ""
    rom_files: dict[str, str] = field(default_factory=dict)
    calib: np.ndarray | None = None
    inputs: np.ndarray | None = None
    expected: np.ndarray | None = None
    vector_source: str = ""
    handoff: dict | None = None
    fit: dict | None = None
    manifest: dict = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)


def step_load(s: FlowState) -> None:
    """Import the ONNX model (static shapes, verified).

    A pre-quantized model (QDQ / QONNX) is read by :func:`load_graph`, which strips the
    quantization nodes, keeps their parameters and optimizes in one go.
    """
    from .ir import load_model

    if _is_prequantized(s.model_path):
        s.graph, s.optimized = load_graph(s.model_path), True
    else:
        s.graph = load_model(s.model_path)


def step_optimize(s: FlowState) -> None:
    """The default pass pipeline, to a fixed point."""
    from .passes import optimize

    if not s.optimized:
        s.graph = optimize(s.graph)


def step_fit(s: FlowState) -> None:
    """Refuse a design too big for the target from shapes and options alone, before the
    heavy steps (:mod:`hwflow.schedule.fit`; the scheduler's budget check stays the last word).
    With auto bits, at the narrowest weights the search may choose."""
    if s.target.unlimited:
        return
    from .quant.autobits import CANDIDATE_BITS
    from .schedule.fit import check_fit

    low = min(CANDIDATE_BITS)
    quant = s.quant if s.auto_bits is None else s.quant.with_(
        wbits=low, layer_bits={k: (low, a) for k, (_, a) in s.quant.layer_bits.items()})
    s.fit = check_fit(s.graph, s.target, quant, s.prune, s.schedule).to_json()


def step_quantize(s: FlowState) -> None:
    """Prune (if asked), then quantize, calibrating on the calibration data when given."""
    from .data import load_data

    if s.calib_path is not None:
        s.calib, _ = load_data(s.calib_path, s.graph.shape(s.graph.inputs[0]))
    res = quantize_graph(s.graph, s.calib, s.quant, prune=s.prune, auto_bits=s.auto_bits)
    s.qgraph, s.quant, s.storage = res.qgraph, res.config, res.storage


def step_schedule(s: FlowState) -> None:
    """Map onto the PE x SIMD array (with ``argmax``, the class index computed in
    hardware); checks the target's budget (FitError)."""
    from .schedule import schedule

    c = s.schedule
    if c.argmax:
        s.qgraph = s.qgraph.with_argmax()
    s.program = schedule(s.qgraph, s.target, pe=c.pe, simd=c.simd, fuse=c.fuse)


def step_generate(s: FlowState) -> None:
    """Amaranth → Verilog; the weight ROM's contents go to a ``$readmemh`` file beside it."""
    from .rtl.accelerator import verilog_files

    files = verilog_files(s.program, s.top)
    s.verilog = files.pop(f"{s.top}.v")
    s.rom_files = files


def step_vectors(s: FlowState) -> None:
    """Test vectors (calibration samples quantized with the input type, else random
    codes) and the integer reference's outputs for them."""
    from .data import random_codes
    from .quant.reference import run_int_batch

    qg = s.qgraph
    tin = qg.tensors[qg.input]
    if s.calib is not None:
        s.inputs = tin.quantize(s.calib[: s.vectors])
        s.vector_source = f"first {len(s.inputs)} samples of {s.calib_path.name}, quantized"
    else:
        s.inputs = random_codes(tin, s.vectors, s.seed, qg.input_shape)
        s.vector_source = f"uniform random codes (seed {s.seed})"
    s.inputs = s.inputs.reshape((len(s.inputs),) + tuple(qg.input_shape[1:])).astype(np.int64)
    s.expected = run_int_batch(s.qgraph, s.inputs).astype(np.int64)


def _copy_model(src: Path, dst: Path) -> None:
    """The model, byte for byte; one with external data files is saved with them embedded
    (so the copy stands alone)."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    proto = onnx.load(str(src), load_external_data=False)
    if any(uses_external_data(t) for t in _get_all_tensors(proto)):
        onnx.save(onnx.load(str(src)), str(dst))
    else:
        shutil.copyfile(src, dst)


def step_write(s: FlowState) -> None:
    """Write every BUILD file into the temporary directory, then the manifest."""
    d = s.tmp
    vfile = f"{s.top}.v"
    (d / vfile).write_text(s.verilog, encoding="utf-8")
    for name, text in s.rom_files.items():
        (d / name).write_text(text, encoding="ascii")
    if s.program.weight_load:  # the image the weight-load port takes after reset
        from .rtl.weight_rom import pack_words
        from .sim.beats import words_hex

        p = s.program
        (d / LOAD_FILE).write_text(words_hex(pack_words(p.weights, p.stored_wbits), p.weight_word_bits),
                                   encoding="ascii")
    _copy_model(s.model_path, d / MODEL_FILE)
    write_json(d / "schedule.json", s.program.to_json())
    write_json(d / "quant.json", qgraph_to_json(s.qgraph), indent=None)  # weights: the compact encoder is fast
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
    s.manifest = write_manifest(d / MANIFEST, _manifest(s, vfile))


#: The compile flow: (name, step) in order.
STEPS: list[tuple[str, Callable[[FlowState], None]]] = [
    ("load", step_load),
    ("optimize", step_optimize),
    ("fit", step_fit),
    ("quantize", step_quantize),
    ("schedule", step_schedule),
    ("generate", step_generate),
    ("vectors", step_vectors),
    ("write", step_write),
]


def _qtensor_json(t, shape=None) -> dict:
    return {"name": t.name, "shape": list(t.shape if shape is None else shape), "bits": t.bits,
            "scale": float(t.scale), "zero_point": t.zero_point}


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
    options = {
        "quant": asdict(s.quant),
        "auto_bits": None if s.auto_bits is None else asdict(s.auto_bits),
        "prune": None if s.prune is None else asdict(s.prune),
        "schedule": asdict(s.schedule),
        "calib": str(s.calib_path) if s.calib_path else None,
        "vectors": int(len(s.inputs)),
        "seed": s.seed,
    }
    return {
        "format": FORMAT,
        "hwflow_version": __version__,
        "model": str(s.model_path),
        "model_sha256": sha256_file(s.model_path),
        "model_file": MODEL_FILE,
        "top": s.top,
        "verilog": vfile,
        "verilog_lines": s.verilog.count("\n"),
        "rom_files": sorted(s.rom_files),
        "target": s.target.name,
        "target_source": s.target.source or s.target.name,
        "pe": p.pe,
        "simd": p.simd,
        "ops": [{"name": l.name, "op": l.op} for l in qg.layers],
        "host_tail": {"ops": qg.host_tail.ops, "outputs": qg.host_tail.outputs, "label": qg.host_tail.label,
                      "note": HOST_TAIL_NOTE},
        "cycles": p.cycles,
        "ideal_cycles": p.ideal_cycles,
        "macs": p.macs,
        "xnor_lanes": p.xrows * p.simd,  # binary MACs a cycle of the XNOR unit (0: none)
        "layer_cycles": {l.name: l.cycles for l in p.layers},
        "lanes": p.layer_lanes(),
        "memory": memory,
        "estimate": p.estimate,
        "input": {**_qtensor_json(qg.tensors[qg.input], qg.input_shape), "layout": qg.input_layout},
        "output": ({"name": "argmax", "shape": [1, 1], "bits": qg.index_bits, "scale": 1.0, "zero_point": 0,
                    "argmax": True} if qg.argmax else _qtensor_json(qg.tensors[qg.output])),
        "input_size": p.input_size,
        "output_size": p.output_size,
        "stream": {"lanes": p.simd, "in_bits": p.in_bits, "out_bits": p.out_bits,
                   "input_beats": p.input_beats, "output_beats": p.output_beats,
                   "maps": "vectors/stream.npz",
                   "note": "one beat = one word of lanes (lane 0 in the low bits); in_map/out_map "
                           "give each lane's flat NCHW code index, -1 = none (drive 0, ignore)"},
        "vectors": {"count": int(len(s.inputs)), "source": s.vector_source},
        "load": {"file": LOAD_FILE, "memory": p.weight_kind.name, "words": p.weight_words,
                 "word_bits": p.weight_word_bits, "cycles": p.load_cycles,
                 "ports": "wload_valid, wload_ready, wload_data, loaded",
                 "note": "after reset, stream the file's words in (word 0 first, one a beat); loaded rises "
                         "the cycle after the last; start is ignored until then"} if p.weight_load else None,
        "handoff": s.handoff,
        "pruning": s.storage,
        "options": options,
        "results": dict(RESULTS),
        "files": {f: sha256_file(s.tmp / f) for f in files},
    }


def compile_model(
    model_path: str | Path,
    target: Any = "fpga-small",
    out_dir: str | Path | None = None,
    quant_config: QuantConfig | None = None,
    calib_path: str | Path | None = None,
    pe: int | None = None,
    simd: int | None = None,
    *,
    prune: PruneConfig | None = None,
    auto_bits: AutoBitsConfig | None = None,
    schedule: ScheduleConfig | None = None,
    top: str | None = None,
    vectors: int = 8,
    seed: int = 0,
    on_step: Callable[[str, float], None] | None = None,
) -> dict:
    """Compile an ONNX model into a BUILD directory (atomically).

    :func:`hwflow.compile` is the same with the Python API's names, returning a
    :class:`hwflow.Build`.

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
        The array shape: shorthand for ``schedule=ScheduleConfig(pe=pe, simd=simd)``.
    prune : PruneConfig, optional
        Pruning and weight sharing.
    auto_bits : AutoBitsConfig, optional
        Choose per-layer weight widths (needs calibration data).
    schedule : ScheduleConfig, optional
        Array shape and MaxPool fusion (default: the target's shape, ``fuse="auto"``).
    top : str, optional
        Verilog top module name (default: from the model file name).
    vectors : int
        Test vectors to store (default 8).
    seed : int
        Seed of the random vectors (when there is no calibration data).
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
    from .targets import load_target

    model_path = Path(model_path)
    if not model_path.exists():
        raise ModelError(f"model file {str(model_path)!r} does not exist")
    if schedule is None:
        schedule = ScheduleConfig(pe=pe, simd=simd)
    elif pe is not None or simd is not None:
        raise OptionError("give the array shape either as pe/simd or in schedule=ScheduleConfig(...), not both")
    for name, cfg, kind in (("quant", quant_config, QuantConfig), ("prune", prune, PruneConfig),
                            ("auto_bits", auto_bits, AutoBitsConfig), ("schedule", schedule, ScheduleConfig)):
        if cfg is not None and not isinstance(cfg, kind):
            raise OptionError(f"{name} must be a {kind.__name__}, not {cfg!r}")
    out = Path(out_dir) if out_dir is not None else Path("build") / model_path.stem
    _check_out_dir(out)
    check_positive(vectors, "vectors")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise OptionError(f"seed must be an integer, not {seed!r}")
    state = FlowState(
        model_path=model_path,
        target=load_target(target),
        out_dir=out,
        quant=quant_config if quant_config is not None else QuantConfig(),
        prune=prune,
        auto_bits=auto_bits,
        schedule=schedule,
        calib_path=Path(calib_path) if calib_path is not None else None,
        top=top or _top_name(model_path.stem),
        vectors=vectors,
        seed=seed,
    )
    # One BLAS thread: the compile's matrix products are small, and a second OpenBLAS thread
    # that finds no free core spins; on a loaded 2-core machine it took 2.6x the CPU time
    # and 2.4x the wall time of ResNet-8's quantization (bench/results/scale.txt).
    with atomic_directory(out, keep=("sim_build",)) as tmp, threadpool_limits(limits=1, user_api="blas"):
        state.tmp = tmp
        for name, step in STEPS:
            t0 = time.perf_counter()
            with _no_cyclic_gc():
                step(state)
            state.times[name] = time.perf_counter() - t0
            if on_step is not None:
                on_step(name, state.times[name])
        _keep_mtime_if_unchanged(out / state.manifest["verilog"], tmp / state.manifest["verilog"])
    seconds = {k: round(v, 4) for k, v in state.times.items()}
    return {**state.manifest, "compile_seconds": seconds, "path": str(out)}


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Run a step without Python's cyclic garbage collector, then collect once.

    Elaboration builds millions of small objects (Amaranth's netlist); the collector's
    passes over them took 40 % of MobileNet's generate step and, with the design still
    in memory, half of the write step. One collection after the step frees the cycles
    the step made. What lived before the step is frozen (``gc.freeze``) meanwhile, so
    that collection does not walk every module and earlier result again (8 steps x
    15 ms for MobileNet); a cycle among older objects waits for the next full collection.
    """
    was = gc.isenabled()
    freeze = gc.get_freeze_count() == 0  # a caller's own frozen objects stay frozen
    gc.disable()
    if freeze:
        gc.freeze()
    try:
        yield
    finally:
        if was:
            gc.collect()
            gc.enable()
        if freeze:
            gc.unfreeze()


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
