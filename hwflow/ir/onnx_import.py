"""ONNX import: a ``ModelProto`` (or file) into a :class:`~hwflow.ir.graph.Graph`.

What the importer guarantees about the graph it returns:

- opset 9..21 semantics (older models are upgraded with ``onnx.version_converter``);
- static shapes everywhere (onnx shape inference; a symbolic batch dim becomes 1);
- initializers and ``Constant`` nodes are numpy constants, all finite;
- constant sub-graphs (``ConstantOfShape``, ``Shape`` of a static tensor, ``Gather``,
  ``Unsqueeze``... on constants) are evaluated away with the ops' float kernels;
- opset-dependent attributes are normalised: Clip bounds become ``attrs["min"]`` /
  ``attrs["max"]``, Squeeze/Unsqueeze axes become ``attrs["axes"]``, Sum becomes Add;
- host-side tail ops (Softmax, LogSoftmax, ArgMax, skl2onnx's label lookup
  ArrayFeatureExtractor, and data movement after them) carry ``attrs["host"] = True``;
- every remaining op is in :data:`SUPPORTED_OPS`, else :class:`UnsupportedOpError`.

Which op is accepted how comes from the op registry (:data:`hwflow.ir.ops.OPS`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import HwflowError, ModelError, UnsupportedOpError
from .graph import Graph, Node, Tensor
from .ops import OPS, SUPPORTED_OPS, infer_node_shapes, run_node

__all__ = ["load_model", "from_onnx", "MIN_OPSET", "MAX_OPSET"]

MIN_OPSET, MAX_OPSET = 9, 21

# Element types with a plain numpy dtype (no float8/int4/bfloat16/string).
_NUMPY_TYPES = {
    getattr(onnx.TensorProto, t)
    for t in ("FLOAT", "DOUBLE", "FLOAT16", "BOOL", "INT8", "INT16", "INT32", "INT64",
              "UINT8", "UINT16", "UINT32", "UINT64")
}  # fmt: skip


def _supported_list() -> str:
    return ", ".join(SUPPORTED_OPS)


def load_model(path: str | os.PathLike) -> Graph:
    """Read an ONNX file into a verified :class:`Graph` with static shapes.

    Parameters
    ----------
    path : str or PathLike
        The ``.onnx`` file (external data, if any, next to it).

    Raises
    ------
    ModelError
        If the file is unreadable, not ONNX, truncated, has NaN/Inf weights, a dynamic
        non-batch dimension or more than one input. Messages name the file.
    UnsupportedOpError
        If it uses an op hwflow does not support (naming the node, op and the
        supported list).
    """
    p = Path(path)
    if p.is_dir():
        raise ModelError(f"{str(p)!r} is a directory, not an ONNX model file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {str(p)!r}: {exc.strerror or exc}") from None
    if not raw:
        raise ModelError(f"{str(p)!r} is empty, not an ONNX model")
    try:
        model = onnx.load_model_from_string(raw)
    except Exception as exc:  # protobuf's DecodeError
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{str(p)!r} is not an ONNX model or is truncated ({msg}); re-export it") from None
    try:
        onnx.load_external_data_for_model(model, str(p.parent))
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{str(p)!r}: cannot read its external weight data: {msg}") from None
    if not model.opset_import or not model.graph.node or not model.graph.output:
        raise ModelError(f"{str(p)!r} is not an ONNX model (no graph, operators or outputs); is it truncated?")
    try:
        graph = from_onnx(model, name=p.stem)
    except HwflowError as exc:
        raise type(exc)(f"{p.name}: {exc}") from None
    return graph


def _check_opset(model: onnx.ModelProto, strict: bool) -> onnx.ModelProto:
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if version is None:
        if any(n.domain in ("", "ai.onnx") for n in model.graph.node):
            raise ModelError("the model uses ONNX operators but imports no default-domain opset")
        return model  # only ai.onnx.ml nodes: nothing to upgrade
    if version < MIN_OPSET:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, MIN_OPSET)
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(
                f"cannot upgrade opset {version} to {MIN_OPSET}: {msg}; re-export the model with opset >= {MIN_OPSET}"
            ) from None
    elif version > MAX_OPSET and strict:
        raise ModelError(f"opset {version} is newer than hwflow supports ({MAX_OPSET}); export with opset <= {MAX_OPSET}")
    return model


def _static_dims(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in vi.type.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def _np_dtype(elem_type: int) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def _fix_input_shapes(model: onnx.ModelProto, inputs: list[onnx.ValueInfoProto], strict: bool) -> None:
    """Pin a symbolic batch dim to 1; reject any other dynamic dimension."""
    for vi in inputs:
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"graph input {vi.name!r} is not a tensor")
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            raise ModelError(f"graph input {vi.name!r} has no shape; export with a fixed input shape")
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and (d.dim_value > 0 or (d.dim_value == 0 and not strict)):
                continue
            if axis == 0 and not (d.HasField("dim_value") and d.dim_value == 0):
                d.Clear()
                d.dim_value = 1
                continue
            label = d.dim_param or "?"
            raise ModelError(
                f"graph input {vi.name!r} has dynamic dimension {label!r} at axis {axis}; "
                "hwflow needs static shapes (only the batch axis may be symbolic): export with a fixed size"
            )
        dims = [d.dim_value for d in tt.shape.dim]
        if strict and (len(dims) < 2 or dims[0] != 1):
            raise ModelError(
                f"graph input {vi.name!r} has shape {tuple(dims)!r}; hwflow needs a batch axis of 1 (or symbolic) "
                "first, as in (1, F) or (1, C, H, W): export with batch 1"
            )


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _constant_value(node: onnx.NodeProto, attrs: dict[str, Any]) -> np.ndarray:
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):  # fmt: skip
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise UnsupportedOpError(f"node {node.name!r}: Constant with attributes {sorted(attrs)!r} is not supported")


def _check_finite(name: str, data: np.ndarray, what: str) -> None:
    if data.dtype.kind in "fc" and data.size and not np.isfinite(data).all():
        bad = "NaN" if np.isnan(data).any() else "Inf"
        raise ModelError(f"{what} {name!r} contains {bad}; the model's weights are corrupt (retrain or re-export)")


def from_onnx(model: onnx.ModelProto, name: str | None = None, *, strict: bool = True, fold: bool = True) -> Graph:
    """Convert an in-memory ONNX model into a verified :class:`Graph`.

    Parameters
    ----------
    model : onnx.ModelProto
    name : str, optional
        Graph name (default: the ONNX graph's name).
    strict : bool
        The rules for a model to compile: exactly one float input, opset <= 21, only
        :data:`SUPPORTED_OPS`, layer weights constant, host ops only at the tail. The
        float-reference conformance suite turns this off to import the onnx test cases.
    fold : bool
        Evaluate constant sub-graphs during import (the passes can do it later).

    Raises
    ------
    ModelError, UnsupportedOpError
    """
    model = _check_opset(model, strict)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), MAX_OPSET)
    opset = max(opset, MIN_OPSET)
    g = model.graph
    init_names = {t.name for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in init_names]
    if strict and len(inputs) != 1:
        names = [vi.name for vi in inputs]
        raise ModelError(f"the model has {len(inputs)} graph inputs {names!r}; hwflow needs exactly one")
    model = onnx.ModelProto.FromString(model.SerializeToString()) if inputs or g.value_info else model
    g = model.graph
    inputs = [vi for vi in g.input if vi.name not in init_names]
    # exporters' intermediate shapes are hints that onnx re-infers; a wrong one can make its
    # inference allocate per declared element (a [10**9] value_info takes seconds and GiBs)
    del g.value_info[:]
    _check_ops(g)
    _check_schemas(model, opset)
    _check_constant_shapes(model)
    _fix_input_shapes(model, inputs, strict)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"onnx shape inference failed: {msg}") from None
    info: dict[str, onnx.ValueInfoProto] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input):
        info.setdefault(vi.name, vi)

    try:
        return _build(model, g, inputs, info, opset, name, strict, fold)
    except (ValueError, TypeError, IndexError, KeyError) as exc:  # a malformed graph, not a bug
        raise ModelError(f"the model's graph is malformed: {exc}") from None


def _build(model, g, inputs, info, opset, name, strict, fold) -> Graph:
    graph = Graph(name or g.name or "model")
    graph.meta["opset"] = opset
    for vi in inputs:
        tt = vi.type.tensor_type
        dtype = _np_dtype(tt.elem_type)
        if strict and dtype.kind != "f":
            raise ModelError(f"graph input {vi.name!r} has type {dtype}; hwflow needs a float input")
        graph.add_tensor(Tensor(vi.name, _static_dims(vi), dtype))
        graph.inputs.append(vi.name)
    for t in g.initializer:
        try:
            data = numpy_helper.to_array(t)
        except Exception as exc:
            raise ModelError(f"initializer {t.name!r} is unreadable ({exc}); the file is corrupt or truncated, re-export it") from None
        _check_finite(t.name, data, "initializer")
        graph.add_tensor(Tensor(t.name, data.shape, data.dtype, data))

    importer = _Importer(graph, info, opset, strict, fold)
    importer.run(g.node, g.output)
    graph.outputs = [o.name for o in g.output]
    for t in graph.outputs:
        if t not in graph.tensors:
            raise ModelError(f"graph output {t!r} is not produced by any node")
    if fold:
        graph.remove_dead()
    _mark_host_tail(graph, strict)
    if strict:
        _check_supported(graph, set(importer.known))
    graph.verify()
    return graph


class _Importer:
    """Walks the ONNX nodes in order, folding constants and normalising attributes."""

    def __init__(self, graph: Graph, info: dict, opset: int, strict: bool, fold: bool):
        self.graph, self.info, self.opset, self.strict, self.fold = graph, info, opset, strict, fold
        self.names: set[str] = set()
        self.known: dict[str, np.ndarray] = {}
        self.kept: set[str] = set()  # constant values left as nodes (OpDef.fold is False)

    def _unique(self, name: str, op: str, index: int) -> str:
        base = name or f"{op}_{index}"
        unique, i = base, 1
        while unique in self.names:
            unique, i = f"{base}_{i}", i + 1
        self.names.add(unique)
        return unique

    def run(self, nodes, outputs) -> None:
        self.used = {t for n in nodes for t in n.input} | {o.name for o in outputs}

        for i, proto in enumerate(nodes):
            name = self._unique(proto.name, proto.op_type, i)
            op = proto.op_type
            attrs = _attrs(proto)
            for t in proto.input:
                if t and t not in self.graph.tensors:
                    raise ModelError(f"node {name!r} ({op}) reads {t!r}, which nothing produces")
            node = self._normalise(Node(name, op, list(proto.input), list(proto.output), attrs))
            if node is None:
                continue
            self._add(node)

    # -- attribute normalisation ---------------------------------------------------
    def _const(self, t: str) -> np.ndarray | None:
        """A constant's value; without folding, also a value computed from constants."""
        if not t:
            return None
        v = self.graph.const(t)
        return self.known.get(t) if v is None else v

    def _normalise(self, node: Node) -> Node | None:
        g, op, a = self.graph, node.op, node.attrs
        if op == "Constant":
            data = _constant_value(node, a)
            _check_finite(node.outputs[0], data, "Constant")
            g.add_tensor(Tensor(node.outputs[0], data.shape, data.dtype, data))
            return None
        if op == "Clip" and len(node.inputs) > 1:
            for key, t in zip(("min", "max"), node.inputs[1:3]):
                if not t:
                    continue
                v = self._const(t)
                if v is None:
                    raise UnsupportedOpError(f"node {node.name!r} (Clip): the {key} bound must be a constant")
                a[key] = float(np.asarray(v).reshape(-1)[0])
            node.inputs = node.inputs[:1]
        if op in ("Squeeze", "Unsqueeze") and len(node.inputs) > 1:
            v = self._const(node.inputs[1])
            if v is None:
                raise UnsupportedOpError(f"node {node.name!r} ({op}): axes must be a constant")
            a["axes"] = [int(x) for x in np.asarray(v).reshape(-1)]
            node.inputs = node.inputs[:1]
        if op == "Pad":
            self._pad(node)
        if op in ("Softmax", "LogSoftmax") and self.opset < 13:
            a["coerce_2d"] = True
        if op == "Cast":
            to = int(a["to"])
            if to not in _NUMPY_TYPES:
                raise UnsupportedOpError(
                    f"node {node.name!r} (Cast): target type {onnx.TensorProto.DataType.Name(to)} is not supported"
                )
            a["to"] = _np_dtype(to)
        if op == "Dropout":
            training = self._const(node.inputs[2]) if len(node.inputs) > 2 else None
            if node.inputs[2:] and (training is None or bool(np.asarray(training).reshape(-1)[0])):
                raise UnsupportedOpError(f"node {node.name!r} (Dropout) is in training mode; export in eval mode")
            node.inputs = node.inputs[:1]
        if op == "BatchNormalization" and int(a.pop("training_mode", 0)):
            raise UnsupportedOpError(f"node {node.name!r} (BatchNormalization) is in training mode; export in eval mode")
        if op in ("BatchNormalization", "MaxPool", "Dropout"):
            for legacy in ("spatial", "is_test", "consumed_inputs"):
                a.pop(legacy, None)
            keep = 2 if op == "Dropout" else 1  # Dropout's mask is computable (all ones)
            extra = [t for t in node.outputs[keep:] if t and t in self.used]
            if extra:
                raise UnsupportedOpError(f"node {node.name!r} ({op}): its output {extra[0]!r} is not supported")
            node.outputs = node.outputs[:keep]
            if len(node.outputs) == 2 and not node.outputs[1]:
                node.outputs = node.outputs[:1]
        if op == "Sum":
            return self._sum(node)
        if op in ("ReduceMean", "ReduceMax", "GlobalMaxPool"):
            return self._global_pool(node)
        return node

    def _global_pool(self, node: Node) -> Node:
        """A mean or maximum over every spatial axis of an ``(N, C, ...)`` tensor (ReduceMean,
        ReduceMax, GlobalMaxPool) -> a GlobalAveragePool or a MaxPool over the whole map
        (then a Flatten when the reduction drops its axes)."""
        shape = self.graph.shape(node.inputs[0])
        rank = len(shape)
        if node.op == "GlobalMaxPool":
            axes = list(range(2, rank))
        else:
            v = self._const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else node.attrs.get("axes")
            axes = sorted(int(a) % rank for a in np.asarray(v).reshape(-1)) if v is not None else list(range(rank))
        if rank < 3 or axes != list(range(2, rank)):
            raise UnsupportedOpError(f"node {node.name!r} ({node.op}) reduces axes {axes}; hwflow takes a mean or "
                                     f"maximum over every spatial axis only (a global pool)")
        pool = (Node(node.name, "GlobalAveragePool", node.inputs[:1], node.outputs) if node.op == "ReduceMean" else
                Node(node.name, "MaxPool", node.inputs[:1], node.outputs, {"kernel_shape": list(shape[2:])}))
        if node.op == "GlobalMaxPool" or int(node.attrs.get("keepdims", 1)):
            return pool
        pool.name, pool.outputs = f"{node.name}__pool", [f"{node.outputs[0]}__pooled"]
        self._add(pool)
        return Node(node.name, "Flatten", pool.outputs, node.outputs, {"axis": 1})

    def _pad(self, node: Node) -> None:
        """Pad's operands (inputs since opset 11) as attributes: ``pads`` for every axis,
        ``value``, ``mode``."""
        a = node.attrs
        rank = len(self.graph.shape(node.inputs[0]))
        if len(node.inputs) > 1:
            pads = self._const(node.inputs[1])
            value = self._const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else 0
            axes = self._const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
            if pads is None or value is None or (len(node.inputs) > 3 and node.inputs[3] and axes is None):
                raise UnsupportedOpError(f"node {node.name!r} (Pad): pads, value and axes must be constants")
            pads = [int(p) for p in np.asarray(pads).reshape(-1)]
            if axes is not None:
                axes = [int(x) + rank if int(x) < 0 else int(x) for x in np.asarray(axes).reshape(-1)]
                full = [0] * (2 * rank)
                for i, ax in enumerate(axes):
                    full[ax], full[rank + ax] = pads[i], pads[len(axes) + i]
                pads = full
            a["pads"], a["value"] = pads, float(np.asarray(value).reshape(-1)[0]) if np.size(value) else 0.0
            node.inputs = node.inputs[:1]
        else:
            a["pads"] = [int(p) for p in a.get("pads", a.pop("paddings", [0] * 2 * rank))]
            a.setdefault("value", 0.0)
        a["mode"] = a.get("mode", "constant") or "constant"

    def _sum(self, node: Node) -> Node | None:
        """Sum of n tensors -> a chain of Adds (one input: Identity)."""
        ins = node.inputs
        if len(ins) == 1:
            return Node(node.name, "Identity", ins, node.outputs)
        acc = ins[0]
        for k, t in enumerate(ins[1:-1], start=1):
            tmp = f"{node.outputs[0]}__sum{k}"
            self._add(Node(f"{node.name}__add{k}", "Add", [acc, t], [tmp]))
            acc = tmp
        return Node(node.name, "Add", [acc, ins[-1]], node.outputs)

    # -- adding (and folding) ----------------------------------------------------------
    def _add(self, node: Node) -> None:
        g = self.graph
        spec = OPS[node.op]
        consts = [self._const(t) for t in node.inputs]
        computable = not spec.host and (
            spec.shape_only or all(c is not None for t, c in zip(node.inputs, consts) if t)
        )
        if computable and (not spec.fold or any(t in self.kept for t in node.inputs)):
            # kept as a node (a QONNX quantizer, or what reads one: its codes must stay
            # visible); its value counts as a constant for the rules and for shapes
            for t, v in zip(node.outputs, run_node(node, consts)):
                if t:
                    self.known[t] = v
                    self.kept.add(t)
        elif computable:
            # Shape reads only the shape: a broadcast zero allocates nothing, whatever its size
            ins = [np.broadcast_to(np.int8(0), g.shape(node.inputs[0]))] if spec.shape_only else consts
            _check_fold_size(node, [g.shape(t) if t else None for t in node.inputs], consts)
            outs = run_node(node, ins)
            for t, v in zip(node.outputs, outs):
                if t and self.fold:
                    g.add_tensor(Tensor(t, v.shape, v.dtype, v))
                elif t:  # kept as a node, but its value still gives later shapes
                    self.known[t] = v
            if self.fold:
                return
            consts = [self._const(t) for t in node.inputs]
        shapes = [g.shape(t) if t else None for t in node.inputs]
        derived = infer_node_shapes(node, shapes, consts)
        for k, t in enumerate(node.outputs):
            if not t:
                continue
            vi = self.info.get(t)
            # hwflow's rules first: they follow onnxruntime where onnx's inference
            # differs (a pool's ceil_mode window starting in the end padding is dropped)
            shape = derived[k] if derived is not None else _static_dims(vi) if vi is not None else None
            if shape is None:
                raise ModelError(f"node {node.name!r} ({node.op}): cannot determine the shape of {t!r}")
            g.add_tensor(Tensor(t, shape, self._dtype(node, k, vi)))
        g.add_node(node)

    def _dtype(self, node: Node, k: int, vi) -> np.dtype:
        if vi is not None and vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            return _np_dtype(vi.type.tensor_type.elem_type)
        if node.op == "Cast":
            return np.dtype(node.attrs["to"])
        if node.op in ("ArgMax", "Shape"):
            return np.dtype(np.int64)
        if k == 1 and node.op == "Dropout":
            return np.dtype(bool)
        return self.graph.tensors[node.inputs[0]].dtype


def _check_ops(g: onnx.GraphProto) -> None:
    """Reject the first node whose op hwflow cannot import (before any other work)."""
    for i, proto in enumerate(g.node):
        op = proto.op_type
        default = proto.domain in ("", "ai.onnx")
        if op == "ZipMap":
            raise UnsupportedOpError(
                f"node {proto.name or f'{op}_{i}'!r} (ZipMap) returns the probabilities as a sequence of maps, "
                "which hwflow does not compile; export the classifier without it: skl2onnx "
                "to_onnx(model, X, options={'zipmap': False})"
            )
        spec = OPS.get(op)
        if spec is None or not (default or proto.domain == spec.domain):
            name = proto.name or f"{op}_{i}"
            op_name = op if default else f"{proto.domain}.{op}"
            raise UnsupportedOpError(
                f"node {name!r} uses op {op_name}, which hwflow does not support; supported: {_supported_list()}"
            )


#: Largest constant the importer computes (elements); more is no network for a small FPGA,
#: and a tiny file can declare it (ConstantOfShape [10**5, 10**5]).
MAX_FOLD_ELEMENTS = 1 << 27


def _check_fold_size(node: Node, shapes: list, consts: list) -> None:
    """Refuse to compute an absurdly large constant, before allocating it."""
    try:
        derived = infer_node_shapes(node, shapes, consts)
    except HwflowError:
        return  # the kernel reports what is wrong, as before
    for t, shape in zip(node.outputs, derived or ()):
        if float(np.prod(shape, dtype=np.float64)) > MAX_FOLD_ELEMENTS:
            raise ModelError(
                f"node {node.name!r} ({node.op}) makes a constant {t!r} of shape {tuple(shape)!r}, more than "
                f"{MAX_FOLD_ELEMENTS:,} elements; the model is malformed or far too large for hwflow"
            )


def _check_constant_shapes(model: onnx.ModelProto) -> None:
    """Refuse a ConstantOfShape of a constant, absurd shape before onnx's shape inference
    (which materialises it when propagating data into a Reshape) allocates it."""
    shapes: dict[str, Any] = {t.name: t for t in model.graph.initializer}
    for proto in model.graph.node:
        if proto.op_type == "Constant" and proto.output:
            for a in proto.attribute:
                if a.name in ("value", "value_ints"):
                    shapes[proto.output[0]] = a.t if a.name == "value" else list(a.ints)
        if proto.op_type != "ConstantOfShape" or not proto.input or proto.input[0] not in shapes:
            continue
        v = shapes[proto.input[0]]
        try:
            dims = np.asarray(numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v, np.float64)
        except Exception:  # noqa: BLE001 - a malformed tensor is reported later, by name
            continue
        if dims.size and float(np.prod(np.maximum(dims, 0))) > MAX_FOLD_ELEMENTS:
            raise ModelError(
                f"node {proto.name or proto.output[0]!r} (ConstantOfShape) makes a constant of shape "
                f"{[int(d) for d in dims.reshape(-1)]!r}, more than {MAX_FOLD_ELEMENTS:,} elements; "
                "the model is malformed or far too large for hwflow"
            )


def _check_schemas(model: onnx.ModelProto, opset: int) -> None:
    """Check each node against its ONNX schema: input/output counts, required inputs
    and attributes, attribute types (a malformed node must not reach the kernels)."""
    from onnx.defs import OpSchema

    versions = {o.domain or "": o.version for o in model.opset_import}
    versions[""] = opset
    single = OpSchema.FormalParameterOption.Single
    for i, proto in enumerate(model.graph.node):
        domain = "" if proto.domain == "ai.onnx" else proto.domain
        try:
            schema = onnx.defs.get_schema(proto.op_type, max(1, min(versions.get(domain, 1), 1 << 30)), domain)
        except onnx.defs.SchemaError:
            continue  # _check_ops decides about ops onnx does not know
        where = f"node {proto.name or f'{proto.op_type}_{i}'!r} ({proto.op_type})"
        for what, names, lo, hi, formal in (("inputs", proto.input, schema.min_input, schema.max_input, schema.inputs),
                                            ("outputs", proto.output, schema.min_output, schema.max_output, schema.outputs)):
            if not lo <= len(names) <= hi:
                want = f"{lo}" if lo == hi else f"{lo} to {hi}"
                raise ModelError(f"{where} has {len(names)} {what}; ONNX {proto.op_type} takes {want}: the model is malformed, re-export it")
            for k, t in enumerate(names):
                if not t and formal and formal[min(k, len(formal) - 1)].option == single:
                    raise ModelError(f"{where}: required {what[:-1]} {k} ({formal[min(k, len(formal) - 1)].name}) is empty: the model is malformed, re-export it")
        given = {a.name: a for a in proto.attribute}
        for name, spec in schema.attributes.items():
            a = given.get(name)
            if a is None:
                if spec.required:
                    raise ModelError(f"{where} lacks its required attribute {name!r}: the model is malformed, re-export it")
            elif int(a.type) != int(spec.type):
                got = onnx.AttributeProto.AttributeType.Name(a.type)
                raise ModelError(
                    f"{where}: attribute {name!r} is {got}, ONNX wants {spec.type.name}: the model is malformed, re-export it"
                )


def _check_supported(graph: Graph, computable: set[str]) -> None:
    """The strict rules: supported ops only, constant layer operands (host tail exempt).

    ``computable`` holds tensors that are computed from constants only (left as nodes
    when importing without folding); they count as constants.
    """
    for node in graph.nodes:
        if node.attrs.get("host") or all(t in computable for t in node.outputs if t):
            continue
        if node.op not in SUPPORTED_OPS:
            raise UnsupportedOpError(
                f"node {node.name!r} uses op {node.op} on a non-constant input, which hwflow does not support; "
                f"supported: {_supported_list()}"
            )
        if node.op == "Reshape" and graph.const(node.inputs[1]) is None and node.inputs[1] not in computable:
            raise UnsupportedOpError(f"node {node.name!r} (Reshape): the target shape must be a constant")
        operands = OPS[node.op].operands
        if operands != "any":
            acts = [t for t in node.inputs if t and graph.const(t) is None and t not in computable]
            # Sub/Mul/Div/MatMul may take the activation on either side; layers only first.
            ok = len(acts) <= 1 if operands == "one" else acts in ([], node.inputs[:1])
            if not ok:
                raise UnsupportedOpError(
                    f"node {node.name!r} ({node.op}) combines two computed tensors; hwflow supports "
                    f"{node.op} only with constant {'weights' if node.op in ('Conv', 'Gemm', 'MatMul') else 'operands'}"
                )


def _mark_host_tail(graph: Graph, strict: bool) -> None:
    """Mark the host-side tail: host ops, and data movement reading only host results.

    A node belongs to the tail only if everything reading it does too; a host op that
    feeds accelerator layers is an error in strict mode.
    """
    nodes = graph.nodes
    candidate = set()
    for node in nodes:
        acts = [t for t in node.inputs if t and not graph.tensors[t].is_const]
        if OPS[node.op].host or (
            OPS[node.op].host_tail and acts and all(getattr(graph.producer(t), "name", None) in candidate for t in acts)
        ):
            candidate.add(node.name)
    for node in reversed(nodes):
        if node.name not in candidate:
            continue
        if all(c.attrs.get("host") for t in node.outputs for c in graph.consumers(t)):
            node.attrs["host"] = True
        elif OPS[node.op].host and strict:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op}) feeds other layers; hwflow supports {node.op} only at the network's tail"
            )
