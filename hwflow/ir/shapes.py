"""Per-op shape rules: a node's output shapes from its input shapes (and constants).

Each rule is ``(node, input shapes, input constants) -> output shapes``; the op
registry (:data:`hwflow.ir.ops.OPS`) names each op's rule, and
:func:`hwflow.ir.ops.infer_node_shapes` / :func:`~hwflow.ir.ops.check_shapes` apply
them. The importer takes shapes from onnx shape inference and falls back on these
rules where inference leaves a dimension unknown; :meth:`Graph.verify` re-derives every
shape after every pass, so a pass that rewires a node into an inconsistent shape fails
at once, naming the node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ._geometry import window
from .kernels import reshape_target

if TYPE_CHECKING:
    from .graph import Node

__all__ = ["Rule", "Mismatch", "Unknown"]

#: A shape rule: ``(node, input shapes, input constants) -> output shapes``.
Rule = Callable[["Node", list, list], list]


class Mismatch(Exception):
    """Raised by a rule whose inputs do not fit together."""


class Unknown(Exception):
    """Raised by a rule that needs a constant input which is computed at run time."""


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise Mismatch(msg)


def _prod(dims: Sequence[int]) -> int:
    return int(np.prod(dims, dtype=np.int64))


def _axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    _need(0 <= a < max(rank, 1), f"axis {axis} out of range for rank {rank}")
    return a


def same(node: Node, s: list, c: list) -> list:
    return [s[0]] * len(node.outputs)


def broadcast(node: Node, s: list, c: list) -> list:
    try:
        return [tuple(np.broadcast_shapes(*[x for x in s if x is not None]))]
    except ValueError:
        raise Mismatch(f"shapes {s!r} do not broadcast") from None


def conv(node: Node, s: list, c: list) -> list:
    x, w = s[0], s[1]
    group = int(node.attrs.get("group", 1))
    _need(len(x) == len(w) and len(x) >= 3, f"input {x!r} and weight {w!r} ranks differ")
    _need(x[1] == w[1] * group, f"input has {x[1]} channels, weight expects {w[1]} x group {group}")
    _need(w[0] % group == 0, f"{w[0]} output channels not divisible by group {group}")
    if len(s) > 2 and s[2] is not None:
        _need(s[2] == (w[0],), f"bias shape {s[2]!r} != ({w[0]},)")
    win = window(x[2:], w[2:], node.attrs)
    _need(all(o >= 1 for o in win.out), f"window larger than input {x!r}")
    return [(x[0], w[0]) + win.out]


def pool(node: Node, s: list, c: list) -> list:
    x = s[0]
    kernel = node.attrs.get("kernel_shape")
    _need(kernel is not None and len(kernel) == len(x) - 2, f"kernel_shape {kernel!r} vs input {x!r}")
    win = window(x[2:], kernel, node.attrs)
    _need(all(o >= 1 for o in win.out), f"window larger than input {x!r}")
    return [(x[0], x[1]) + win.out] * len(node.outputs)


def global_pool(node: Node, s: list, c: list) -> list:
    return [s[0][:2] + (1,) * (len(s[0]) - 2)]


def reduce(node: Node, s: list, c: list) -> list:
    axes = _axes_of(node, c)
    x = s[0]
    axes = range(len(x)) if axes is None else [_axis(a, len(x)) for a in axes]
    keep = int(node.attrs.get("keepdims", 1))
    return [tuple(1 if i in axes else d for i, d in enumerate(x) if keep or i not in axes)]


def gemm(node: Node, s: list, c: list) -> list:
    a, b = s[0], s[1]
    _need(len(a) == 2 and len(b) == 2, f"Gemm needs 2-D operands, got {a!r} and {b!r}")
    if node.attrs.get("transA"):
        a = a[::-1]
    if node.attrs.get("transB"):
        b = b[::-1]
    _need(a[1] == b[0], f"inner dimensions differ: {a!r} x {b!r}")
    out = (a[0], b[1])
    if len(s) > 2 and s[2] is not None:
        try:
            _need(np.broadcast_shapes(s[2], out) == out, f"C {s[2]!r} does not broadcast to {out!r}")
        except ValueError:
            raise Mismatch(f"C {s[2]!r} does not broadcast to {out!r}") from None
    return [out]


def matmul(node: Node, s: list, c: list) -> list:
    a, b = s[0], s[1]
    _need(len(a) >= 1 and len(b) >= 1, "MatMul of scalars")
    a2 = (1,) + a if len(a) == 1 else a
    b2 = b + (1,) if len(b) == 1 else b
    _need(a2[-1] == b2[-2], f"inner dimensions differ: {a!r} x {b!r}")
    try:
        batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        raise Mismatch(f"batch dims of {a!r} and {b!r} do not broadcast") from None
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [out]


def batchnorm(node: Node, s: list, c: list) -> list:
    x = s[0]
    for p in s[1:5]:
        _need(p == (x[1],), f"parameter shape {p!r} != ({x[1]},)")
    return [x]


def flatten(node: Node, s: list, c: list) -> list:
    x = s[0]
    axis = int(node.attrs.get("axis", 1))
    axis = axis + len(x) if axis < 0 else axis
    _need(0 <= axis <= len(x), f"axis {axis} out of range for {x!r}")
    return [(_prod(x[:axis]), _prod(x[axis:]))]


def reshape(node: Node, s: list, c: list) -> list:
    if c[1] is None:
        raise Unknown
    out = reshape_target(s[0], np.asarray(c[1]).tolist(), bool(node.attrs.get("allowzero", 0)))
    _need(_prod(out) == _prod(s[0]) and all(d >= 0 for d in out), f"cannot reshape {s[0]!r} to {out!r}")
    return [out]


def transpose(node: Node, s: list, c: list) -> list:
    x = s[0]
    perm = node.attrs.get("perm")
    perm = list(range(len(x)))[::-1] if perm is None else list(perm)
    _need(sorted(perm) == list(range(len(x))), f"perm {perm!r} does not fit rank {len(x)}")
    return [tuple(x[p] for p in perm)]


def concat(node: Node, s: list, c: list) -> list:
    first = s[0]
    axis = _axis(int(node.attrs.get("axis", 0)), len(first))
    for other in s[1:]:
        _need(
            len(other) == len(first) and all(a == b for i, (a, b) in enumerate(zip(first, other)) if i != axis),
            f"shapes {s!r} differ outside axis {axis}",
        )
    return [first[:axis] + (sum(x[axis] for x in s),) + first[axis + 1 :]]


def argmax(node: Node, s: list, c: list) -> list:
    x = s[0]
    axis = _axis(int(node.attrs.get("axis", 0)), len(x))
    if int(node.attrs.get("keepdims", 1)):
        return [x[:axis] + (1,) + x[axis + 1 :]]
    return [x[:axis] + x[axis + 1 :]]


def softmax(node: Node, s: list, c: list) -> list:
    if "axis" in node.attrs or not node.attrs.get("coerce_2d"):
        _axis(int(node.attrs.get("axis", -1)), len(s[0]))
    return [s[0]]


def constant(node: Node, s: list, c: list) -> list:
    return [tuple(np.shape(node.attrs["value"]))]


def constant_of_shape(node: Node, s: list, c: list) -> list:
    if c[0] is None:
        raise Unknown
    return [tuple(int(d) for d in np.asarray(c[0]).reshape(-1))]


def shape(node: Node, s: list, c: list) -> list:
    rank = len(s[0])
    return [(len(range(rank)[slice(node.attrs.get("start", 0), node.attrs.get("end"))]),)]


def gather(node: Node, s: list, c: list) -> list:
    data, idx = s[0], s[1]
    axis = _axis(int(node.attrs.get("axis", 0)), len(data))
    return [data[:axis] + idx + data[axis + 1 :]]


def _axes_of(node: Node, c: list) -> list[int] | None:
    if len(c) > 1 and c[1] is not None:
        return [int(a) for a in np.asarray(c[1]).reshape(-1)]
    axes = node.attrs.get("axes")
    return None if axes is None else [int(a) for a in axes]


def unsqueeze(node: Node, s: list, c: list) -> list:
    axes = _axes_of(node, c)
    _need(axes is not None, "Unsqueeze without constant axes")
    rank = len(s[0]) + len(axes)
    axes = sorted(a + rank if a < 0 else a for a in axes)
    _need(len(set(axes)) == len(axes) and all(0 <= a < rank for a in axes),
          f"axes {axes!r} repeated or out of range for output rank {rank}")
    out, it = [], iter(s[0])
    for i in range(rank):
        out.append(1 if i in axes else next(it))
    return [tuple(out)]


def squeeze(node: Node, s: list, c: list) -> list:
    x, axes = s[0], _axes_of(node, c)
    if axes is None:
        return [tuple(d for d in x if d != 1)]
    axes = [_axis(a, len(x)) for a in axes]
    _need(all(x[a] == 1 for a in axes), f"cannot squeeze axes {axes!r} of {x!r}")
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def array_feature_extractor(node: Node, s: list, c: list) -> list:
    k = _prod(s[1])
    return [(1, k) if len(s[0]) == 1 else s[0][:-1] + (k,)]


def pad(node: Node, s: list, c: list) -> list:
    x = s[0]
    pads = node.attrs.get("pads")
    _need(pads is not None and len(pads) == 2 * len(x), f"pads {pads!r} do not fit rank {len(x)}")
    out = tuple(d + int(b) + int(e) for d, b, e in zip(x, pads[:len(x)], pads[len(x):]))
    _need(all(d >= 0 for d in out), f"pads {pads!r} crop {x!r} below zero")
    return [out]
