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
