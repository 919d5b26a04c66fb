"""Everything a report section reads, gathered once from a BUILD (its files, its copy of the
model, its result records) and the optional test data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BuildError


@dataclass
class Context:
    """A loaded BUILD plus the float model it was compiled from."""

    path: Path
    manifest: dict
    schedule: dict
    qgraph: Any
    target: Any
    graph: Any = None  # the optimized float Graph
    float_weights: dict[str, np.ndarray] = field(default_factory=dict)
    synth: dict | None = None
    sim: dict | None = None
    data: tuple[np.ndarray, np.ndarray | None] | None = None  # --data (x, y)
    data_name: str = ""

    @property
    def clock_mhz(self) -> float:
        return float(self.target.clock_mhz)


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


def load_context(build, *, data: str | Path | None = None) -> Context:
    """Open a BUILD (a path is checked by :func:`hwflow.build.load_build`) and read what
    the report needs: its files, its copy of the model, its result records, and ``data``.

    Raises
    ------
    BuildError
        Missing, incomplete or edited BUILD or result record.
    DataError
        Unreadable ``data``.
    """
    from ..build import load_build
    from ..flow import load_graph

    build = load_build(build)
    path = build.path
    try:
        schedule = json.loads((path / "schedule.json").read_text(encoding="utf-8"))
        schedule["layers"], schedule["memory"]["tensors"]  # noqa: B018 - shape check
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{path / 'schedule.json'} is malformed ({exc}); re-run hwflow compile") from None
    ctx = Context(path, build.manifest, schedule, build.qgraph(), build.target())
    ctx.graph = load_graph(build.model_path)
    ctx.float_weights = _plan_weights(ctx.graph, build.manifest)
    ctx.synth = build.result("synth")
    ctx.sim = build.result("simulation")
    if data is not None:
        from ..data import load_data

        ctx.data = load_data(data, tuple(build.manifest["input"]["shape"]))
        ctx.data_name = Path(data).name
    return ctx


def int_activations(qg, x_codes: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the integer network on a batch of input codes (the reference's
    layer function, batched like :func:`hwflow.quant.reference.run_int_batch`)."""
    from ..quant.reference import run_layer

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
