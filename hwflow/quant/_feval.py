"""Float evaluation of a plan (batched), used for calibration and bias correction.

Windows are computed by the IR's kernels (:mod:`hwflow.ir.kernels`), as in the float
reference.
"""

from __future__ import annotations

import numpy as np

from ..ir import kernels
from ._lower import FLayer, Plan, act_fn
from .calibrate import RangeSketch


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


#: Float values a batch of the streamed pass holds (about; at least one sample).
BATCH_VALUES = 1 << 22


def calibration_pass(plan: Plan, x: np.ndarray, head: int = 0, head_tensors: set[str] | None = None,
                     mean_tensors: set[str] = frozenset()) -> tuple[dict[str, RangeSketch], dict[str, np.ndarray]]:
    """Run the plan over calibration batch ``x`` in batches; keep what calibration needs.

    Returns ``(sketches, first)``: per tensor (``pre`` tensors of LUT layers included), the
    :class:`~hwflow.quant.calibrate.RangeSketch` of all its values over every sample, and
    ``first``: the tensors ``head_tensors`` (default: all) on the first ``head`` samples,
    and the tensors ``mean_tensors`` (not in ``head_tensors``) as their mean over those
    samples, ``(1, *shape)``.

    Peak memory is one batch's tensors (about :data:`BATCH_VALUES` floats) and a sketch
    per tensor, not the whole calibration set's values.
    """
    n = len(x)
    per_sample = sum(int(np.prod(plan.shapes[t][1:], dtype=np.int64))
                     for t in [plan.input] + [l.output for l in plan.layers])
    step = max(1, min(n, BATCH_VALUES // max(per_sample, 1)))
    sketches: dict[str, RangeSketch] = {}
    first: dict[str, np.ndarray] = {}
    for b0 in range(0, n, step):
        b1 = min(n, b0 + step)
        env = run_plan(plan, x[b0:b1])
        for t, v in env.items():
            sketches.setdefault(t, RangeSketch()).add(v)
            if b0 >= head:
                continue
            if head_tensors is None or t in head_tensors:
                if t not in first:
                    first[t] = np.empty((head,) + v.shape[1:])
                first[t][b0:min(b1, head)] = v[: head - b0]
            elif t in mean_tensors:
                part = v[: head - b0].sum(axis=0, keepdims=True) / min(head, n)
                first[t] = part if t not in first else first[t] + part
        del env
    return sketches, first
