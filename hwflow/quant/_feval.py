"""Float evaluation of a plan (batched), used for calibration and bias correction.

Windows are computed by the IR's kernels (:mod:`hwflow.ir.kernels`), as in the float
reference.
"""

from __future__ import annotations

import numpy as np

from ..ir import kernels
from ._lower import FLayer, Plan, act_fn


def linear(layer: FLayer, x: np.ndarray, weight: np.ndarray | None = None, bias: bool = True) -> np.ndarray:
    """Conv/Gemm in float64 (``weight`` overrides the layer's), without activation."""
    w = layer.weight if weight is None else weight
    x = np.asarray(x, dtype=np.float64)
    if layer.op == "gemm":
        y = x.reshape(x.shape[0], -1) @ w.T
        return y + layer.bias if bias else y
    return kernels.conv(x, w, layer.bias if bias else None, layer.window(x.shape[2:]), layer.groups)


def run_layer_float(layer: FLayer, ins: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(pre, out)``: the value before the LUT (after clamp) and the layer's output."""
    x = ins[0]
    if layer.op in ("conv", "gemm"):
        y = linear(layer, x)
    elif layer.op == "maxpool":
        return x, kernels.max_pool(x, layer.window(x.shape[2:]))
    elif layer.op == "avgpool":  # lowering refuses pads that count_include_pad=0 would skip
        y = kernels.avg_pool(x, layer.window(x.shape[2:]), count_include_pad=True)
    elif layer.op == "add":
        y = ins[0] + ins[1]
    elif layer.op == "concat":
        return x, np.concatenate(ins, axis=1)
    elif layer.op == "lut":
        y = x
    else:
        raise AssertionError(layer.op)
    if layer.clamp is not None:
        y = act_fn(layer.clamp)(y)
    pre = y
    if layer.lut is not None:
        y = act_fn(layer.lut)(y)
    return pre, y


def run_plan(plan: Plan, x: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
    """Every tensor of the plan (``pre`` tensors of LUT layers included) for batch ``x``
    (in the user's layout, :attr:`Plan.input_layout`)."""
    env = {plan.input: plan.to_input(np.asarray(x, dtype=np.float64).reshape(len(x), -1))}
    for layer in plan.layers:
        pre, out = run_layer_float(layer, [env[t] for t in layer.inputs])
        if layer.pre is not None and layer.op != "lut":
            env[layer.pre] = pre
        env[layer.output] = out.reshape(out.shape[0], *plan.shapes[layer.output][1:])
    return env if keep else env[plan.output]


#: Float values the streamed pass keeps per tensor (its batches hold about this many each).
BATCH_VALUES = 1 << 22


def calibration_pass(plan: Plan, x: np.ndarray, limit: int, head: int = 0,
                     head_tensors: set[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run the plan over calibration batch ``x`` in batches; keep what calibration needs.

    Returns ``(values, first)``: per tensor (``pre`` tensors of LUT layers included), a
    flat float64 array of at most ``limit`` of its values, and ``first``, the tensors
    ``head_tensors`` (default: all) on the first ``head`` samples. A tensor with more
    than ``limit`` values keeps a uniform, deterministic subsample (each batch gives its
    share, drawn without replacement) plus its exact minimum and maximum; a smaller one
    keeps all its values, in the order :func:`run_plan` would give them.

    Peak memory is one batch's tensors (about :data:`BATCH_VALUES` floats), not the
    whole calibration set's: the pass never holds every tensor for every sample.
    """
    n = len(x)
    per_sample = sum(int(np.prod(plan.shapes[t][1:], dtype=np.int64))
                     for t in [plan.input] + [l.output for l in plan.layers])
    step = max(1, min(n, BATCH_VALUES // max(per_sample, 1)))
    values: dict[str, np.ndarray] = {}  # filled in place, batch by batch
    filled: dict[str, int] = {}
    rngs: dict[str, np.random.Generator] = {}
    first: dict[str, np.ndarray] = {}

    def keep(t: str, v: np.ndarray, b0: int, b1: int) -> None:
        flat = v.reshape(-1)
        per = flat.size // (b1 - b0)
        whole = per * n <= limit
        if t not in values:
            values[t] = np.empty(per * n if whole else limit)
            filled[t] = 0
        if whole:
            part = flat
        else:
            budget = limit - 2  # the last two places hold the extremes
            k = budget * b1 // n - budget * b0 // n
            rng = rngs.setdefault(t, np.random.default_rng(0))
            part = flat[rng.choice(flat.size, k, replace=False)]
            lo, hi = float(flat.min()), float(flat.max())
            ext = values[t][-2:]
            ext[:] = (lo, hi) if b0 == 0 else (min(ext[0], lo), max(ext[1], hi))
        values[t][filled[t]:filled[t] + part.size] = part
        filled[t] += part.size

    for b0 in range(0, n, step):
        b1 = min(n, b0 + step)
        env = run_plan(plan, x[b0:b1])
        for t, v in env.items():
            keep(t, v, b0, b1)
            if b0 < head and (head_tensors is None or t in head_tensors):
                if t not in first:
                    first[t] = np.empty((head,) + v.shape[1:])
                first[t][b0:min(b1, head)] = v[: head - b0]
        del env
    return values, first
