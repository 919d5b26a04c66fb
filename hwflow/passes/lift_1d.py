"""Run a 1-D convolutional network (Conv1d, MaxPool1d... on ``(N, C, L)``) as a 2-D one of height 1.

hwflow's layers, scheduler and hardware are 2-D. A 1-D window over ``(N, C, L)`` is a 2-D
window of height 1 over ``(N, C, 1, L)``, element for element, so when a Conv, MaxPool or
AveragePool reads a rank-3 tensor this pass gives every rank-3 tensor of the graph that
height axis (axis 2) and rewrites what depends on the rank:

- window attributes: ``kernel_shape [k]`` becomes ``[1, k]``, ``strides``/``dilations``
  likewise, ``pads [b, e]`` becomes ``[0, b, 0, e]``;
- rank-3 constants (a Conv's weight, a per-channel ``(C, 1, 1)`` scale) take the axis too, and
  smaller ones read by a broadcasting op (a ``(C, 1)`` scale of a Mul or a QONNX ``Quant``)
  are padded to rank 3 first;
- axis attributes (Concat, Flatten), a Transpose's ``perm``, a Pad's
  ``pads`` and a Reshape's target follow the new axis.

The user's array keeps its shape: a Reshape at the input gives the model its ``(N, C, 1, L)``
view (absorbed into the input layout by the quantizer), and a rank-3 output is reshaped
back. An op on a 1-D signal that this pass cannot rewrite is refused, naming it.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import Graph, Node, Tensor
from .base import Pass, PassResult

__all__ = ["Lift1D"]

_WINDOWS = ("Conv", "MaxPool", "AveragePool")
#: ops whose constant inputs broadcast against the signal (they take the new axis too)
_BROADCAST = ("Add", "Sub", "Mul", "Div", "Sum", "Quant", "BipolarQuant", "Trunc")
#: ops that need nothing but the new shapes
_PLAIN = ("Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Sign", "Identity", "Dropout",
          "Cast", "GlobalAveragePool", "MaxPool", "AveragePool", "Reshape")
_AXIS = ("Concat", "Flatten")


def _lift(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[:2]) + (1,) + tuple(shape[2:])


def _axis(a: int, rank: int = 3) -> int:
    """Axis ``a`` of a rank-3 tensor, on its lifted rank-4 form."""
    a = a + rank if a < 0 else a
    return a if a < 2 else a + 1


def _shape_ops_lift(graph: Graph, node: Node) -> bool:
    """Whether ``node`` is a Squeeze/Unsqueeze of the height axis between ``(N, C, L)`` and
    ``(N, C, 1, L)`` (tf2onnx writes one around each 2-D layer of a Keras Conv1D)."""
    if node.op not in ("Squeeze", "Unsqueeze") or graph.const(node.inputs[0]) is not None:
        return False
    a, b = sorted((graph.shape(node.inputs[0]), graph.shape(node.outputs[0])), key=len)
    return len(a) == 3 and _lift(a) == b


def _channels_first_input(graph: Graph) -> None:
    """tf2onnx's NLC input of a Conv1D, ``Unsqueeze(axes=[1])`` then ``Transpose(0, 3, 1, 2)``,
    as ``Transpose(0, 2, 1)`` then ``Unsqueeze(axes=[2])``: the same tensor, a transpose of
    the user's axes first (what the input layout can absorb)."""
    x = graph.inputs[0]
    readers = graph.consumers(x)
    if len(graph.shape(x)) != 3 or len(readers) != 1 or readers[0].op != "Unsqueeze":
        return
    u = readers[0]
    axes = graph.const(u.inputs[1]) if len(u.inputs) > 1 else u.attrs.get("axes")
    after = graph.consumers(u.outputs[0])
    if axes is None or [int(a) % 4 for a in np.ravel(axes)] != [1] or len(after) != 1 or after[0].op != "Transpose":
        return
    t = after[0]
    if [int(a) for a in t.attrs.get("perm", ())] != [0, 3, 1, 2]:
        return
    n, length, c = graph.shape(x)
    ncl = graph.unique_name(f"{x}_ncl")
    graph.add_tensor(Tensor(ncl, (n, c, length), graph.tensors[x].dtype))
    graph.remove_node(u.name)
    graph.remove_node(t.name)
    graph.add_node(Node(t.name, "Transpose", [x], [ncl], {"perm": [0, 2, 1]}))
    graph.add_node(Node(u.name, "Unsqueeze", [ncl], list(t.outputs), {"axes": [2]}))


class Lift1D(Pass):
    """Give 1-D networks a height axis of 1 (see the module docstring)."""

    def call(self, graph: Graph) -> PassResult:
        if not any(n.op in (*_WINDOWS, "GlobalAveragePool") and len(graph.shape(n.inputs[0])) == 3
                   or _shape_ops_lift(graph, n) for n in graph.nodes):
            return PassResult(graph, False)
        _channels_first_input(graph)
        # a rank-3 input read only by Transposes keeps its rank (the user's NLC array): they write the signal
        kept = {x for x in graph.inputs if graph.consumers(x) and all(n.op == "Transpose" for n in graph.consumers(x))}
        lifted = {t for n in graph.nodes for t in [*n.inputs, *n.outputs]
                  if t and len(graph.shape(t)) == 3 and t not in kept}
        for node in graph.nodes:
            touched = [t for t in [*node.inputs, *node.outputs] if t in lifted]
            if touched and node.op not in (*_BROADCAST, *_PLAIN, *_AXIS, "Transpose", "Pad", "Squeeze", "Unsqueeze"):
                raise UnsupportedOpError(
                    f"node {node.name!r} ({node.op}) works on the 1-D signal {touched[0]!r}; hwflow runs 1-D "
                    f"networks as 2-D ones of height 1 and cannot rewrite {node.op} for that: export the model "
                    f"without it")
        for t in [t for t in lifted if t in graph.inputs or graph.producer(t) is not None
                  and graph.producer(t).inputs[0] in kept]:
            self._enter(graph, t, lifted)
        for node in graph.nodes:
            if any(t in lifted for t in [*node.inputs, *node.outputs]):
                self._rewrite(graph, node, lifted)
        for t in lifted:
            old = graph.tensors[t]
            data = None if old.data is None else old.data.reshape(_lift(old.shape))
            graph.tensors[t] = Tensor(t, _lift(old.shape), old.dtype, data)
        for t in [t for t in lifted if t in graph.outputs]:  # the user's output keeps its rank
            t2d, shape = graph.unique_name(f"{t}_2d"), graph.tensors[t].shape
            graph.rename_tensor(t, t2d)
            user = (shape[0], shape[1], shape[3])
            graph.add_tensor(Tensor(t, user, graph.tensors[t2d].dtype))
            target = graph.add_const(f"{t}_1d_shape", np.array([-1, *user[1:]], np.int64)).name
            graph.add_node(Node(_fresh_node(graph, f"{t}_to_1d"), "Reshape", [t2d, target], [t]))
            graph.outputs = [t if o == t2d else o for o in graph.outputs]
        return PassResult(graph, True)

    @staticmethod
    def _enter(graph: Graph, t: str, lifted: set[str]) -> None:
        """Where the signal enters (the input, or a Transpose of it): a Reshape from the
        user's ``(N, C, L)`` to the lifted tensor."""
        shape, dtype = graph.shape(t), graph.tensors[t].dtype
        prod = graph.producer(t)
        if prod is None:  # the graph input keeps its name and rank; its readers take the lifted copy
            src, dst = t, graph.unique_name(f"{t}_2d")
            graph.add_tensor(Tensor(dst, shape, dtype))
            graph.rename_uses(t, dst)
            lifted.discard(src)
            lifted.add(dst)
        else:
            src, dst = graph.unique_name(f"{t}_1d"), t
            graph.add_tensor(Tensor(src, shape, dtype))
            graph.remove_node(prod.name)
            prod.outputs = [src if o == t else o for o in prod.outputs]
            graph.add_node(prod)
        target = graph.add_const(f"{dst}_shape", np.array([-1, *_lift(shape)[1:]], np.int64)).name
        graph.add_node(Node(_fresh_node(graph, f"{dst}_from_1d"), "Reshape", [src, target], [dst]))

    @staticmethod
    def _rewrite(graph: Graph, node: Node, lifted: set[str]) -> None:
        a = node.attrs
        if node.op in ("Squeeze", "Unsqueeze"):  # a reshape between the lifted shapes, often none at all
            x, out = node.inputs[0], node.outputs[0]
            want = _lift(graph.shape(out)) if out in lifted else graph.shape(out)
            have = _lift(graph.shape(x)) if x in lifted else graph.shape(x)
            graph.remove_node(node.name)
            if want == have:
                graph.add_node(Node(node.name, "Identity", [x], [out]))
            else:
                target = graph.add_const(f"{node.name}_shape", np.array([-1, *want[1:]], np.int64)).name
                graph.add_node(Node(node.name, "Reshape", [x, target], [out]))
            return
        if node.op in _WINDOWS:
            for key in ("kernel_shape", "strides", "dilations"):
                if key in a:
                    a[key] = [1, *a[key]]
            if "pads" in a:
                a["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
        if node.op in _BROADCAST:
            for t in node.inputs:
                c = graph.const(t) if t and t not in lifted else None
                if c is not None and 0 < c.ndim < 3 and c.size > 1:
                    name = graph.add_const(f"{t}_2d", c.reshape((1,) * (3 - c.ndim) + c.shape)[:, :, None]).name
                    graph.replace_input(node, t, name)
        if node.op in _AXIS and node.inputs[0] in lifted:
            a["axis"] = _axis(int(a.get("axis", 1)))
        if node.op == "Transpose":
            p = [int(x) for x in a.get("perm", (2, 1, 0))]
            a["perm"] = [_axis(p[0]), _axis(p[1]), 2, _axis(p[2])]
        if node.op == "Pad":
            p = [int(x) for x in a["pads"]]
            a["pads"] = [p[0], p[1], 0, p[2], p[3], p[4], 0, p[5]]
        if node.op == "Reshape":  # its target, explicit, with the batch entry as it was
            out = node.outputs[0]
            shape = _lift(graph.shape(out)) if out in lifted else graph.shape(out)
            target = graph.const(node.inputs[1])
            name = graph.add_const(f"{node.inputs[1]}_2d", np.array([int(target[0]), *shape[1:]], np.int64)).name
            graph.replace_input(node, node.inputs[1], name)


def _fresh_node(graph: Graph, name: str) -> str:
    names = {n.name for n in graph.nodes}
    unique, i = name, 1
    while unique in names:
        unique, i = f"{name}_{i}", i + 1
    return unique
