"""Float evaluation of a plan (batched), used for calibration and bias correction."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._lower import FLayer, Plan, act_fn


def _windows(x: np.ndarray, layer: FLayer, value: float) -> np.ndarray:
    t, l, b, r = layer.pads
    if any(layer.pads):
        x = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)
    win = sliding_window_view(x, layer.kernel, axis=(2, 3))
    return win[:, :, :: layer.strides[0], :: layer.strides[1]]


def linear(layer: FLayer, x: np.ndarray, weight: np.ndarray | None = None, bias: bool = True) -> np.ndarray:
    """Conv/Gemm in float64 (``weight`` overrides the layer's), without activation."""
    w = layer.weight if weight is None else weight
    if layer.op == "gemm":
        y = x.reshape(x.shape[0], -1) @ w.T
        return y + layer.bias if bias else y
    win = _windows(x, layer, 0.0)  # N, Cin, OH, OW, kh, kw
    n, g = x.shape[0], layer.groups
    cout, cin_g = w.shape[:2]
    win = win.reshape(n, g, cin_g, *win.shape[2:])
    wg = w.reshape(g, cout // g, cin_g, *w.shape[2:])
    y = np.einsum("ngcyxhw,gochw->ngoyx", win, wg, optimize=True).reshape(n, cout, *win.shape[3:5])
    return y + layer.bias[None, :, None, None] if bias else y


def run_layer_float(layer: FLayer, ins: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(pre, out)``: the value before the LUT (after clamp) and the layer's output."""
    x = ins[0]
    if layer.op in ("conv", "gemm"):
        y = linear(layer, x)
    elif layer.op == "maxpool":
        return x, _windows(x, layer, -np.inf).max(axis=(-1, -2))
    elif layer.op == "avgpool":
        y = _windows(x, layer, 0.0).mean(axis=(-1, -2))
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
    """Every tensor of the plan (``pre`` tensors of LUT layers included) for batch ``x``."""
    env = {plan.input: np.asarray(x, dtype=np.float64).reshape(-1, *plan.shapes[plan.input][1:])}
    for layer in plan.layers:
        pre, out = run_layer_float(layer, [env[t] for t in layer.inputs])
        if layer.pre is not None and layer.op != "lut":
            env[layer.pre] = pre
        env[layer.output] = out.reshape(out.shape[0], *plan.shapes[layer.output][1:])
    return env if keep else env[plan.output]
