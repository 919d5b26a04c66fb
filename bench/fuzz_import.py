"""Mutation fuzzer for hwflow's ONNX importer.

Every case takes one valid ONNX file (tests/fixtures/*.onnx, examples/models/*.onnx),
applies one to three mutations, and runs it through ``hwflow.ir.load_model``, then
``hwflow.passes.optimize`` and, when that imports, ``hwflow.ref.float.run_float`` on one
random input. A case passes if it imports or raises a :class:`~hwflow.errors.HwflowError`;
anything else is a crash: another exception, a hang (more than ``--timeout`` seconds),
a memory blow-up (the worker runs under an address-space limit, so an absurd
allocation is a ``MemoryError``) or a dead worker.

Mutations are of two kinds:

- byte level: bit flips, random bytes, truncation, insertion, deletion, splicing two
  files, duplicating a chunk;
- structure aware (parse, edit the ``ModelProto``, serialize): dims set to 0, -1, huge
  or symbolic; initializer dims that disagree with their data (raw_data of the wrong
  length, a 10⁹-element tensor declared over a few bytes); NaN/Inf weights; wrong
  element types; external data pointing anywhere; dropped, duplicated, reordered and
  rewired nodes; changed op types and domains; attributes of the wrong type or with
  absurd values; wrong opset and IR versions; broken graph inputs and outputs.

Cases are drawn from a seeded ``random.Random`` (case ``i`` of seed ``s`` is always the
same mutation), so a run is reproducible and a crash can be replayed from its index.
Crashing inputs are written to ``--crash-dir`` (``<n>.onnx`` plus ``<n>.txt`` with the
mutations and the traceback)::

    python bench/fuzz_import.py --cases 10000 --seed 0 --jobs 2
    python bench/fuzz_import.py --replay fuzz_crashes/00042.onnx

The short version of this run is tests/robustness/test_fuzz_import.py.
"""

from __future__ import annotations

import argparse
import collections
import copy
import multiprocessing as mp
import os
import random
import resource
import shlex
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
SEED_GLOBS = ("tests/fixtures/*.onnx", "examples/models/*.onnx")

#: address-space limit of a worker (an absurd allocation becomes a MemoryError)
MEMORY_LIMIT = 3 << 30
#: an imported model whose input has more elements than this is not run in the float reference
RUN_LIMIT = 1 << 22

HUGE = (2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 10**9)
_OPS = (
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "LeakyRelu",
    "Clip", "Sigmoid", "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape",
    "Transpose", "Concat", "Identity", "Dropout", "Cast", "Constant", "Softmax", "LogSoftmax", "ArgMax",
    "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Squeeze", "Sum", "ArrayFeatureExtractor",
    "LRN", "Loop", "If", "Scan", "Expand", "Resize", "Pad", "Slice", "Tile", "Range", "", "conv", "?",
)  # fmt: skip
_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft", "x.custom", "ai.onnx.preview.training")
_ATTR_NAMES = (
    "axis", "axes", "group", "kernel_shape", "pads", "strides", "dilations", "transA", "transB", "alpha",
    "beta", "auto_pad", "ceil_mode", "count_include_pad", "perm", "keepdims", "select_last_index", "to",
    "allowzero", "training_mode", "value", "epsilon", "momentum", "min", "max", "storage_order",
    "value_float", "value_ints", "coerce_2d", "spatial", "is_test", "consumed_inputs", "ratio", "seed",
)  # fmt: skip
_ELEM_TYPES = sorted(TensorProto.DataType.values()) + [99, -1]


class Skip(Exception):
    """The mutation does not apply to this model; another one is drawn."""


# ---- byte-level mutations --------------------------------------------------------------

def _b_flip(rng: random.Random, data: bytearray, _others) -> str:
    k = rng.choice((1, 1, 2, 4, 16))
    for _ in range(k):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return f"flip {k} bits"


def _b_set(rng, data, _others) -> str:
    i = rng.randrange(len(data))
    n = rng.choice((1, 2, 4, 8))
    data[i : i + n] = bytes(rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256))) for _ in range(n))
    return f"set {n} bytes at {i}"


def _b_truncate(rng, data, _others) -> str:
    n = rng.randrange(len(data))
    del data[n:]
    return f"truncate to {n}"


def _b_insert(rng, data, _others) -> str:
    i = rng.randrange(len(data) + 1)
    n = rng.choice((1, 3, 16, 257))
    data[i:i] = rng.randbytes(n)
    return f"insert {n} bytes at {i}"


def _b_delete(rng, data, _others) -> str:
    i = rng.randrange(len(data))
    n = rng.choice((1, 2, 8, 64, 512))
    del data[i : i + n]
    return f"delete {n} bytes at {i}"


def _b_splice(rng, data, others) -> str:
    other = rng.choice(others)
    i, j = rng.randrange(len(data)), rng.randrange(len(other))
    data[i:] = other[j:]
    return f"splice at {i} with another file from {j}"


def _b_dup(rng, data, _others) -> str:
    i = rng.randrange(len(data))
    n = rng.choice((4, 32, 256))
    chunk = data[i : i + n]
    j = rng.randrange(len(data) + 1)
    data[j:j] = chunk
    return f"duplicate {len(chunk)} bytes from {i} at {j}"


BYTE_MUTATIONS = (_b_flip, _b_set, _b_truncate, _b_insert, _b_delete, _b_splice, _b_dup)


# ---- structure-aware mutations -----------------------------------------------------------

def _value_infos(m: onnx.ModelProto) -> list:
    g = m.graph
    return [vi for vi in list(g.input) + list(g.output) + list(g.value_info) if vi.type.HasField("tensor_type")]


def _pick(rng, seq):
    seq = list(seq)
    if not seq:
        raise Skip
    return rng.choice(seq)


def _s_dim(rng, m) -> str:
    vi = _pick(rng, _value_infos(m))
    shape = vi.type.tensor_type.shape
    if not shape.dim:
        raise Skip
    d = _pick(rng, shape.dim)
    choice = rng.choice(("0", "-1", "huge", "sym", "clear", "+1"))
    if choice == "sym":
        d.dim_param = rng.choice(("N", "height", "", "batch"))
    elif choice == "clear":
        d.Clear()
    elif choice == "+1":
        d.dim_value = d.dim_value + 1
    else:
        d.dim_value = {"0": 0, "-1": -1}.get(choice) or rng.choice(HUGE)
    return f"dim of {vi.name!r} -> {choice}"


def _s_rank(rng, m) -> str:
    vi = _pick(rng, _value_infos(m))
    shape = vi.type.tensor_type.shape
    if shape.dim and rng.random() < 0.5:
        del shape.dim[-1]
        return f"drop a dim of {vi.name!r}"
    shape.dim.add().dim_value = rng.choice((1, 2, 7))
    return f"add a dim to {vi.name!r}"


def _s_no_shape(rng, m) -> str:
    vi = _pick(rng, _value_infos(m))
    vi.type.tensor_type.ClearField("shape")
    return f"clear the shape of {vi.name!r}"


def _s_elem_type(rng, m) -> str:
    vi = _pick(rng, _value_infos(m))
    t = rng.choice(_ELEM_TYPES)
    vi.type.tensor_type.elem_type = t if t >= 0 else 0
    return f"elem_type of {vi.name!r} -> {t}"


def _s_init_dims(rng, m) -> str:
    t = _pick(rng, m.graph.initializer)
    choice = rng.choice(("0", "-1", "+1", "huge", "add", "drop", "gemm1e9"))
    if choice == "gemm1e9":  # a 10⁹-parameter weight declared over the few bytes there are
        del t.dims[:]
        t.dims.extend([31623, 31623])
    elif choice == "add":
        t.dims.append(rng.choice((1, 2, 10**6)))
    elif choice == "drop":
        if not t.dims:
            raise Skip
        del t.dims[-1]
    else:
        if not t.dims:
            raise Skip
        i = rng.randrange(len(t.dims))
        t.dims[i] = {"0": 0, "-1": -1, "+1": t.dims[i] + 1}.get(choice, rng.choice(HUGE))
    return f"initializer {t.name!r} dims -> {list(t.dims)}"


def _to_raw(t: TensorProto) -> None:
    if not t.HasField("raw_data") and t.data_type in (TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32,
                                                      TensorProto.DOUBLE):  # fmt: skip
        arr = numpy_helper.to_array(t)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))


def _s_raw_len(rng, m) -> str:
    t = _pick(rng, m.graph.initializer)
    _to_raw(t)
    if not t.HasField("raw_data"):
        raise Skip
    raw = t.raw_data
    choice = rng.choice(("short", "long", "empty", "odd"))
    if choice == "short":
        t.raw_data = raw[: rng.randrange(max(len(raw), 1))]
    elif choice == "long":
        t.raw_data = raw + rng.randbytes(rng.choice((1, 4, 1000)))
    elif choice == "empty":
        t.raw_data = b""
    else:
        t.raw_data = raw[:-1] if raw else b"\x01"
    return f"raw_data of {t.name!r}: {choice} ({len(raw)} -> {len(t.raw_data)} bytes)"


def _s_nonfinite(rng, m) -> str:
    t = _pick(rng, [t for t in m.graph.initializer if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE)])
    arr = numpy_helper.to_array(t).copy()
    if arr.size == 0:
        raise Skip
    v = rng.choice((np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45))
    flat = arr.reshape(-1)
    idx = rng.randrange(flat.size) if rng.random() < 0.7 else slice(None)
    flat[idx] = v
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return f"initializer {t.name!r} gets {v}"


def _s_init_dtype(rng, m) -> str:
    t = _pick(rng, m.graph.initializer)
    dt = rng.choice(_ELEM_TYPES)
    t.data_type = dt if dt >= 0 else 0
    return f"initializer {t.name!r} data_type -> {dt}"


def _s_external(rng, m) -> str:
    t = _pick(rng, m.graph.initializer)
    _to_raw(t)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    loc = rng.choice(("missing.bin", "../../etc/passwd", "/etc/hostname", "/dev/zero", "", ".", "a/../../b"))
    entry = t.external_data.add()
    entry.key, entry.value = "location", loc
    if rng.random() < 0.5:
        e = t.external_data.add()
        e.key, e.value = rng.choice(("offset", "length")), str(rng.choice((0, -1, 10**12, 7)))
    return f"initializer {t.name!r} external data at {loc!r}"


def _s_init_drop(rng, m) -> str:
    g = m.graph
    i = rng.randrange(len(g.initializer)) if g.initializer else None
    if i is None:
        raise Skip
    name = g.initializer[i].name
    del g.initializer[i]
    return f"drop initializer {name!r}"


def _s_init_dup(rng, m) -> str:
    t = _pick(rng, m.graph.initializer)
    other = _pick(rng, m.graph.initializer)
    new = m.graph.initializer.add()
    new.CopyFrom(other)
    new.name = t.name
    return f"second initializer named {t.name!r} (copy of {other.name!r})"


def _s_node_drop(rng, m) -> str:
    g = m.graph
    if not g.node:
        raise Skip
    i = rng.randrange(len(g.node))
    op = g.node[i].op_type
    del g.node[i]
    return f"drop node {i} ({op})"


def _s_node_dup(rng, m) -> str:
    g = m.graph
    n = _pick(rng, g.node)
    g.node.insert(rng.randrange(len(g.node) + 1), copy.deepcopy(n))
    return f"duplicate node {n.name!r} ({n.op_type})"


def _s_node_order(rng, m) -> str:
    nodes = list(m.graph.node)
    if len(nodes) < 2:
        raise Skip
    if rng.random() < 0.5:
        i, j = rng.sample(range(len(nodes)), 2)
        nodes[i], nodes[j] = nodes[j], nodes[i]
        what = f"swap nodes {i} and {j}"
    else:
        nodes.reverse()
        what = "reverse the nodes"
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return what


def _tensor_names(m) -> list[str]:
    g = m.graph
    names = [vi.name for vi in g.input] + [t.name for t in g.initializer]
    return names + [o for n in g.node for o in n.output]


def _s_rewire(rng, m) -> str:
    n = _pick(rng, [n for n in m.graph.node if n.input])
    i = rng.randrange(len(n.input))
    choice = rng.choice(("missing", "other", "empty", "self"))
    if choice == "missing":
        n.input[i] = "nowhere"
    elif choice == "empty":
        n.input[i] = ""
    elif choice == "self":
        if not n.output:
            raise Skip
        n.input[i] = n.output[0]
    else:
        n.input[i] = rng.choice(_tensor_names(m))
    return f"input {i} of {n.name!r} ({n.op_type}) -> {n.input[i]!r}"


def _s_arity(rng, m) -> str:
    n = _pick(rng, m.graph.node)
    if n.input and rng.random() < 0.5:
        del n.input[rng.randrange(len(n.input)) :]
        return f"{n.name!r} ({n.op_type}) keeps {len(n.input)} inputs"
    if rng.random() < 0.5:
        n.input.append(rng.choice(_tensor_names(m) + [""]))
        return f"{n.name!r} ({n.op_type}) gets an extra input"
    if rng.random() < 0.5 and n.output:
        n.output.append(f"{n.output[0]}_extra")
        return f"{n.name!r} ({n.op_type}) gets an extra output"
    if n.output:
        n.output[0] = rng.choice(_tensor_names(m) + [""])
    return f"{n.name!r} ({n.op_type}) output renamed"


def _s_op(rng, m) -> str:
    n = _pick(rng, m.graph.node)
    old = n.op_type
    n.op_type = rng.choice(_OPS)
    return f"node {n.name!r} op {old} -> {n.op_type!r}"


def _s_domain(rng, m) -> str:
    n = _pick(rng, m.graph.node)
    n.domain = rng.choice(_DOMAINS)
    return f"node {n.name!r} ({n.op_type}) domain -> {n.domain!r}"


def _random_attr(rng, name: str) -> onnx.AttributeProto:
    kind = rng.choice(("int", "ints", "float", "floats", "string", "strings", "tensor", "graph", "empty_ints"))
    ints = (0, -1, 1, 2, 3, -5, 2**31, 2**62, 10**6)
    if kind == "int":
        return helper.make_attribute(name, rng.choice(ints))
    if kind == "ints":
        return helper.make_attribute(name, [rng.choice(ints) for _ in range(rng.choice((1, 2, 4, 9)))])
    if kind == "empty_ints":
        return helper.make_attribute(name, [], attr_type=onnx.AttributeProto.INTS)
    if kind == "float":
        return helper.make_attribute(name, rng.choice((0.0, -1.0, float("nan"), float("inf"), 1e30)))
    if kind == "floats":
        return helper.make_attribute(name, [rng.choice((0.5, float("nan"), -1e30)) for _ in range(3)])
    if kind == "string":
        return helper.make_attribute(name, rng.choice(("SAME_UPPER", "VALID", "NOTSET", "garbage", "", "\xff")))
    if kind == "strings":
        return helper.make_attribute(name, ["a", "b"])
    if kind == "tensor":
        dims = rng.choice(([], [3], [10**9], [2, 2]))
        t = helper.make_tensor("v", TensorProto.FLOAT, dims, [1.0] * (4 if dims == [2, 2] else 3 if dims == [3] else 1 if not dims else 2),
                               raw=False)  # fmt: skip
        return helper.make_attribute(name, t)
    sub = helper.make_graph([], "sub", [], [])
    return helper.make_attribute(name, sub)


def _s_attr_change(rng, m) -> str:
    n = _pick(rng, [n for n in m.graph.node if n.attribute])
    i = rng.randrange(len(n.attribute))
    name = n.attribute[i].name
    n.attribute[i].CopyFrom(_random_attr(rng, name))
    return f"attribute {name!r} of {n.name!r} ({n.op_type}) -> {helper.get_attribute_value(n.attribute[i])!r}"[:200]


def _s_attr_add(rng, m) -> str:
    n = _pick(rng, m.graph.node)
    name = rng.choice(_ATTR_NAMES)
    for i, a in enumerate(n.attribute):
        if a.name == name:
            del n.attribute[i]
            break
    n.attribute.append(_random_attr(rng, name))
    return f"attribute {name!r} added to {n.name!r} ({n.op_type})"


def _s_attr_drop(rng, m) -> str:
    n = _pick(rng, [n for n in m.graph.node if n.attribute])
    i = rng.randrange(len(n.attribute))
    name = n.attribute[i].name
    del n.attribute[i]
    return f"drop attribute {name!r} of {n.name!r} ({n.op_type})"


def _s_opset(rng, m) -> str:
    choice = rng.choice(("version", "version", "remove", "duplicate", "domain"))
    if choice == "remove" or not m.opset_import:
        del m.opset_import[:]
        return "no opset_import"
    o = _pick(rng, m.opset_import)
    if choice == "duplicate":
        d = m.opset_import.add()
        d.domain, d.version = o.domain, rng.choice((1, 13, 22))
        return f"second opset_import for {o.domain!r}"
    if choice == "domain":
        o.domain = rng.choice(_DOMAINS)
        return f"opset domain -> {o.domain!r}"
    o.version = rng.choice((0, 1, 5, 6, 7, 8, 9, 10, 11, 13, 17, 21, 22, 23, 100, -1, 2**62))
    return f"opset {o.domain!r} version -> {o.version}"


def _s_ir_version(rng, m) -> str:
    m.ir_version = rng.choice((0, 1, 2, 3, 4, 7, 10, 11, 100, 2**40))
    return f"ir_version -> {m.ir_version}"


def _s_graph_io(rng, m) -> str:
    g = m.graph
    choice = rng.choice(("drop_out", "rename_out", "extra_in", "drop_in", "extra_out", "out_is_in"))
    if choice == "drop_out" and g.output:
        del g.output[rng.randrange(len(g.output))]
    elif choice == "rename_out" and g.output:
        _pick(rng, g.output).name = rng.choice(("nowhere", "", *_tensor_names(m)))
    elif choice == "extra_in":
        g.input.append(helper.make_tensor_value_info(rng.choice(("extra", *_tensor_names(m))), TensorProto.FLOAT, [1, 4]))
    elif choice == "drop_in" and g.input:
        del g.input[rng.randrange(len(g.input))]
    elif choice == "extra_out":
        g.output.append(helper.make_tensor_value_info(rng.choice(_tensor_names(m)), TensorProto.FLOAT, None))
    elif choice == "out_is_in" and g.output and g.input:
        g.output[0].name = g.input[0].name
    else:
        raise Skip
    return f"graph io: {choice}"


def _s_constant(rng, m) -> str:
    """Feed a node input from a new Constant node with an odd value."""
    n = _pick(rng, [n for n in m.graph.node if n.input])
    kind = rng.choice(("huge_decl", "scalar", "empty", "int", "string", "cos_huge", "sparse"))
    if kind == "huge_decl":
        t = helper.make_tensor("v", TensorProto.FLOAT, [10**5, 10**4], b"\0\0\0\0" * 4, raw=True)
        attr = helper.make_attribute("value", t)
    elif kind == "scalar":
        attr = helper.make_attribute("value_float", rng.choice((0.0, float("nan"), 1e30)))
    elif kind == "empty":
        attr = helper.make_attribute("value", helper.make_tensor("v", TensorProto.FLOAT, [0], []))
    elif kind == "int":
        attr = helper.make_attribute("value_ints", [rng.choice((0, -1, 2**40)) for _ in range(rng.choice((1, 2, 4)))])
    elif kind == "string":
        attr = helper.make_attribute("value_string", "hello")
    elif kind == "cos_huge":  # a ConstantOfShape-style blow-up: shape constant with huge entries
        attr = helper.make_attribute("value_ints", [10**5, 10**5])
    else:
        attr = helper.make_attribute("sparse_value", helper.make_sparse_tensor(
            helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]), helper.make_tensor("i", TensorProto.INT64, [1], [0]), [4]))
    out = f"fuzz_const_{rng.randrange(1000)}"
    c = helper.make_node("Constant", [], [out])
    c.attribute.append(attr)
    i = rng.randrange(len(n.input))
    n.input[i] = out
    idx = list(m.graph.node).index(n)
    m.graph.node.insert(idx, c)
    if kind == "cos_huge" and rng.random() < 0.7:
        cos = helper.make_node("ConstantOfShape", [out], [out + "_big"])
        m.graph.node.insert(idx + 1, cos)
        n.input[i] = out + "_big"
    return f"input {i} of {n.name!r} ({n.op_type}) from a Constant ({kind})"


def _s_reshape_target(rng, m) -> str:
    inits = {t.name: t for t in m.graph.initializer}
    cands = [n for n in m.graph.node if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] in inits]
    n = _pick(rng, cands)
    t = inits[n.input[1]]
    vals = rng.choice(([-1, -1], [0, 0, 0], [10**9, 10**9], [-2, 4], [], [1, 2**40], [0, -1]))
    t.CopyFrom(numpy_helper.from_array(np.asarray(vals, dtype=np.int64).reshape(len(vals)), t.name))
    return f"Reshape {n.name!r} shape -> {vals}"


def _s_value_info(rng, m) -> str:
    outs = [o for n in m.graph.node for o in n.output if o]
    name = _pick(rng, outs)
    dims = [rng.choice((1, 0, 3, 10**9, "N")) for _ in range(rng.choice((0, 1, 2, 4)))]
    m.graph.value_info.append(helper.make_tensor_value_info(name, rng.choice((TensorProto.FLOAT, TensorProto.INT64)), dims))
    return f"value_info for {name!r}: {dims}"


def _s_function(rng, m) -> str:
    n = _pick(rng, m.graph.node)
    f = helper.make_function("x.custom", n.op_type, list("ab")[: max(1, len(n.input))], ["y"],
                             [helper.make_node("Relu", ["a"], ["y"])], [helper.make_opsetid("", 13)])
    m.functions.append(f)
    n.domain = "x.custom"
    m.opset_import.append(helper.make_opsetid("x.custom", 1))
    return f"node {n.name!r} calls a local function"


def _s_sparse_init(rng, m) -> str:
    t = _pick(rng, m.graph.initializer)
    sp = helper.make_sparse_tensor(helper.make_tensor(t.name, TensorProto.FLOAT, [1], [1.0]),
                                   helper.make_tensor("", TensorProto.INT64, [1], [rng.choice((0, 10**9, -1))]),
                                   rng.choice(([4], [10**6, 10**6], list(t.dims))))  # fmt: skip
    m.graph.sparse_initializer.append(sp)
    if rng.random() < 0.5:
        m.graph.initializer.remove(t)
    return f"sparse initializer {t.name!r}"


STRUCT_MUTATIONS = (
    _s_dim, _s_rank, _s_no_shape, _s_elem_type, _s_init_dims, _s_raw_len, _s_nonfinite, _s_init_dtype,
    _s_external, _s_init_drop, _s_init_dup, _s_node_drop, _s_node_dup, _s_node_order, _s_rewire, _s_arity,
    _s_op, _s_domain, _s_attr_change, _s_attr_add, _s_attr_drop, _s_opset, _s_ir_version, _s_graph_io,
    _s_constant, _s_reshape_target, _s_value_info, _s_function, _s_sparse_init,
)  # fmt: skip


# ---- generating a case -------------------------------------------------------------------

@dataclass
class Case:
    index: int
    seed_file: str
    mutations: list[str]
    data: bytes


def seed_files(root: Path = ROOT) -> list[Path]:
    """The valid ONNX files the fuzzer mutates."""
    files = sorted(p for pattern in SEED_GLOBS for p in root.glob(pattern))
    if not files:
        raise SystemExit(f"no seed models found under {root} ({', '.join(SEED_GLOBS)})")
    return files


def make_case(index: int, seed: int, seeds: list[tuple[str, bytes]]) -> Case:
    """Case ``index`` of run ``seed``: a seed model with 1-3 mutations (deterministic)."""
    rng = random.Random(f"{seed}:{index}")
    name, raw = rng.choice(seeds)
    mutations = []
    kind = rng.random()
    data = raw
    if kind >= 0.25:  # structure-aware (sometimes followed by a byte mutation)
        model = onnx.load_model_from_string(raw)
        want = rng.choice((1, 1, 2, 3))
        tries = 0
        while len(mutations) < want and tries < 20:
            tries += 1
            fn = rng.choice(STRUCT_MUTATIONS)
            try:
                mutations.append(fn.__name__[3:] + ": " + " ".join(fn(rng, model).split()))
            except Exception:  # noqa: BLE001 - Skip, or an earlier mutation broke this one's premise
                continue
        data = model.SerializeToString()
    if kind < 0.25 or kind > 0.9:
        buf = bytearray(data)
        others = [r for _, r in seeds]
        for _ in range(rng.choice((1, 1, 2, 3))):
            if not buf:
                break
            fn = rng.choice(BYTE_MUTATIONS)
            mutations.append(fn.__name__[3:] + ": " + fn(rng, buf, others))
        data = bytes(buf)
    return Case(index, name, mutations, data)


# ---- running a case (in a worker process) ------------------------------------------------

class Hang(Exception):
    """The case ran longer than the time limit."""


def _alarm(_signum, _frame):
    raise Hang("timed out")


def check(path: Path, timeout: float = 5.0) -> tuple[str, str, str]:
    """Import, optimize and run one model file.

    Returns
    -------
    (outcome, label, detail)
        outcome ``imported``, ``error`` (a HwflowError; label = its class) or ``crash``
        (label = exception type and where it was raised, detail = the traceback).
    """
    from hwflow.errors import HwflowError
    from hwflow.ir import load_model
    from hwflow.passes import optimize
    from hwflow.ref.float import run_float

    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        graph = optimize(load_model(path))
        t = graph.tensors[graph.inputs[0]]
        if int(np.prod(t.shape, dtype=np.float64)) <= RUN_LIMIT:
            x = np.random.default_rng(0).standard_normal(t.shape).astype(t.dtype)
            run_float(graph, x)
            label = "ran"
        else:
            label = "input too large to run"
        return "imported", label, ""
    except HwflowError as exc:
        return "error", type(exc).__name__, str(exc)
    except Hang:
        return "crash", f"hang > {timeout:g} s", traceback.format_exc()
    except BaseException as exc:  # noqa: BLE001 - everything else is what we are looking for
        return "crash", _where(exc), traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _where(exc: BaseException) -> str:
    """``Type at file:line`` of the innermost hwflow frame (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/hwflow/" in f.filename] or frames
    if not ours:
        return type(exc).__name__
    f = ours[-1]
    rel = f.filename.split("/hwflow/", 1)[-1] if "/hwflow/" in f.filename else Path(f.filename).name
    return f"{type(exc).__name__} at {rel}:{f.lineno}"


def _worker(conn, timeout: float, memory: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    except (ValueError, OSError):
        pass
    import warnings

    warnings.simplefilter("ignore")  # numpy's overflow warnings on mutated weights are not findings
    import hwflow.ir  # noqa: F401 - import once, before the first case
    import hwflow.passes  # noqa: F401
    import hwflow.ref.float  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="hwflow-fuzz-"))
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                break
            path = tmp / "model.onnx"
            path.write_bytes(msg)
            conn.send(check(path, timeout))
    finally:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


class Worker:
    """A worker process with a hard time limit per case; restarted after a hard crash."""

    def __init__(self, timeout: float, memory: int):
        self.timeout, self.memory = timeout, memory
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, self.timeout, self.memory), daemon=True)
        self.proc.start()
        child.close()

    def recover(self) -> tuple[str, str, str]:
        """The worker hung or died on its case: record why, then start a fresh one."""
        self.proc.join(1.0)  # a dying worker closes its pipe a moment before it can be reaped
        alive = self.proc.is_alive()
        self.proc.kill()
        self.proc.join()
        code = self.proc.exitcode
        self._start()
        if alive:  # the in-worker alarm catches Python-level hangs; this is one in C code
            return "crash", "hang (worker stuck in C code)", ""
        return "crash", f"worker died (exit {code})", ""

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# ---- the run -----------------------------------------------------------------------------

@dataclass
class Report:
    cases: int = 0
    imported: int = 0
    ran: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    crashes: collections.Counter = field(default_factory=collections.Counter)
    crash_files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_crashes(self) -> int:
        return sum(self.crashes.values())

    def table(self) -> str:
        rows = [("cases", self.cases), ("imported", self.imported), ("  of which ran in the float reference", self.ran)]
        rows.append(("clean errors (HwflowError)", sum(self.errors.values())))
        rows += [(f"  {k}", v) for k, v in self.errors.most_common()]
        rows.append(("crashes", self.n_crashes))
        rows += [(f"  {k}", v) for k, v in self.crashes.most_common()]
        rows.append(("seconds", f"{self.seconds:.1f}"))
        w = max(len(r[0]) for r in rows)
        return "\n".join(f"{k.ljust(w)}  {v:>7}" for k, v in rows)


def fuzz(cases: int, seed: int = 0, jobs: int = 1, timeout: float = 5.0, crash_dir: Path | None = None,
         memory: int = MEMORY_LIMIT, progress: bool = False, root: Path = ROOT) -> Report:
    """Run ``cases`` fuzz cases; write crashing inputs to ``crash_dir`` (if given)."""
    seeds = [(str(p.relative_to(root)), p.read_bytes()) for p in seed_files(root)]
    report = Report()
    t0 = time.perf_counter()
    workers = [Worker(timeout, memory) for _ in range(max(1, jobs))]
    hard = timeout * 3 + 5  # the in-worker alarm fires at ``timeout``; past this the worker is stuck in C
    try:
        from multiprocessing.connection import wait

        pending = collections.deque(range(cases))
        busy: dict[int, tuple[Worker, Case, float]] = {}  # each worker takes the next case when it answers

        def submit(w: Worker) -> None:
            if pending:
                case = make_case(pending.popleft(), seed, seeds)
                w.conn.send(case.data)
                busy[id(w)] = (w, case, time.monotonic())

        for w in workers:
            submit(w)
        while busy:
            first = min(t for _, _, t in busy.values())
            ready = wait([w.conn for w, _, _ in busy.values()], timeout=max(0.0, first + hard - time.monotonic()))
            for key, (w, case, started) in list(busy.items()):
                if w.conn in ready:
                    try:
                        result = w.conn.recv()
                    except EOFError:  # the worker died
                        result = w.recover()
                elif time.monotonic() - started > hard:
                    result = w.recover()
                else:
                    continue
                del busy[key]
                _record(report, case, result, crash_dir)
                if progress and report.cases % 500 == 0:
                    print(f"  {report.cases} cases, {report.n_crashes} crashes", file=sys.stderr, flush=True)
                submit(w)
    finally:
        for w in workers:
            w.close()
    report.seconds = time.perf_counter() - t0
    return report


def _record(report: Report, case: Case, result: tuple[str, str, str], crash_dir: Path | None) -> None:
    outcome, label, detail = result
    report.cases += 1
    if outcome == "imported":
        report.imported += 1
        report.ran += label == "ran"
    elif outcome == "error":
        report.errors[label] += 1
    else:
        report.crashes[label] += 1
        if crash_dir is not None:
            crash_dir.mkdir(parents=True, exist_ok=True)
            stem = crash_dir / f"{case.index:06d}"
            stem.with_suffix(".onnx").write_bytes(case.data)
            stem.with_suffix(".txt").write_text(
                f"case {case.index} from {case.seed_file}\nmutations:\n"
                + "".join(f"  {m}\n" for m in case.mutations) + f"\n{label}\n{detail}\n"
            )
            report.crash_files.append(stem.with_suffix(".onnx"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000, help="number of cases (default 10000)")
    ap.add_argument("--seed", type=int, default=0, help="run seed (case i of seed s is always the same)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--crash-dir", type=Path, default=Path("fuzz_crashes"), help="where crashing inputs go")
    ap.add_argument("--replay", type=Path, nargs="*", help="run these files once each and print the outcome")
    args = ap.parse_args(argv)
    if args.replay:
        for p in args.replay:
            outcome, label, detail = check(p, args.timeout)
            print(f"{p}: {outcome}: {label}\n{detail}")
        return 0
    report = fuzz(args.cases, args.seed, args.jobs, args.timeout, args.crash_dir, progress=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + (argv if argv is not None else sys.argv[1:]))
    print(f"$ {cmd}")
    print(report.table())
    if report.crash_files:
        print(f"crashing inputs: {args.crash_dir}/ ({len(report.crash_files)} files; replay with --replay FILE)")
    return 1 if report.n_crashes else 0


if __name__ == "__main__":
    sys.exit(main())
