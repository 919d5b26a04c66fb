"""Everything a report section reads, gathered once from a BUILD (and its model)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BuildError

SIM_JSON = "simulation.json"  # a SimResult.to_json() document, when one was saved
SYNTH_JSON = "synth.json"


@dataclass
class Context:
    """A loaded BUILD plus the float model it came from (when it can be found)."""

    path: Path
    manifest: dict
    schedule: dict
    qgraph: Any
    target: Any
    graph: Any = None  # optimized float Graph, None when the model is not found
    model_note: str = ""
    float_weights: dict[str, np.ndarray] = field(default_factory=dict)
    synth: dict | None = None
    sim: dict | None = None
    data: tuple[np.ndarray, np.ndarray | None] | None = None  # --data (x, y)
    data_name: str = ""

    @property
    def clock_mhz(self) -> float:
        return float(self.target.clock_mhz)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _find_model(build: Path, manifest: dict, model: str | Path | None) -> tuple[Path | None, str]:
    """The model file: ``--model``, else the manifest's path (as given, or relative to
    the BUILD's parent), accepted only if its sha256 matches the manifest's."""
    want = manifest.get("model_sha256")
    if model is not None:
        p = Path(model)
        if not p.is_file():
            raise BuildError(f"model file {str(p)!r} does not exist; give the ONNX file BUILD was compiled from")
        if want and _sha256(p) != want:
            raise BuildError(f"{str(p)!r} is not the model {str(build)!r} was compiled from (sha256 differs)")
        return p, ""
    recorded = Path(manifest.get("model", ""))
    for p in (recorded, build.parent / recorded, build.parent / recorded.name):
        if p.is_file() and (not want or _sha256(p) == want):
            return p, ""
    return None, (f"the model {str(recorded)!r} was not found (or has changed) from here; "
                  "pass --model MODEL.onnx for the float-weight and error sections")


def _plan_weights(graph, manifest: dict) -> dict[str, np.ndarray]:
    """Float weights of each Conv/Gemm as the quantizer saw them: after cross-layer
    equalization (a reparametrization of the same network) but before ``--clamp-sigma``
    (so clamped weights show up as beyond the range)."""
    from ..quant._lower import lower
    from ..quant.recover import equalize

    plan = lower(graph)
    opts = (manifest.get("options") or {}).get("quant") or {}
    if opts.get("cle"):
        equalize(plan)
    return {fl.name: np.asarray(fl.weight, np.float64) for fl in plan.layers if fl.has_weight}


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {path} ({exc}); delete it or re-run the step that wrote it") from None
    if not isinstance(doc, dict):
        raise BuildError(f"{path} is not a JSON object; delete it or re-run the step that wrote it")
    return doc


def load_context(build_dir: str | Path, *, model: str | Path | None = None,
                 data: str | Path | None = None, sim: dict | None = None) -> Context:
    """Open ``build_dir`` (checked by :func:`hwflow.flow.load_build`) and what the report needs.

    Raises
    ------
    BuildError
        Missing, incomplete or edited BUILD; a ``--model`` that is not BUILD's model.
    DataError
        Unreadable ``--data``.
    """
    from ..flow import load_build
    from ..targets import load_target

    build = load_build(build_dir)
    path = build.path
    try:
        schedule = json.loads((path / "schedule.json").read_text(encoding="utf-8"))
        schedule["layers"], schedule["memory"]["tensors"]  # noqa: B018 - shape check
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{path / 'schedule.json'} is malformed ({exc}); re-run hwflow compile") from None
    try:
        target = load_target(build.manifest["target_source"])
    except Exception:  # noqa: BLE001 - a moved target file falls back to the name
        target = load_target(build.manifest["target"])
    ctx = Context(path, build.manifest, schedule, build.qgraph(), target)
    mpath, ctx.model_note = _find_model(path, build.manifest, model)
    if mpath is not None:
        from ..ir import load_model
        from ..passes import optimize

        ctx.graph = optimize(load_model(mpath))
        ctx.float_weights = _plan_weights(ctx.graph, build.manifest)
    ctx.synth = _read_json(path / SYNTH_JSON)
    ctx.sim = sim if sim is not None else _read_json(path / SIM_JSON)
    if data is not None:
        from ..data import load_data

        ctx.data = load_data(data, tuple(build.manifest["input"]["shape"]))
        ctx.data_name = Path(data).name
    return ctx


def int_activations(qg, x_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the integer network on a batch of input codes (the reference's
    layer function, batched like :func:`hwflow.ref.integer.run_int_batch`)."""
    from ..ref.integer import run_layer

    tin = qg.tensors[qg.input]
    nb = len(x_codes)
    env = {qg.input: np.asarray(x_codes, np.int64).reshape(nb, *tin.shape[1:])}
    for layer in qg.layers:
        out = run_layer(layer, [env[t] for t in layer.inputs], [qg.tensors[t] for t in layer.inputs],
                        qg.tensors[layer.output])
        env[layer.output] = out.reshape(nb, *qg.tensors[layer.output].shape[1:])
    return env


def sample_inputs(ctx: Context, limit: int = 512) -> tuple[np.ndarray, str]:
    """Float inputs for per-layer error statistics: ``--data`` if given, else the
    BUILD's test vectors (dequantized codes, which are exact inputs of both networks)."""
    if ctx.data is not None:
        x = ctx.data[0][:limit]
        return np.asarray(x, np.float64), f"{len(x)} samples of {ctx.data_name}"
    tin = ctx.qgraph.tensors[ctx.qgraph.input]
    codes = np.load(ctx.path / "vectors" / "inputs.npy")
    return tin.dequantize(codes), f"the BUILD's {len(codes)} test vectors"
