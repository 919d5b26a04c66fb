"""The float reference: a numpy interpreter of hwflow's float graph.

It runs raw (just imported) and optimized graphs alike: fused activations
(``attrs["activation"]`` on Conv/Gemm) and the host-side tail (Softmax, LogSoftmax,
ArgMax) are computed too. Its outputs equal onnxruntime's within 1e-5.

The per-op kernels in :data:`KERNELS` follow ONNX semantics on plain numpy arrays; the
constant-folding pass evaluates constant nodes with the very same kernels.

Batches: graph shapes have batch 1, but ``x`` may carry any leading batch ``N``; every
kernel works on the batch axis directly (one BLAS call per kernel offset, not one per
sample), so calibrating on hundreds of samples is cheap.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DataError, ModelError, UnsupportedOpError
from ..ir._geometry import window
from ..ir.graph import Graph, Node

__all__ = ["run_float", "run_float_multi", "run_node", "apply_activation", "KERNELS"]

Kernel = Callable[[Node, list], list]


def _attr(node: Node, name: str, default: Any) -> Any:
    v = node.attrs.get(name, default)
    return default if v is None else v


def _opt(ins: Sequence, i: int) -> np.ndarray | None:
    return ins[i] if len(ins) > i and ins[i] is not None else None


# -- activations -------------------------------------------------------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _clip(x: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
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
        return _clip(y, act.get("min"), act.get("max"))
    if op == "LeakyRelu":
        alpha = y.dtype.type(act.get("alpha", 0.01))
        return np.where(y >= 0, y, y * alpha)
    if op == "Sigmoid":
        return _sigmoid(y)
    if op == "Tanh":
        return np.tanh(y)
    raise ValueError(f"unknown fused activation {op!r}")


# -- convolution and pooling -------------------------------------------------------
def _windows(xp: np.ndarray, win, offs: tuple[int, ...]) -> np.ndarray:
    """The strided slice of padded ``xp`` seen by kernel offset ``offs`` (all outputs)."""
    sl = tuple(
        slice(o * d, o * d + (n - 1) * s + 1, s)
        for o, d, n, s in zip(offs, win.dilations, win.out, win.strides)
    )
    return xp[(Ellipsis,) + sl]


def _pad(x: np.ndarray, win, value: float, lead: int = 2) -> np.ndarray:
    """Pad the spatial axes (after ``lead`` axes) so every window of ``win`` fits."""
    widths = [(0, 0)] * lead
    for i, (n, b, e) in enumerate(zip(x.shape[lead:], win.pads_begin, win.pads_end)):
        need = (win.out[i] - 1) * win.strides[i] + (win.kernel[i] - 1) * win.dilations[i] + 1
        widths.append((b, max(e, need - n - b)))
    if not any(b or e for b, e in widths):
        return x
    return np.pad(x, widths, constant_values=value)


def _conv(node: Node, ins: list) -> list:
    x, w, b = ins[0], ins[1], _opt(ins, 2)
    groups = int(_attr(node, "group", 1))
    win = window(x.shape[2:], w.shape[2:], node.attrs)
    n, c = x.shape[:2]
    m, cg = w.shape[0], c // groups
    mg = m // groups
    xp = _pad(x, win, 0)
    xg = xp.reshape((n, groups, cg) + xp.shape[2:])
    wg = w.reshape((groups, mg, cg) + w.shape[2:]).astype(x.dtype, copy=False)
    out = np.zeros((n, groups, mg, int(np.prod(win.out, dtype=np.int64))), dtype=x.dtype)
    for offs in np.ndindex(*w.shape[2:]):
        xs = _windows(xg, win, offs).reshape(n, groups, cg, -1)
        wk = wg[(Ellipsis,) + offs]  # (groups, mg, cg)
        if cg == 1:  # depthwise: a broadcast multiply beats many 1x1 matmuls
            out += wk[None, :, :, :] * xs
        else:
            out += np.matmul(wk[None], xs)
    y = out.reshape((n, m) + win.out)
    if b is not None:
        y = y + b.astype(x.dtype).reshape((1, m) + (1,) * len(win.out))
    return [apply_activation(y, node.attrs.get("activation"))]


def _maxpool(node: Node, ins: list) -> list:
    x = ins[0]
    win = window(x.shape[2:], node.attrs["kernel_shape"], node.attrs)
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xp = _pad(x, win, lowest)
    y = None
    for offs in np.ndindex(*win.kernel):
        s = _windows(xp, win, offs)
        y = s.copy() if y is None else np.maximum(y, s)
    return [y]


def _avgpool(node: Node, ins: list) -> list:
    x = ins[0]
    win = window(x.shape[2:], node.attrs["kernel_shape"], node.attrs)
    xp = _pad(x, win, 0)
    # Count, per output, the window cells that are real input (or explicit padding
    # with count_include_pad); the ceil_mode overhang never counts.
    inside = np.ones(x.shape[2:], dtype=x.dtype)
    if int(_attr(node, "count_include_pad", 0)):
        inside = np.pad(inside, list(zip(win.pads_begin, win.pads_end)), constant_values=1)
        mask = _pad_mask(inside, win, explicit=True)
    else:
        mask = _pad_mask(inside, win, explicit=False)
    total = np.zeros(x.shape[:2] + win.out, dtype=x.dtype)
    count = np.zeros(win.out, dtype=x.dtype)
    for offs in np.ndindex(*win.kernel):
        total += _windows(xp, win, offs)
        count += _windows(mask, win, offs)
    return [(total / count).astype(x.dtype, copy=False)]


def _pad_mask(inside: np.ndarray, win, explicit: bool) -> np.ndarray:
    """A 0/1 map over the fully padded spatial grid marking cells that count."""
    if explicit:  # ``inside`` already covers begin/end pads; add only the overhang
        widths = []
        for i, n in enumerate(inside.shape):
            need = (win.out[i] - 1) * win.strides[i] + (win.kernel[i] - 1) * win.dilations[i] + 1
            widths.append((0, max(0, need - n)))
        return np.pad(inside, widths)
    return _pad(inside, win, 0, lead=0)


def _global_avgpool(node: Node, ins: list) -> list:
    x = ins[0]
    return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype)]


# -- dense ---------------------------------------------------------------------------
def _gemm(node: Node, ins: list) -> list:
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


def _matmul(node: Node, ins: list) -> list:
    return [np.matmul(ins[0], ins[1])]


def _batchnorm(node: Node, ins: list) -> list:
    x, scale, bias, mean, var = ins[:5]
    eps = float(_attr(node, "epsilon", 1e-5))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = (scale / np.sqrt(var + np.asarray(eps, dtype=var.dtype))).reshape(shape)
    y = (x - mean.reshape(shape)) * inv + bias.reshape(shape)
    return [y.astype(x.dtype, copy=False)]


# -- elementwise ---------------------------------------------------------------------
def _div(node: Node, ins: list) -> list:
    a, b = ins
    if a.dtype.kind in "iu":  # ONNX integer division truncates toward zero
        return [np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))]
    return [np.divide(a, b)]


def _binary(fn) -> Kernel:
    return lambda node, ins: [fn(ins[0], ins[1])]


def _sum(node: Node, ins: list) -> list:
    y = ins[0]
    for t in ins[1:]:
        y = y + t
    return [y]


def _leaky(node: Node, ins: list) -> list:
    return [apply_activation(ins[0], {"op": "LeakyRelu", "alpha": _attr(node, "alpha", 0.01)})]


def _clip_node(node: Node, ins: list) -> list:
    lo = _opt(ins, 1) if len(ins) > 1 else node.attrs.get("min")
    hi = _opt(ins, 2) if len(ins) > 2 else node.attrs.get("max")
    return [_clip(ins[0], lo, hi)]


# -- shape manipulation ----------------------------------------------------------------
def _flatten(node: Node, ins: list) -> list:
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


def _reshape(node: Node, ins: list) -> list:
    x, shape = ins[0], ins[1]
    return [x.reshape(reshape_target(x.shape, shape.tolist(), bool(_attr(node, "allowzero", 0))))]


def _transpose(node: Node, ins: list) -> list:
    perm = node.attrs.get("perm")
    return [np.transpose(ins[0], None if perm is None else tuple(perm))]


def _concat(node: Node, ins: list) -> list:
    return [np.concatenate(ins, axis=int(node.attrs["axis"]))]


def _identity(node: Node, ins: list) -> list:
    outs = [ins[0]]
    if len(node.outputs) > 1:  # Dropout's mask: all kept at inference
        outs.append(np.ones(ins[0].shape, dtype=bool))
    return outs


def _cast(node: Node, ins: list) -> list:
    return [ins[0].astype(node.attrs["to"])]


def _constant(node: Node, ins: list) -> list:
    return [np.asarray(node.attrs["value"])]


def _constant_of_shape(node: Node, ins: list) -> list:
    value = node.attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(tuple(int(d) for d in ins[0]), value[0], dtype=value.dtype)]


def _shape(node: Node, ins: list) -> list:
    shape = np.array(ins[0].shape, dtype=np.int64)
    start, end = node.attrs.get("start", 0), node.attrs.get("end")
    return [shape[start:end]]


def _gather(node: Node, ins: list) -> list:
    return [np.take(ins[0], ins[1], axis=int(_attr(node, "axis", 0)))]


def _axes(node: Node, ins: list) -> list[int] | None:
    axes = _opt(ins, 1)
    if axes is not None:
        return [int(a) for a in np.asarray(axes).reshape(-1)]
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def _unsqueeze(node: Node, ins: list) -> list:
    x, axes = ins[0], _axes(node, ins)
    rank = x.ndim + len(axes)
    return [np.expand_dims(x, tuple(sorted(a + rank if a < 0 else a for a in axes)))]


def _squeeze(node: Node, ins: list) -> list:
    x, axes = ins[0], _axes(node, ins)
    return [np.squeeze(x, None if axes is None else tuple(axes))]


# -- host-side tail ------------------------------------------------------------------
def _softmax_axis(node: Node, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Softmax's reduction axes; opsets < 13 flatten everything from ``axis`` on."""
    axis = int(_attr(node, "axis", -1 if not node.attrs.get("coerce_2d") else 1))
    axis = axis + x.ndim if axis < 0 else axis
    if node.attrs.get("coerce_2d"):
        return x, tuple(range(axis, x.ndim))
    return x, (axis,)


def _softmax(node: Node, ins: list) -> list:
    x, axes = _softmax_axis(node, ins[0])
    e = np.exp(x - x.max(axis=axes, keepdims=True))
    return [(e / e.sum(axis=axes, keepdims=True)).astype(x.dtype, copy=False)]


def _logsoftmax(node: Node, ins: list) -> list:
    x, axes = _softmax_axis(node, ins[0])
    z = x - x.max(axis=axes, keepdims=True)
    return [(z - np.log(np.exp(z).sum(axis=axes, keepdims=True))).astype(x.dtype, copy=False)]


def _argmax(node: Node, ins: list) -> list:
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


def _array_feature_extractor(node: Node, ins: list) -> list:
    """ai.onnx.ml ArrayFeatureExtractor: pick ``indices`` on the last axis (1-D input -> 1 x k)."""
    x, idx = ins
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    n = x.shape[-1] if x.ndim else 0
    if idx.size and not (-n <= idx.min() and idx.max() < n):  # onnxruntime refuses these too
        raise ModelError(f"node {node.name!r} (ArrayFeatureExtractor): index {int(idx.max())} is out of range "
                         f"for the {n} entries of its table; the model is malformed, re-export it")
    y = np.take(x, idx, axis=-1)
    return [y.reshape(1, -1) if x.ndim == 1 else y]


#: ONNX op type -> kernel ``(node, input arrays) -> output arrays``.
KERNELS: dict[str, Kernel] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _div,
    "Sum": _sum,
    "BatchNormalization": _batchnorm,
    "Relu": lambda node, ins: [apply_activation(ins[0], {"op": "Relu"})],
    "LeakyRelu": _leaky,
    "Clip": _clip_node,
    "Sigmoid": lambda node, ins: [_sigmoid(ins[0])],
    "Tanh": lambda node, ins: [np.tanh(ins[0])],
    "MaxPool": _maxpool,
    "AveragePool": _avgpool,
    "GlobalAveragePool": _global_avgpool,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Concat": _concat,
    "Identity": _identity,
    "Dropout": _identity,
    "Cast": _cast,
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Shape": _shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Softmax": _softmax,
    "LogSoftmax": _logsoftmax,
    "ArgMax": _argmax,
    "ArrayFeatureExtractor": _array_feature_extractor,
}


def run_node(node: Node, ins: list) -> list:
    """Evaluate one node on numpy inputs (``None`` for omitted optional inputs)."""
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise UnsupportedOpError(
            f"node {node.name!r}: op {node.op} has no float kernel; supported: {', '.join(sorted(KERNELS))}"
        )
    outs = kernel(node, ins)
    return [np.asarray(o) for o in outs]


def run_float_multi(graph: Graph, feeds: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
    """Run ``graph`` on named inputs and return its outputs by name.

    Parameters
    ----------
    graph : Graph
    feeds : dict of str to numpy.ndarray
        One array per graph input. Activations may carry a batch ``N`` on axis 0
        where the graph declares 1.
    keep : bool
        Return every computed tensor (inputs included), not only the outputs.
    """
    env: dict[str, np.ndarray] = {}
    batched, n = False, 1
    for name in graph.inputs:
        if name not in feeds:
            raise DataError(f"no value given for graph input {name!r}")
        t = graph.tensors[name]
        x = np.asarray(feeds[name])
        if x.dtype != t.dtype and not (x.dtype.kind == t.dtype.kind == "b"):
            x = x.astype(t.dtype)
        if x.ndim != len(t.shape) or tuple(x.shape[1:]) != t.shape[1:]:
            raise DataError(
                f"input {name!r} has shape {x.shape!r}; the model expects {t.shape!r} (any batch)"
            )
        if x.ndim > 0 and x.shape[0] != t.shape[0]:
            batched, n = True, x.shape[0]
        env[name] = x

    def value(t: str) -> np.ndarray | None:
        if not t:
            return None
        if t in env:
            return env[t]
        return graph.tensors[t].data

    for node in graph.nodes:
        ins = [value(t) for t in node.inputs]
        on_batch = batched and bool(node.inputs) and not graph.tensors[node.inputs[0]].is_const
        if on_batch:
            _check_batch_axis(graph, node)
        if on_batch and node.op == "Reshape":
            outs = [_batched_reshape(graph, node, ins[0], n)]
        else:
            outs = run_node(node, ins)
        for name, arr in zip(node.outputs, outs):
            if name:
                env[name] = arr
    if keep:
        return env
    return {t: value(t) for t in graph.outputs}


def _check_batch_axis(graph: Graph, node: Node) -> None:
    """Refuse a batch when ``node`` would mix samples (it works on axis 0)."""
    rank = len(graph.shape(node.inputs[0]))
    a = node.attrs
    axes: list[int] = []
    if node.op in ("Concat", "Softmax", "LogSoftmax", "ArgMax"):
        default = {"Concat": 0, "ArgMax": 0, "Softmax": 1 if a.get("coerce_2d") else -1}.get(node.op, -1)
        axes = [int(a.get("axis", default))]
    elif node.op == "Flatten":
        axes = [0] if int(a.get("axis", 1)) == 0 else []  # axis 0 merges the batch into one row
    elif node.op == "Transpose":
        perm = a.get("perm")
        axes = [0] if perm is not None and perm[0] != 0 else ([] if perm is not None or rank < 2 else [0])
    elif node.op in ("Squeeze", "Unsqueeze"):
        axes = [int(x) for x in a.get("axes") or []]
    elif node.op == "Gemm" and a.get("transA"):
        axes = [0]
    if any((x + rank if x < 0 else x) == 0 for x in axes):
        raise DataError(f"node {node.name!r} ({node.op}) works across axis 0, the batch: run one sample at a time")


def _batched_reshape(graph: Graph, node: Node, x: np.ndarray, n: int) -> np.ndarray:
    """Reshape keeping a batch ``n`` that the static shapes declare as 1."""
    out_shape = graph.shape(node.outputs[0])
    if x.ndim and x.shape[0] == n and graph.shape(node.inputs[0])[0] == 1 and out_shape and out_shape[0] == 1:
        return x.reshape((n,) + tuple(out_shape[1:]))
    # not batch-major (e.g. a label lookup's (1, n)): plain ONNX semantics, if they fit
    target = reshape_target(x.shape, graph.const(node.inputs[1]).tolist(), bool(node.attrs.get("allowzero", 0)))
    if int(np.prod(target, dtype=np.int64)) == x.size:
        return x.reshape(target)
    raise DataError(
        f"node {node.name!r} (Reshape) mixes the batch axis into {out_shape!r}; run one sample at a time"
    )


def run_float(graph: Graph, x: np.ndarray, keep: bool = False):
    """Run the float reference on a one-input graph.

    Parameters
    ----------
    graph : Graph
        A raw or optimized graph with exactly one input.
    x : numpy.ndarray
        The input, with the graph's input shape or with any batch ``N`` on axis 0.
    keep : bool
        If True, return a dict of every computed tensor (input and every node output).

    Returns
    -------
    numpy.ndarray or tuple or dict
        The output (a tuple if the graph has several), or the dict with ``keep``.
    """
    if len(graph.inputs) != 1:
        raise DataError(f"run_float needs a one-input graph; {graph.name!r} has inputs {graph.inputs!r}")
    res = run_float_multi(graph, {graph.inputs[0]: x}, keep=keep)
    if keep:
        return res
    outs = tuple(res[t] for t in graph.outputs)
    return outs[0] if len(outs) == 1 else outs
