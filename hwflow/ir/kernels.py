"""Float kernels: ONNX semantics on plain numpy arrays, the one evaluator of each op.

Two levels:

- array primitives with explicit geometry (:func:`conv`, :func:`max_pool`,
  :func:`avg_pool`, :func:`apply_activation`, ...). Every stage that evaluates a
  window computes it here: the float reference, constant folding, the quantizer's
  float plan and calibration, the pruner's bias correction;
- node kernels ``op_*(node, ins) -> outs``, one per ONNX op, reading the node's
  attributes. :data:`hwflow.ir.ops.OPS` names each op's kernel.

Batches: graph shapes have batch 1, but the arrays may carry any leading batch ``N``;
every kernel works on the batch axis directly (a window kernel is one numpy call on a
strided view of all windows of all samples), so calibrating on hundreds of samples is
cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ModelError
from ._geometry import Window, window

if TYPE_CHECKING:
    from .graph import Node

__all__ = [
    "Kernel", "apply_activation", "sigmoid", "clip", "pad_windows", "windows", "conv", "max_pool", "avg_pool",
    "reshape_target",
]  # fmt: skip

#: Largest patch matrix (im2col) a convolution builds at once, in elements (32 MiB of
#: float64); bigger batches go in chunks of samples.
_PATCH_ELEMENTS = 1 << 22

#: A node kernel: ``(node, input arrays) -> output arrays`` (None for omitted inputs).
Kernel = Callable[["Node", list], list]


def _attr(node: Node, name: str, default: Any) -> Any:
    v = node.attrs.get(name, default)
    return default if v is None else v


def _opt(ins: Sequence, i: int) -> np.ndarray | None:
    return ins[i] if len(ins) > i and ins[i] is not None else None


# -- activations -------------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid without overflow warnings, in ``x``'s dtype."""
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def clip(x: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    """Clamp ``x`` to ``[lo, hi]`` (either bound may be None)."""
    if lo is not None:
        x = np.maximum(x, np.asarray(lo, dtype=x.dtype))
    if hi is not None:
        x = np.minimum(x, np.asarray(hi, dtype=x.dtype))
    return x


def apply_activation(y: np.ndarray, act: dict[str, Any] | None) -> np.ndarray:
    """Apply a fused activation (``attrs["activation"]`` of a Conv/Gemm) to ``y``."""
    if not act:
        return y
    op = act["op"]
    if op == "Relu":
        return np.maximum(y, y.dtype.type(0))
    if op == "Clip":
        return clip(y, act.get("min"), act.get("max"))
    if op == "LeakyRelu":
        alpha = y.dtype.type(act.get("alpha", 0.01))
        return np.where(y >= 0, y, y * alpha)
    if op == "Sigmoid":
        return sigmoid(y)
    if op == "Tanh":
        return np.tanh(y)
    if op == "Sign":
        return np.sign(y)
    raise ValueError(f"unknown fused activation {op!r}")


# -- windows: convolution and pooling ------------------------------------------------
def pad_windows(x: np.ndarray, win: Window, value: float, lead: int = 2) -> np.ndarray:
    """Pad the spatial axes (after ``lead`` axes) so every window of ``win`` fits."""
    widths = [(0, 0)] * lead
    for i, (n, b, e) in enumerate(zip(x.shape[lead:], win.pads_begin, win.pads_end)):
        need = (win.out[i] - 1) * win.strides[i] + (win.kernel[i] - 1) * win.dilations[i] + 1
        widths.append((b, max(e, need - n - b)))
    if not any(b or e for b, e in widths):
        return x
    return np.pad(x, widths, constant_values=value)


def windows(xp: np.ndarray, win: Window, lead: int = 2) -> np.ndarray:
    """Every window of padded ``xp`` (:func:`pad_windows`): a view ``(*lead, *out, *kernel)``."""
    r = len(win.kernel)
    extent = tuple((k - 1) * d + 1 for k, d in zip(win.kernel, win.dilations))
    v = sliding_window_view(xp, extent, axis=tuple(range(lead, lead + r)))
    return v[(slice(None),) * lead
             + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(win.out, win.strides))
             + tuple(slice(None, None, d) for d in win.dilations)]


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, win: Window, groups: int = 1) -> np.ndarray:
    """Grouped N-d convolution (ONNX Conv without activation), in ``x``'s dtype.

    Parameters
    ----------
    x : numpy.ndarray
        ``(N, C, *spatial)``.
    w : numpy.ndarray
        ``(M, C/groups, *kernel)``.
    b : numpy.ndarray or None
        ``(M,)``.
    win : Window
        The resolved geometry (:func:`hwflow.ir._geometry.window`).
    groups : int
    """
    r = len(win.kernel)
    n, c = x.shape[:2]
    m, cg = w.shape[0], c // groups
    k, o = int(np.prod(win.kernel, dtype=np.int64)), int(np.prod(win.out, dtype=np.int64))
    step = max(1, _PATCH_ELEMENTS // max(c * k * o, 1))
    if n > step:  # bound the patch matrix's memory
        return np.concatenate([conv(x[i:i + step], w, b, win, groups) for i in range(0, n, step)])
    v = windows(pad_windows(x, win, 0), win)  # N, C, *out, *kernel: a view
    v = v.reshape(n, groups, cg, *win.out, *win.kernel)
    # The patch matrix (im2col), then one matmul per group: (M/g, C/g*k) @ (C/g*k, N*out),
    # as numpy's einsum computes it; the quantizer's float64 ranges depend on these sums.
    cols = v.transpose(1, 2, *range(3 + r, 3 + 2 * r), 0, *range(3, 3 + r)).reshape(groups, cg * k, n * o)
    wg = w.reshape(groups, m // groups, cg * k).astype(x.dtype, copy=False)
    y = np.matmul(wg, cols).reshape(groups, m // groups, n, *win.out)
    y = y.transpose(2, 0, 1, *range(3, 3 + r)).reshape(n, m, *win.out)
    if b is not None:
        y = y + b.astype(x.dtype).reshape((1, m) + (1,) * r)
    return y


def max_pool(x: np.ndarray, win: Window) -> np.ndarray:
    """Max over each window of ``(N, C, *spatial)``; padding never wins."""
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    r = len(win.kernel)
    return windows(pad_windows(x, win, lowest), win).max(axis=tuple(range(-r, 0)))


def avg_pool(x: np.ndarray, win: Window, count_include_pad: bool = False) -> np.ndarray:
    """Mean over each window of ``(N, C, *spatial)``.

    It divides by the window cells that are real input (or explicit padding, with
    ``count_include_pad``); the ``ceil_mode`` overhang never counts.
    """
    axes = tuple(range(-len(win.kernel), 0))
    total = windows(pad_windows(x, win, 0), win).sum(axis=axes)
    inside = np.ones(x.shape[2:], dtype=x.dtype)
    if count_include_pad:  # explicit pads count; pad_windows adds only the overhang, as 0
        inside = np.pad(inside, list(zip(win.pads_begin, win.pads_end)), constant_values=1)
        explicit = Window(win.kernel, win.strides, win.dilations, (0,) * len(win.kernel), (0,) * len(win.kernel),
                          win.out)
        mask = pad_windows(inside, explicit, 0, lead=0)
    else:
        mask = pad_windows(inside, win, 0, lead=0)
    count = windows(mask, win, lead=0).sum(axis=axes)
    return (total / count).astype(x.dtype, copy=False)


def op_conv(node: Node, ins: list) -> list:
    x, w, b = ins[0], ins[1], _opt(ins, 2)
    win = window(x.shape[2:], w.shape[2:], node.attrs)
    y = conv(x, w, b, win, int(_attr(node, "group", 1)))
    return [apply_activation(y, node.attrs.get("activation"))]


def op_maxpool(node: Node, ins: list) -> list:
    x = ins[0]
    return [max_pool(x, window(x.shape[2:], node.attrs["kernel_shape"], node.attrs))]


def op_avgpool(node: Node, ins: list) -> list:
    x = ins[0]
    win = window(x.shape[2:], node.attrs["kernel_shape"], node.attrs)
    return [avg_pool(x, win, bool(int(_attr(node, "count_include_pad", 0))))]


def _reduce(fn, node: Node, ins: list) -> list:
    x = ins[0]
    axes = node.attrs.get("axes") if len(ins) < 2 or ins[1] is None else np.asarray(ins[1]).reshape(-1)
    axes = None if axes is None else tuple(int(a) for a in axes)
    return [fn(x, axis=axes, keepdims=bool(int(node.attrs.get("keepdims", 1)))).astype(x.dtype)]


def op_reduce_mean(node: Node, ins: list) -> list:
    return _reduce(np.mean, node, ins)


def op_reduce_max(node: Node, ins: list) -> list:
    return _reduce(np.max, node, ins)


def op_global_maxpool(node: Node, ins: list) -> list:
    x = ins[0]
    return [x.max(axis=tuple(range(2, x.ndim)), keepdims=True)]


def op_global_avgpool(node: Node, ins: list) -> list:
    x = ins[0]
    return [avg_pool(x, window(x.shape[2:], x.shape[2:], {}))]


# -- dense ---------------------------------------------------------------------------
def op_gemm(node: Node, ins: list) -> list:
    a, b, c = ins[0], ins[1], _opt(ins, 2)
    if int(_attr(node, "transA", 0)):
        a = a.T
    if int(_attr(node, "transB", 0)):
        b = b.T
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    y = a @ b
    if alpha != 1.0:
        y = y * y.dtype.type(alpha)
    if c is not None and beta != 0.0:
        y = y + (c * c.dtype.type(beta) if beta != 1.0 else c).astype(y.dtype, copy=False)
    return [apply_activation(y, node.attrs.get("activation"))]


def op_matmul(node: Node, ins: list) -> list:
    return [np.matmul(ins[0], ins[1])]


def op_batchnorm(node: Node, ins: list) -> list:
    x, scale, bias, mean, var = ins[:5]
    eps = float(_attr(node, "epsilon", 1e-5))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = (scale / np.sqrt(var + np.asarray(eps, dtype=var.dtype))).reshape(shape)
    y = (x - mean.reshape(shape)) * inv + bias.reshape(shape)
    return [y.astype(x.dtype, copy=False)]


# -- elementwise ---------------------------------------------------------------------
def op_add(node: Node, ins: list) -> list:
    return [np.add(ins[0], ins[1])]


def op_sub(node: Node, ins: list) -> list:
    return [np.subtract(ins[0], ins[1])]


def op_mul(node: Node, ins: list) -> list:
    return [np.multiply(ins[0], ins[1])]


def op_div(node: Node, ins: list) -> list:
    a, b = ins
    if a.dtype.kind in "iu":  # ONNX integer division truncates toward zero
        return [np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))]
    return [np.divide(a, b)]


def op_sum(node: Node, ins: list) -> list:
    y = ins[0]
    for t in ins[1:]:
        y = y + t
    return [y]


def op_relu(node: Node, ins: list) -> list:
    return [apply_activation(ins[0], {"op": "Relu"})]


def op_leaky_relu(node: Node, ins: list) -> list:
    return [apply_activation(ins[0], {"op": "LeakyRelu", "alpha": _attr(node, "alpha", 0.01)})]


def op_clip(node: Node, ins: list) -> list:
    lo = _opt(ins, 1) if len(ins) > 1 else node.attrs.get("min")
    hi = _opt(ins, 2) if len(ins) > 2 else node.attrs.get("max")
    return [clip(ins[0], lo, hi)]


def op_sigmoid(node: Node, ins: list) -> list:
    return [sigmoid(ins[0])]


def op_tanh(node: Node, ins: list) -> list:
    return [np.tanh(ins[0])]


def op_sign(node: Node, ins: list) -> list:
    return [np.sign(ins[0])]


# -- shape manipulation ----------------------------------------------------------------
def op_flatten(node: Node, ins: list) -> list:
    x = ins[0]
    axis = int(_attr(node, "axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)]


def reshape_target(in_shape: Sequence[int], shape: Sequence[int], allowzero: bool = False) -> tuple[int, ...]:
    """The output shape of ONNX Reshape (``0`` copies the input dim, ``-1`` is inferred)."""
    out = [int(in_shape[i]) if int(d) == 0 and not allowzero else int(d) for i, d in enumerate(shape)]
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        total = int(np.prod(in_shape, dtype=np.int64))
        out[out.index(-1)] = total // known if known else 0
    return tuple(out)


def op_reshape(node: Node, ins: list) -> list:
    x, shape = ins[0], ins[1]
    return [x.reshape(reshape_target(x.shape, shape.tolist(), bool(_attr(node, "allowzero", 0))))]


def op_transpose(node: Node, ins: list) -> list:
    perm = node.attrs.get("perm")
    return [np.transpose(ins[0], None if perm is None else tuple(perm))]


def op_concat(node: Node, ins: list) -> list:
    return [np.concatenate(ins, axis=int(node.attrs["axis"]))]


def op_identity(node: Node, ins: list) -> list:
    outs = [ins[0]]
    if len(node.outputs) > 1:  # Dropout's mask: all kept at inference
        outs.append(np.ones(ins[0].shape, dtype=bool))
    return outs


def op_cast(node: Node, ins: list) -> list:
    return [ins[0].astype(node.attrs["to"])]


def op_constant(node: Node, ins: list) -> list:
    return [np.asarray(node.attrs["value"])]


def op_constant_of_shape(node: Node, ins: list) -> list:
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(tuple(int(d) for d in ins[0]), value[0], dtype=value.dtype)]


def op_shape(node: Node, ins: list) -> list:
    shape = np.array(ins[0].shape, dtype=np.int64)
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return [shape[start:end]]


def op_gather(node: Node, ins: list) -> list:
    return [np.take(ins[0], ins[1], axis=int(_attr(node, "axis", 0)))]


def _axes(node: Node, ins: list) -> list[int] | None:
    axes = _opt(ins, 1)
    if axes is not None:
        return [int(a) for a in np.asarray(axes).reshape(-1)]
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def op_unsqueeze(node: Node, ins: list) -> list:
    x, axes = ins[0], _axes(node, ins)
    rank = x.ndim + len(axes)
    return [np.expand_dims(x, tuple(sorted(a + rank if a < 0 else a for a in axes)))]


def op_squeeze(node: Node, ins: list) -> list:
    x, axes = ins[0], _axes(node, ins)
    return [np.squeeze(x, None if axes is None else tuple(axes))]


# -- host-side tail ------------------------------------------------------------------
def _softmax_axes(node: Node, x: np.ndarray) -> tuple:
    """Softmax's reduction axes; opsets < 13 flatten everything from ``axis`` on."""
    axis = int(_attr(node, "axis", -1 if not node.attrs.get("coerce_2d") else 1))
    axis = axis + x.ndim if axis < 0 else axis
    if node.attrs.get("coerce_2d"):
        return tuple(range(axis, x.ndim))
    return (axis,)


def op_softmax(node: Node, ins: list) -> list:
    x = ins[0]
    axes = _softmax_axes(node, x)
    e = np.exp(x - x.max(axis=axes, keepdims=True))
    return [(e / e.sum(axis=axes, keepdims=True)).astype(x.dtype, copy=False)]


def op_logsoftmax(node: Node, ins: list) -> list:
    x = ins[0]
    axes = _softmax_axes(node, x)
    z = x - x.max(axis=axes, keepdims=True)
    return [(z - np.log(np.exp(z).sum(axis=axes, keepdims=True))).astype(x.dtype, copy=False)]


def op_argmax(node: Node, ins: list) -> list:
    x = ins[0]
    axis = int(_attr(node, "axis", 0))
    axis = axis + x.ndim if axis < 0 else axis
    if int(_attr(node, "select_last_index", 0)):
        idx = x.shape[axis] - 1 - np.argmax(np.flip(x, axis), axis=axis)
    else:
        idx = np.argmax(x, axis=axis)
    if int(_attr(node, "keepdims", 1)):
        idx = np.expand_dims(idx, axis)
    return [idx.astype(np.int64)]


def op_array_feature_extractor(node: Node, ins: list) -> list:
    """ai.onnx.ml ArrayFeatureExtractor: pick ``indices`` on the last axis (1-D input -> 1 x k)."""
    x, idx = ins
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    n = x.shape[-1] if x.ndim else 0
    if idx.size and not (-n <= idx.min() and idx.max() < n):  # onnxruntime refuses these too
        raise ModelError(f"node {node.name!r} (ArrayFeatureExtractor): index {int(idx.max())} is out of range "
                         f"for the {n} entries of its table; the model is malformed, re-export it")
    y = np.take(x, idx, axis=-1)
    return [y.reshape(1, -1) if x.ndim == 1 else y]


# -- QONNX (Brevitas' export): quantizers with qonnx's own semantics ----------------------
#: QONNX ``rounding_mode`` -> numpy rounding (qonnx.custom_op.general.quant).
QONNX_ROUNDING = {"ROUND": np.round, "HALF_EVEN": np.round, "FLOOR": np.floor, "CEIL": np.ceil, "DOWN": np.fix}


def qonnx_int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """The integer range of a QONNX ``Quant`` (qonnx's ``min_int``/``max_int``)."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def qonnx_rounding(node: Node) -> Callable:
    mode = str(_attr(node, "rounding_mode", "ROUND"))
    fn = QONNX_ROUNDING.get(mode.upper())
    if fn is None:
        raise ModelError(f"node {node.name!r} ({node.op}): rounding mode {mode!r} is not supported; "
                         f"use one of {', '.join(QONNX_ROUNDING)}")
    return fn


def op_quant(node: Node, ins: list) -> list:
    """QONNX ``Quant(x, scale, zero_point, bit_width)``: ``(clip(round(x/s + z)) - z) * s``, in
    ``x``'s dtype as qonnx computes it (a 1-bit signed Quant is bipolar)."""
    x, s, z, bw = ins
    bits = int(np.asarray(bw).reshape(-1)[0])
    s, z = np.asarray(s, dtype=x.dtype), np.asarray(z, dtype=x.dtype)
    y = x / s + z
    signed = bool(_attr(node, "signed", 1))
    if bits == 1 and signed:
        y = np.where(y >= 0, x.dtype.type(1), x.dtype.type(-1))
    else:
        lo, hi = qonnx_int_range(bits, signed, bool(_attr(node, "narrow", 0)))
        y = qonnx_rounding(node)(np.clip(y, lo, hi))
    return [((y - z) * s).astype(x.dtype, copy=False)]


def op_trunc(node: Node, ins: list) -> list:
    """QONNX ``Trunc`` (v2: ``x, scale, zero_point, in_bits, out_scale, out_bits``; Brevitas'
    TruncAvgPool2d): ``round(x/s + z)`` divided by ``T = 2**round(log2(out_scale/s))``, clamped
    to the output range, rounded by ``rounding_mode``, back by ``(y - z/T) * out_scale``."""
    if len(ins) != 6:
        raise ModelError(f"node {node.name!r} (Trunc): {len(ins)} inputs; hwflow reads QONNX's Trunc v2 "
                         "(x, scale, zeropt, in_bitwidth, out_scale, out_bitwidth)")
    x, s, z, _, out_s, out_bw = ins
    dt = x.dtype
    s, z, out_s = (np.asarray(v, dtype=dt) for v in (s, z, out_s))
    t = (2 ** np.round(np.log2(out_s / s))).astype(dt)
    y = np.round(x / s + z) / t
    lo, hi = qonnx_int_range(int(np.asarray(out_bw).reshape(-1)[0]), bool(_attr(node, "signed", 1)),
                             bool(_attr(node, "narrow", 0)))
    y = qonnx_rounding(node)(np.clip(y, lo, hi))
    return [((y - z / t) * out_s).astype(dt, copy=False)]


def op_bipolar_quant(node: Node, ins: list) -> list:
    """QONNX ``BipolarQuant(x, scale)``: ``scale`` where ``x >= 0``, else ``-scale``."""
    x, s = ins
    return [(np.where(x >= 0, x.dtype.type(1), x.dtype.type(-1)) * np.asarray(s, dtype=x.dtype)).astype(x.dtype)]


def op_pad(node: Node, ins: list) -> list:
    """Pad (attributes normalised on import: ``pads`` of every axis, ``value``, ``mode``);
    negative pads crop."""
    x = ins[0]
    r = x.ndim
    pads = [int(p) for p in node.attrs["pads"]]
    begin, end = pads[:r], pads[r:]
    mode = str(_attr(node, "mode", "constant"))
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if mode == "constant":
        y = np.pad(x, widths, mode="constant", constant_values=np.asarray(_attr(node, "value", 0), x.dtype))
    elif mode in ("reflect", "edge", "wrap"):
        y = np.pad(x, widths, mode=mode)
    else:
        raise ModelError(f"node {node.name!r} (Pad): mode {mode!r} is not supported")
    crop = tuple(slice(max(-b, 0), y.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begin, end)))
    return [y[crop]]
