"""Lower a float Graph to a plan of float layers that map one-to-one onto QLayers.

The plan is what the quantizer works on: weights in float (so equalization and
clamping can edit them), fused activations resolved, Flatten/Reshape gone (a Gemm
reads the 4-D tensor), BatchNorm folded, MatMul+Add merged, host tail split off.
It accepts optimized graphs and, for robustness, the common unoptimized patterns.
What each ONNX op lowers to is the op registry's ``quant`` (:data:`hwflow.ir.ops.OPS`).

Layouts are absorbed, never computed: the Transpose (NHWC to NCHW) or Reshape an
exporter puts between the model's input and its first layer becomes the input's layout
(:attr:`Plan.input_layout`, the user keeps feeding their own layout); a Transpose or
Reshape before a Flatten into a Gemm becomes an order of the Gemm's weight columns.

The host tail (:mod:`.host_tail`) is every node the importer marked ``host``: the plan's
output is the one tensor they (and the model outputs) read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..ir._geometry import Window, window
from ..ir.graph import Graph, Node, Tensor
from ..ir.ops import OPS
from ..passes._util import channel_vector
from .host_tail import HostTail


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def act_fn(act: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """The float function of an activation dict ``{"op": ..., ...}``."""
    op = act["op"]
    if op == "Tanh":
        return np.tanh
    if op == "Sign":
        return np.sign
    if op == "Sigmoid":
        return _sigmoid
    if op == "LeakyRelu":
        a = float(act.get("alpha", 0.01))
        return lambda x: np.where(x >= 0, x, x * a)
    if op == "Relu":
        return lambda x: np.maximum(x, 0)
    if op == "Clip":
        lo, hi = act.get("min"), act.get("max")
        return lambda x: np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    raise UnsupportedOpError(f"activation {op!r} is not supported; use Relu, Clip, LeakyRelu, Sigmoid, Tanh or Sign")


@dataclass
class FLayer:
    """A float layer of the plan (becomes one QLayer)."""

    name: str
    op: str  # conv gemm maxpool avgpool add concat lut
    inputs: list[str]
    output: str
    weight: np.ndarray | None = None  # conv OIHW, gemm (Cout, Cin); float64
    bias: np.ndarray | None = None
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    clamp: dict[str, Any] | None = None  # Relu/Clip folded into lo/hi
    lut: dict[str, Any] | None = None  # Tanh/Sigmoid/LeakyRelu(/Relu standalone)
    pre: str | None = None  # tensor holding the code space the LUT is indexed by
    bn: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std) of the output before clamp
    weight_name: str | None = None  # the initializer it came from (pre-quantized imports)
    nodes: list[str] = field(default_factory=list)

    @property
    def has_weight(self) -> bool:
        return self.op in ("conv", "gemm")

    def window(self, in_spatial: tuple[int, ...]) -> Window:
        """The window of a conv/maxpool/avgpool layer over an input of ``in_spatial``."""
        return window(in_spatial, self.kernel, {"strides": self.strides, "pads": self.pads})


@dataclass
class Plan:
    """Float layers in execution order plus the tensors they connect."""

    name: str
    input: str
    output: str
    layers: list[FLayer]
    shapes: dict[str, tuple[int, ...]]
    host_tail: HostTail
    input_layout: dict | None = None

    def to_input(self, x: np.ndarray) -> np.ndarray:
        """A batch in the user's layout as the plan's input tensor (see :attr:`input_layout`)."""
        x = np.asarray(x)
        shape = self.shapes[self.input]
        if self.input_layout is not None:
            x = np.transpose(x.reshape((len(x),) + tuple(self.input_layout["shape"][1:])), self.input_layout["perm"])
        return x.reshape((len(x),) + tuple(shape[1:]))

    def producer(self, tensor: str) -> FLayer | None:
        for l in self.layers:
            if l.output == tensor:
                return l
        return None

    def consumers(self, tensor: str) -> list[FLayer]:
        return [l for l in self.layers if tensor in l.inputs]


def _window2d(node: Node, in_shape, kernel) -> tuple:
    if len(in_shape) != 4 or len(kernel) != 2:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): only 2-D windows on NCHW tensors are supported")
    win = window(in_shape[2:], kernel, node.attrs)
    if any(d != 1 for d in win.dilations):
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): dilations {win.dilations} are not supported")
    pads = []
    # widen the end pads so every output window fits (ceil_mode overhang)
    ends = []
    for i in range(2):
        need = (win.out[i] - 1) * win.strides[i] + win.kernel[i]
        ends.append(max(win.pads_end[i], need - in_shape[2 + i] - win.pads_begin[i]))
    pads = (win.pads_begin[0], win.pads_begin[1], ends[0], ends[1])
    overhang = tuple(e - p for e, p in zip(ends, win.pads_end))
    return tuple(win.kernel), tuple(win.strides), pads, overhang


def lower(graph: Graph) -> Plan:
    """Walk ``graph`` in topological order and build the float plan.

    Raises
    ------
    UnsupportedOpError
        Naming the node and op hwflow cannot map onto integer layers.
    """
    if len(graph.inputs) != 1:
        raise UnsupportedOpError(f"hwflow quantizes one-input networks; {graph.name!r} has inputs {graph.inputs!r}")
    consts: dict[str, np.ndarray] = {n: t.data for n, t in graph.tensors.items() if t.is_const}
    alias: dict[str, str] = {}
    layers: list[FLayer] = []
    by_out: dict[str, FLayer] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    tail = host_tail(graph)
    out_tensor = tail.input
    x, input_layout, skip = _input_layout(graph)
    shapes[x] = tuple(graph.shape(x))
    # Tensors a Transpose/Reshape reordered or reshaped on the way to a Flatten: raw name ->
    # (the node, the flat order: position i holds flat element order[i] of the layer output)
    views: dict[str, tuple[Node, np.ndarray]] = {}

    def canon(t: str) -> str:
        while t in alias:
            t = alias[t]
        return t

    def uses(t: str) -> int:
        # how many node inputs (plus graph outputs) read ``t``, seen through aliases
        names = {t} | {a for a in alias if canon(a) == t}
        n = sum(1 for node in graph.nodes for i in node.inputs if i in names)
        return n + sum(1 for o in graph.outputs if o in names)

    def add(layer: FLayer, node: Node) -> None:
        layer.nodes = layer.nodes or [node.name]
        shapes[layer.output] = tuple(graph.shape(node.outputs[0]))
        layers.append(layer)
        by_out[layer.output] = layer

    def mergeable(t: str) -> FLayer | None:
        """The layer producing ``t`` if an activation may fuse into it."""
        prod = by_out.get(t)
        if prod is None or prod.op not in ("conv", "gemm", "avgpool", "add") or prod.lut is not None:
            return None
        return prod if uses(t) == 1 and t != canon(out_tensor) else None

    def rename_output(layer: FLayer, new: str, node: Node) -> None:
        del by_out[layer.output]
        layer.output = new
        layer.nodes.append(node.name)
        by_out[new] = layer
        shapes[new] = tuple(graph.shape(node.outputs[0]))

    for node in graph.nodes:
        op = node.op
        if node.attrs.get("host") or node.name in skip:
            continue
        ins = [canon(t) if t else t for t in node.inputs]
        act_ins = [t for t in ins if t and t not in consts]
        out = node.outputs[0]
        spec = OPS.get(op)
        kind = None if spec is None else spec.quant
        if spec is not None and spec.host:
            raise UnsupportedOpError(f"node {node.name!r} ({op}) feeds other layers; hwflow supports {op} only at the network's tail")
        if kind == "const":
            consts[out] = np.asarray(node.attrs["value"])
            continue
        if not act_ins:
            raise UnsupportedOpError(f"node {node.name!r} ({op}) computes a constant; run the optimizer (constant folding) first")
        raw = node.inputs[0]
        if op == "Transpose" or (kind == "layout" and (raw in views or not _flattens(graph, node))):
            # a view (reordered or reshaped): only a Flatten into a Gemm may read it
            prev, order = views.get(raw, (node, np.arange(int(np.prod(graph.shape(raw)))).reshape(graph.shape(raw))))
            order = order.reshape(graph.shape(raw))
            order = np.transpose(order, node.attrs.get("perm")) if op == "Transpose" else order
            views[out] = (node if op == "Transpose" or prev is node else prev, order.reshape(graph.shape(out)))
            alias[out] = act_ins[0]
            continue
        if kind == "layout":
            alias[out] = act_ins[0]
            continue
        view = views.get(raw)
        if view is not None and not (kind == "gemm" and len(graph.shape(raw)) == 2):
            vnode = view[0]
            raise UnsupportedOpError(
                f"node {vnode.name!r} ({vnode.op}) reorders activations between layers (read by {node.name!r}, {op}); "
                f"hwflow absorbs a Transpose or Reshape only at the model's input or before a Flatten into a Gemm: "
                f"export the model without it (channel-first layout)"
            )
        if kind == "conv" and op == "Conv":
            w = consts.get(ins[1])
            if w is None:
                raise UnsupportedOpError(f"node {node.name!r} (Conv): weights must be constant")
            b = consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
            kernel, strides, pads, overhang = _window2d(node, graph.shape(ins[0]), w.shape[2:])
            w = np.asarray(w, np.float64)  # no copy if float64 already (weights are never written in place)
            layer = FLayer(node.name, "conv", [ins[0]], out, w,
                           np.zeros(w.shape[0]) if b is None else b.astype(np.float64).ravel(),
                           kernel, strides, pads, int(node.attrs.get("group", 1)), bn=_bn_stats(node),
                           weight_name=ins[1])
            _fuse_attr_activation(layer, node)
            add(layer, node)
            continue
        if kind == "gemm":
            if len(act_ins) != 1 or ins[0] != act_ins[0]:
                raise UnsupportedOpError(f"node {node.name!r} ({op}): the second operand must be a constant weight")
            b_mat = np.asarray(consts[ins[1]], np.float64)
            if op == "Gemm":
                if int(node.attrs.get("transA", 0)):
                    raise UnsupportedOpError(f"node {node.name!r} (Gemm): transA=1 is not supported")
                w = b_mat if int(node.attrs.get("transB", 0)) else b_mat.T
                if float(node.attrs.get("alpha", 1.0)) != 1.0:
                    w = w * float(node.attrs["alpha"])
                c = consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
                bias = np.zeros(w.shape[0]) if c is None else np.broadcast_to(
                    np.asarray(c, np.float64).ravel() * float(node.attrs.get("beta", 1.0)), (w.shape[0],)).copy()
            else:
                if b_mat.ndim != 2 or len(graph.shape(ins[0])) != 2:
                    raise UnsupportedOpError(f"node {node.name!r} (MatMul): only (1, F) x (F, K) is supported")
                w, bias = b_mat.T, np.zeros(b_mat.shape[1])
            if view is not None:  # the Gemm reads a reordered view: reorder its weight columns instead
                cols = np.empty_like(w)
                cols[:, view[1].reshape(-1)] = w
                w = cols
            layer = FLayer(node.name, "gemm", [ins[0]], out, w, bias, bn=_bn_stats(node), weight_name=ins[1])
            _fuse_attr_activation(layer, node)
            add(layer, node)
            continue
        if kind == "add" and len(ins) == 2 and len(act_ins) == 1:
            prod = mergeable(act_ins[0])
            c = consts[[t for t in ins if t in consts][0]]
            affine = None if prod is not None and prod.has_weight else _channel_affine(node, graph, ins, consts)
            if affine is not None:  # no layer to take it as a bias: a depthwise 1x1 Conv
                add(affine, node)
                continue
            if prod is None or not prod.has_weight or prod.clamp is not None or c.size not in (1, prod.weight.shape[0]):
                raise UnsupportedOpError(
                    f"node {node.name!r} ({op} of a constant) only follows a Conv/Gemm/MatMul as its bias"
                )
            prod.bias = prod.bias + np.broadcast_to(np.asarray(c, np.float64).ravel(), prod.bias.shape)
            rename_output(prod, out, node)
            continue
        if kind == "add" and len(ins) == 2:
            if graph.shape(act_ins[0]) != graph.shape(act_ins[1]):
                raise UnsupportedOpError(f"node {node.name!r} ({op}): broadcasting add is not supported")
            add(FLayer(node.name, "add", act_ins, out), node)
            continue
        if kind == "conv" and op == "BatchNormalization":  # into the Conv before it, else a depthwise conv
            scale, beta, mean, var = (consts[t].astype(np.float64) for t in ins[1:5])
            k = scale / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
            prod = mergeable(ins[0])
            if prod is not None and prod.op == "conv" and prod.clamp is None and prod.lut is None:
                prod.weight = prod.weight * k[:, None, None, None]
                prod.bias = (prod.bias - mean) * k + beta
                prod.bn = (beta.copy(), np.abs(scale).copy())
                rename_output(prod, out, node)
            else:
                c = k.size
                if len(graph.shape(ins[0])) != 4:
                    raise UnsupportedOpError(f"node {node.name!r} (BatchNormalization): only on NCHW tensors")
                layer = FLayer(node.name, "conv", [ins[0]], out, k.reshape(c, 1, 1, 1), beta - mean * k,
                               groups=c, bn=(beta.copy(), np.abs(scale).copy()))
                add(layer, node)
            continue
        if kind == "lut":
            act = {"op": op}
            if op == "Clip":
                lo = consts.get(ins[1]) if len(ins) > 1 and ins[1] else node.attrs.get("min")
                hi = consts.get(ins[2]) if len(ins) > 2 and ins[2] else node.attrs.get("max")
                act.update(min=None if lo is None else float(lo), max=None if hi is None else float(hi))
            if op == "LeakyRelu":
                act["alpha"] = float(node.attrs.get("alpha", 0.01))
            prod = mergeable(act_ins[0])
            if prod is not None:
                if spec.activation == "clamp":
                    prod.clamp = _merge_clamp(prod.clamp, act)
                else:
                    prod.lut, prod.pre = act, prod.output
                rename_output(prod, out, node)
            else:
                add(FLayer(node.name, "lut", [act_ins[0]], out, lut=act, pre=act_ins[0]), node)
            continue
        if kind == "maxpool":
            if int(node.attrs.get("storage_order", 0)) or len(node.outputs) > 1 and node.outputs[1]:
                raise UnsupportedOpError(f"node {node.name!r} (MaxPool): the indices output is not supported")
            kernel, strides, pads, _ = _window2d(node, graph.shape(ins[0]), node.attrs["kernel_shape"])
            add(FLayer(node.name, "maxpool", [ins[0]], out, kernel=kernel, strides=strides, pads=pads), node)
            continue
        if kind == "avgpool":
            shp = graph.shape(ins[0])
            if op == "GlobalAveragePool":
                if len(shp) != 4:
                    raise UnsupportedOpError(f"node {node.name!r} (GlobalAveragePool): only on NCHW tensors")
                kernel, strides, pads, overhang = tuple(shp[2:]), (1, 1), (0, 0, 0, 0), (0, 0)
            else:
                kernel, strides, pads, overhang = _window2d(node, shp, node.attrs["kernel_shape"])
                if any(overhang):
                    raise UnsupportedOpError(
                        f"node {node.name!r} (AveragePool): ceil_mode windows that overhang the input are not supported"
                    )
                if any(pads) and not int(node.attrs.get("count_include_pad", 0)):
                    raise UnsupportedOpError(
                        f"node {node.name!r} (AveragePool): padding with count_include_pad=0 divides border windows "
                        f"by fewer cells, which one integer multiplier cannot do; export with count_include_pad=1 or without pads"
                    )
            add(FLayer(node.name, "avgpool", [ins[0]], out, kernel=kernel, strides=strides, pads=pads), node)
            continue
        if kind == "concat":
            axis = int(node.attrs.get("axis", 1))
            if axis not in (1, 1 - len(graph.shape(out))):
                raise UnsupportedOpError(f"node {node.name!r} (Concat): only the channel axis 1 is supported, not {axis}")
            add(FLayer(node.name, "concat", act_ins, out), node)
            continue
        affine = _channel_affine(node, graph, ins, consts)
        if affine is not None:  # a per-channel scale or shift no layer absorbed (e.g. a BatchNorm exported as Mul, Add)
            add(affine, node)
            continue
        raise UnsupportedOpError(f"node {node.name!r}: op {op} cannot be quantized; supported: {_quantizable()}")
    if out_tensor in views:
        vnode = views[out_tensor][0]
        raise UnsupportedOpError(
            f"node {vnode.name!r} ({vnode.op}) reorders the network's output; hwflow absorbs a Transpose or Reshape "
            f"only at the model's input or before a Flatten into a Gemm: export the model without it"
        )
    out_tensor = canon(out_tensor)
    if out_tensor == x:
        raise UnsupportedOpError(f"graph {graph.name!r} has no layer to quantize")
    if out_tensor not in by_out:
        raise UnsupportedOpError(f"graph output {out_tensor!r} is not produced by a quantizable layer")
    return Plan(graph.name, x, out_tensor, canonical_order(layers, x), shapes, tail, input_layout)


def canonical_order(layers: list, source: str) -> list:
    """``layers`` (anything with ``inputs`` and ``output``) in an execution order that does
    not depend on the order an exporter wrote parallel branches in.

    A topological order that runs, of the layers ready, the one with the shortest way to
    the network's end first (a residual block's shortcut before its main branch), then
    the exporter's order: Keras' and PyTorch's exports of one network give one schedule.
    """
    by_out = {l.output: l for l in layers}
    readers: dict[str, list] = {}
    for l in layers:
        for t in l.inputs:
            readers.setdefault(t, []).append(l)
    depth: dict[str, int] = {}
    for l in reversed(layers):  # longest path to the end, in layers
        depth[l.output] = 1 + max((depth[r.output] for r in readers.get(l.output, ())), default=0)
    index = {id(l): i for i, l in enumerate(layers)}
    done, out = {source}, []
    pending = list(layers)
    while pending:
        ready = [l for l in pending if all(t in done or t not in by_out for t in l.inputs)]
        nxt = min(ready, key=lambda l: (depth[l.output], index[id(l)]))
        out.append(nxt)
        done.add(nxt.output)
        pending.remove(nxt)
    return out


def host_tail(graph: Graph) -> HostTail:
    """The host tail of ``graph``: its nodes marked ``host`` (:mod:`hwflow.ir.onnx_import`),
    from the one tensor every model output derives from.

    Raises
    ------
    UnsupportedOpError
        The model's outputs derive from several tensors the accelerator would compute.
    """
    host = [n for n in graph.nodes if n.attrs.get("host")]
    made = {t for n in host for t in n.outputs}
    sources = [t for n in host for t in n.inputs if t and t not in made and not graph.tensors[t].is_const]
    sources += [t for t in graph.outputs if t not in made]
    sources = list(dict.fromkeys(sources))
    if len(sources) != 1:
        raise UnsupportedOpError(
            f"the model's outputs {graph.outputs!r} derive from {len(sources)} computed tensors {sources!r}; hwflow "
            "compiles models whose outputs are all host-side functions (Softmax, ArgMax, a label lookup) of one tensor"
        )
    src = sources[0]
    tail = Graph("host_tail", [src], list(graph.outputs))
    tail.add_tensor(Tensor(src, graph.shape(src), graph.tensors[src].dtype))
    label, argmax_of = None, set()
    for n in host:
        for t in n.inputs:
            if t and t not in tail.tensors:
                tail.add_tensor(Tensor(t, graph.shape(t), graph.tensors[t].dtype, graph.tensors[t].data))
        for t in n.outputs:
            if t:
                tail.add_tensor(Tensor(t, graph.shape(t), graph.tensors[t].dtype))
        tail.add_node(Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs)))
        if n.op == "ArgMax" or any(t in argmax_of for t in n.inputs):
            argmax_of.update(t for t in n.outputs if t)
    label = next((t for t in graph.outputs if t in argmax_of), None)
    return HostTail(tail, src, label)


#: Ops that only rearrange data (no arithmetic).
_VIEW_OPS = ("Transpose", "Reshape", "Flatten", "Identity", "Dropout", "Squeeze", "Unsqueeze")


def _flattens(graph: Graph, node: Node) -> bool:
    """Whether a Reshape/Flatten (or no-op layout node) keeps the batch and flattens the rest."""
    if node.op not in ("Reshape", "Flatten"):
        return graph.shape(node.inputs[0]) == graph.shape(node.outputs[0])
    ish, osh = graph.shape(node.inputs[0]), graph.shape(node.outputs[0])
    return len(osh) == 2 and osh[0] == ish[0]


def _input_layout(graph: Graph) -> tuple[str, dict | None, set[str]]:
    """``(input tensor, layout, absorbed nodes)``: the chain of Transpose/Reshape nodes
    that is the only reader of the model's input, absorbed into its layout.

    A Transpose (first) then Reshape/Flatten nodes: the user's array, transposed and
    reshaped, is the tensor the first layer reads (4-D NCHW, or ``(1, F)``). Without
    such a chain the input is the model's own and the layout None.
    """
    x = graph.inputs[0]
    t, perm, nodes = x, list(range(len(graph.shape(x)))), []
    while True:
        readers = [n for n in graph.consumers(t) if not n.attrs.get("host")]
        if len(readers) != 1 or t in graph.outputs:
            break
        node = readers[0]
        if node.op not in _VIEW_OPS or node.inputs[0] != t:
            break
        if node.op == "Transpose":
            if nodes:  # a transpose after a reshape is no longer a permutation of the user's axes
                break
            p = node.attrs.get("perm") or list(range(len(graph.shape(t))))[::-1]
            if p[0] != 0:
                break
            perm = [int(a) for a in p]
        nodes.append(node)
        t = node.outputs[0]
    while nodes and len(graph.shape(t)) not in (2, 4):  # stop where the first layer can read it
        nodes.pop()
        t = nodes[-1].outputs[0] if nodes else x
    if not nodes:
        return x, None, set()
    if not any(n.op == "Transpose" for n in nodes):
        perm = list(range(len(graph.shape(x))))
    return t, {"shape": tuple(graph.shape(x)), "perm": tuple(perm)}, {n.name for n in nodes}


def _channel_affine(node: Node, graph: Graph, ins: list[str], consts: dict) -> FLayer | None:
    """A depthwise 1x1 Conv computing ``node``, ``x * c``, ``x / c``, ``x + c``, ``x - c`` or
    ``c - x`` with ``c`` constant per channel of an NCHW ``x`` (as a BatchNorm no Conv
    absorbs becomes); None for anything else."""
    if node.op not in ("Mul", "Div", "Add", "Sub") or len(ins) != 2 or sum(t in consts for t in ins) != 1:
        return None
    first = ins[0] in consts
    x, c = (ins[1], consts[ins[0]]) if first else (ins[0], consts[ins[1]])
    shape = graph.shape(x)
    vec = channel_vector(np.asarray(c, np.float64), shape, 1) if len(shape) == 4 else None
    if vec is None or tuple(graph.shape(node.outputs[0])) != tuple(shape) or (node.op == "Div" and first):
        return None
    ones, zeros = np.ones_like(vec), np.zeros_like(vec)
    w, b = {"Mul": (vec, zeros), "Div": (1.0 / vec, zeros), "Add": (ones, vec),
            "Sub": (-ones, vec) if first else (ones, -vec)}[node.op]
    return FLayer(node.name, "conv", [x], node.outputs[0], w.reshape(-1, 1, 1, 1), b, groups=vec.size)


def _quantizable() -> str:
    return ", ".join(op for op, d in OPS.items() if d.quant not in (None, "const"))


def _bn_stats(node: Node) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mean, std)`` a folded BatchNorm left in ``attrs["bn_stats"]`` (passes.fold_batchnorm)."""
    st = node.attrs.get("bn_stats")
    if not st:
        return None
    return np.asarray(st["mean"], np.float64).ravel(), np.asarray(st["std"], np.float64).ravel()


def _merge_clamp(old: dict | None, new: dict) -> dict:
    """Compose two Relu/Clip clamps into one ``{"op": "Clip", min, max}``."""
    def bounds(a):
        if a is None:
            return -np.inf, np.inf
        if a["op"] == "Relu":
            return 0.0, np.inf
        return (-np.inf if a.get("min") is None else a["min"]), (np.inf if a.get("max") is None else a["max"])

    (l1, h1), (l2, h2) = bounds(old), bounds(new)
    lo, hi = max(l1, l2), min(h1, h2)
    if hi == np.inf and lo == 0.0:
        return {"op": "Relu"}
    return {"op": "Clip", "min": None if lo == -np.inf else lo, "max": None if hi == np.inf else hi}


def _fuse_attr_activation(layer: FLayer, node: Node) -> None:
    act = node.attrs.get("activation")
    if not act:
        return
    act = dict(act)
    act_fn(act)  # validates the op
    if act["op"] in ("Relu", "Clip"):
        layer.clamp = _merge_clamp(None, act)
    else:
        layer.lut, layer.pre = act, f"{node.outputs[0]}::pre"
