"""QONNX models (Brevitas' ``export_qonnx``): their quantizers met exactly, as integer layers.

A QONNX model is already quantized: ``Quant`` and ``BipolarQuant`` nodes say what every
weight, bias and activation is. :func:`quantize_qonnx` reads them and builds the QGraph
that computes the same integers as qonnx's own executor
(``qonnx.core.onnx_exec.execute_onnx``), the reference for what a QAT model means:

- a ``Quant`` of the graph input is the input type (rounding half to even, as
  ``numpy.round``; ``narrow`` leaves out the lowest code); when its only reader flattens it,
  the input streams as ``(1, F)`` (the user's array keeps its shape: ``input_layout``), so
  the first layer's weights are not padded per pixel. ``Quant``/``BipolarQuant`` of a
  constant are the integer weights and their scale (per tensor or per output channel), a
  Transpose of them the same codes permuted (older Brevitas: ``Quant -> Transpose ->
  MatMul``); a bias ``Quant`` at the accumulator's scale (Brevitas' ``Int32Bias``) is an
  integer bias, any other bias a real offset;
- between a layer (Conv, Gemm, MatMul; or an AveragePool) and the activation quantizer
  after it, the float ops must be per-channel affine (bias, BatchNormalization, Mul/Add
  by a constant) and Relu/Clip. So the quantizer's input is ``R[c]·acc + O[c]`` for the
  layer's integer accumulator ``acc``, and
  ``q = clamp(round_half_even((R[c]·acc + O[c]) / s) + z, lo, hi)`` is met by the contract's
  requantizer with ``rounding="half_even"``: ``m/2**n`` approximates ``R[c]/s`` (exactly
  when it is a short binary fraction: power-of-two scales) and, when ``O[c]`` is not a
  whole accumulator step, the bias carries ``acc_shift`` fractional bits. Channels with
  ``R[c] < 0`` (a negative BatchNorm scale) get their weights negated. Where the ratio is
  not a short binary fraction the requantizer uses a wide multiplier (up to 32 bits):
  the error stays below ``2**-24`` of an output step, far inside the float32 rounding of
  qonnx's own arithmetic;
- ``Trunc`` (Brevitas' TruncAvgPool2d) of a pool's or layer's value at its accumulator
  step: ``round((acc + z) / 2**n)``, clamped, a requantizer with ``m = 1``;
- ``BipolarQuant`` of such a value (sign, 0 -> +1) is an integer threshold per channel:
  ``clamp(acc - T[c], -1, 0)`` and a 2-entry LUT to the codes -1 / +1;
- MaxPool, Flatten and Reshape of quantized tensors are exact on codes; so is a Concat
  of tensors of one type (Brevitas: branches sharing one quantizer);
- an ``Add`` of two quantized tensors (a residual join), then Relu/Clip and its ``Quant``:
  the contract's ``add``, ``(qa - za)·ma + (qb - zb)·mb`` requantized. With equal input
  scales ``ma = mb = 1`` and the multiplier ``m/2**n`` is the scale ratio as for a layer;
  with two scales ``ma/2**n`` and ``mb/2**n`` are the two ratios (``m = 1``), to
  ``2**-24`` of an output step (wide ``add_m``: more DSPs in the back end);
- ``Quant`` of a quantized tensor: nothing when it keeps every code, else a 1 x 1
  AveragePool that requantizes it;
- ``Quant(Tanh(x))``, ``Quant(Sigmoid(x))``, ``Quant(LeakyRelu(x))`` of a quantized ``x``
  (Brevitas: a QuantIdentity before QuantTanh/QuantSigmoid): a table over ``x``'s codes, computed in float32 as qonnx
  does, in the layer that writes ``x`` (or a ``lut`` layer when ``x`` has other readers);
- the model's output, if no quantizer follows the last layer, is the exact integer
  accumulator; the host multiplies it by ``R[c]`` and adds ``O[c]`` (a per-channel host
  tail) unless one scale serves every channel.

Anything else is refused with one line naming the node and why it cannot be met exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import Graph, Node, Tensor
from ..ir.kernels import QONNX_ROUNDING, qonnx_int_range
from ..ir.ops import QONNX_OPS
from ._lower import _input_layout, _window2d, canonical_order, host_tail
from .arith import bits_for_range, int_range
from .host_tail import HostTail
from .qgraph import MAX_BITS, QGraph, QLayer, QTensor

__all__ = ["is_qonnx", "quantize_qonnx", "MAX_MBITS"]

#: Widest requantizer multiplier used where a scale ratio is no short binary fraction.
MAX_MBITS = 32
#: Budget of the requantizer's product ``acc * m`` (the integer reference computes in int64).
_PRODUCT_BITS = 62
#: Fractional bits kept of an offset, in output steps (error < 2**-(this + 1)).
_OFFSET_BITS = 26


def is_qonnx(graph: Graph) -> bool:
    """Whether ``graph`` holds QONNX quantizers (``Quant``, ``BipolarQuant``)."""
    return any(n.op in QONNX_OPS for n in graph.nodes)


@dataclass
class _Weight:
    """A quantized constant: integer codes (zero point 0) and the scale they carry."""

    codes: np.ndarray
    scale: np.ndarray
    bits: int  # signed width holding the codes; 1: binary (codes -1 / +1, the ``binary`` weight format)
    node: str


@dataclass
class _Pending:
    """A float tensor equal to ``R[c] * (acc + beta[c]) + O[c]``, clamped to ``[lo, hi]``
    (real values), where ``acc`` is a layer's integer accumulator (zero points folded)."""

    layer: dict
    weight: np.ndarray | None
    wbits: int
    tin: QTensor
    R: np.ndarray
    beta: np.ndarray
    O: np.ndarray
    lo: float = -math.inf
    hi: float = math.inf
    nodes: list[str] = field(default_factory=list)
    tin2: QTensor | None = None  # an Add's second input: acc = (qa - za) + (sb / sa) * (qb - zb)

    @property
    def channels(self) -> int:
        return len(self.R)

    def affine(self, scale: np.ndarray, shift: np.ndarray, node: Node) -> None:
        """``y -> y * scale + shift`` per channel."""
        if (np.isfinite(self.lo) or np.isfinite(self.hi)) and np.any(scale <= 0):
            raise UnsupportedOpError(f"node {node.name!r} ({node.op}) scales a clamped value by a non-positive "
                                     "factor; hwflow cannot meet it exactly")
        if np.isfinite(self.lo) or np.isfinite(self.hi):
            if scale.size > 1 and np.ptp(scale) or shift.size > 1 and np.ptp(shift):
                raise UnsupportedOpError(f"node {node.name!r} ({node.op}) follows a Relu/Clip with a per-channel "
                                         "factor; hwflow cannot meet it exactly")
            self.lo, self.hi = self.lo * scale[0] + shift[0], self.hi * scale[0] + shift[0]
        self.R, self.O = self.R * scale, self.O * scale + shift
        self.nodes.append(node.name)


def quantize_qonnx(graph: Graph) -> QGraph:
    """The QGraph that computes exactly what the QONNX model ``graph`` computes.

    Parameters
    ----------
    graph : Graph
        An imported QONNX model (:func:`is_qonnx`), optimized or not.

    Raises
    ------
    UnsupportedOpError
        A node whose semantics hwflow cannot meet exactly, named, with why.
    """
    return _Builder(graph).run()


def _scalar(graph: Graph, t: str, node: Node, what: str) -> np.ndarray:
    v = graph.const(t)
    if v is None:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): its {what} must be a constant")
    return np.asarray(v)


def _channel_vector(v: np.ndarray, shape: tuple[int, ...], axis: int, node: Node, what: str) -> np.ndarray:
    """``v`` (broadcast to ``shape``) as one value per index of ``axis``, if it varies only there."""
    full = np.broadcast_to(np.asarray(v, np.float64), shape)
    moved = np.moveaxis(full, axis, 0).reshape(shape[axis], -1)
    if moved.size and np.any(moved != moved[:, :1]):
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): its {what} varies along more than the channels")
    return moved[:, 0].copy() if moved.size else np.zeros(shape[axis])


def _dyadic(r: float, mbits: int, max_shift: int = 62) -> tuple[int, int] | None:
    """``(m, n)`` with ``m / 2**n == r`` exactly and ``m < 2**mbits``, if there is one."""
    for n in range(max_shift + 1):
        v = math.ldexp(r, n)
        if v >= 1 << mbits:
            return None
        if v == int(v):
            return int(v), n
    return None


class _Builder:
    def __init__(self, graph: Graph):
        self.g = graph
        self.tensors: dict[str, QTensor] = {}
        self.layers: list[QLayer] = []
        self.alias: dict[str, str] = {}
        self.weights: dict[str, _Weight] = {}
        self.pending: dict[str, _Pending] = {}
        self.tables: dict[str, tuple[str, Node]] = {}  # Tanh/Sigmoid output -> (its quantized input, node)
        self.input: str | None = None

    def canon(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    # ---- the walk ---------------------------------------------------------------------------
    def run(self) -> QGraph:
        g = self.g
        tail = host_tail(g)
        x, self.layout, skip = _input_layout(g)
        self.graph_input = x
        for node in g.nodes:
            if node.attrs.get("host") or node.name in skip:
                continue
            handler = getattr(self, f"_op_{node.op}", None)
            if handler is None:
                raise UnsupportedOpError(
                    f"node {node.name!r} ({node.op}) is not supported in a QONNX model; hwflow meets exactly "
                    "Quant, BipolarQuant, Trunc, Conv, Gemm, MatMul, a Transpose of quantized weights, "
                    "BatchNormalization, Relu, Clip, MaxPool, "
                    "AveragePool, Flatten, Reshape, per-channel Add/Mul of constants, Add and Concat of quantized "
                    "tensors, and Tanh/Sigmoid/LeakyRelu of a quantized tensor"
                )
            handler(node)
        if self.input is None:
            raise UnsupportedOpError("the QONNX model does not quantize its input; hwflow needs a Quant "
                                     "(Brevitas: QuantIdentity) on the input")
        out, tail = self._output(tail)
        qg = QGraph(g.name, self.tensors, canonical_order(self.layers, self.input), self.input, out, tail,
                    input_layout=self.layout)
        qg.attrs.update(scheme="qonnx", calibration="imported (QONNX)", per_channel=any(
            l.m.size > 1 for l in self.layers), layers={l.name: {"op": l.op} for l in self.layers})
        return qg

    def _quantized(self, t: str, node: Node) -> QTensor:
        t = self.canon(t)
        if t in self.tensors:
            return self.tensors[t]
        if t in self.pending:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op}) reads {t!r}, a layer's output that no Quant follows; hwflow needs "
                "every layer's output quantized (a QuantReLU/QuantIdentity) before the next layer"
            )
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}) reads {t!r}, which is not quantized; "
                                 "hwflow needs quantized (Quant) activations in a QONNX model")

    # ---- quantizers -------------------------------------------------------------------------
    def _op_Quant(self, node: Node) -> None:
        g = self.g
        src = node.inputs[0]
        s = _scalar(g, node.inputs[1], node, "scale").astype(np.float32)
        z = _scalar(g, node.inputs[2], node, "zero point").astype(np.float32)
        bw = float(_scalar(g, node.inputs[3], node, "bit width").reshape(-1)[0])
        signed, narrow = bool(node.attrs.get("signed", 1)), bool(node.attrs.get("narrow", 0))
        mode = str(node.attrs.get("rounding_mode", "ROUND")).upper()
        if bw != int(bw) or bw < 1:
            raise UnsupportedOpError(f"Quant {node.name!r}: bit width {bw:g} is not a whole number of bits")
        bits = int(bw)
        if g.const(src) is not None:  # a weight or a bias
            if np.any(z != 0):
                raise UnsupportedOpError(f"Quant {node.name!r}: weights need zero point 0 (symmetric)")
            w = np.asarray(g.const(src), np.float32)
            if bits == 1 and signed:
                codes = np.where(w / s >= 0, 1, -1)
            else:
                lo, hi = qonnx_int_range(bits, signed, narrow)
                codes = QONNX_ROUNDING[mode](np.clip(w / s, lo, hi)) if mode in QONNX_ROUNDING else None
                if codes is None:
                    raise UnsupportedOpError(f"Quant {node.name!r}: rounding mode {mode!r} is not supported")
            codes = codes.astype(np.int64)
            wbits = 1 if bits == 1 and signed else bits_for_range(min(0, int(codes.min())), max(0, int(codes.max())))
            self.weights[node.outputs[0]] = _Weight(codes, np.broadcast_to(s, w.shape).astype(np.float64), wbits,
                                                    node.name)
            return
        if mode not in ("ROUND", "HALF_EVEN"):
            raise UnsupportedOpError(f"Quant {node.name!r}: activations rounded {mode!r}; hwflow meets ROUND "
                                     "(half to even) exactly")
        if s.size != 1 or z.size != 1:
            raise UnsupportedOpError(f"Quant {node.name!r}: per-channel activation scales are not supported")
        zf = float(z.reshape(-1)[0])
        if zf != int(zf):
            raise UnsupportedOpError(f"Quant {node.name!r}: zero point {zf:g} is not an integer")
        if bits < 2 or bits > 16:
            raise UnsupportedOpError(f"Quant {node.name!r}: {bits}-bit activations; hwflow supports 2..16 bits")
        qlo, qhi = qonnx_int_range(bits, signed, narrow)
        shift = 0 if signed else 1 << (bits - 1)  # hwflow's codes are signed
        out = node.outputs[0]
        src_c = self.canon(src)
        t = QTensor(out, g.shape(src_c if src_c in self.pending else src), bits, float(s.reshape(-1)[0]), int(zf) - shift)
        if src_c == self.graph_input:
            t.rounding, t.narrow = "half_even", narrow
            self.tensors[out] = t
            self.input = out
            return
        qrange = (qlo - shift, qhi - shift)
        if src_c in self.pending:
            p = self.pending.pop(src_c)
            (self._finish_add if p.tin2 is not None else self._finish)(p, t, qrange, node)
            return
        if src_c in self.tables:
            self._table(src_c, t, node)
            return
        if src_c in self.tensors:
            self._requantize(self.tensors[src_c], t, qrange, node)
            return
        raise UnsupportedOpError(
            f"Quant {node.name!r} re-quantizes {src!r}, which no layer computes (a quantized tensor or the input "
            "through other ops); hwflow meets an activation Quant exactly only after a Conv/Gemm/MatMul/AveragePool, "
            "an Add, a Tanh/Sigmoid of a quantized tensor, or on a quantized tensor"
        )

    def _op_Trunc(self, node: Node) -> None:
        """QONNX ``Trunc`` (Brevitas' TruncAvgPool2d) of a layer's value ``R·acc`` whose input
        scale is ``R``: ``round(acc + z)`` is the integer ``acc + z``, so the output code is
        ``round((acc + z) / T)`` (``T`` a power of two), clamped: a requantizer with
        ``m = 1``, ``n = log2(T)``."""
        g = self.g
        if len(node.inputs) != 6:
            raise UnsupportedOpError(f"Trunc {node.name!r} has {len(node.inputs)} inputs; hwflow reads QONNX's Trunc "
                                     "v2 (x, scale, zeropt, in_bitwidth, out_scale, out_bitwidth), as Brevitas 0.13 "
                                     "writes it")
        s, z, out_s = (_scalar(g, node.inputs[i], node, what).astype(np.float32).reshape(-1)
                       for i, what in ((1, "scale"), (2, "zero point"), (4, "output scale")))
        bits = float(_scalar(g, node.inputs[5], node, "output bit width").reshape(-1)[0])
        signed, narrow = bool(node.attrs.get("signed", 1)), bool(node.attrs.get("narrow", 0))
        mode = str(node.attrs.get("rounding_mode", "FLOOR")).upper()
        src = self.canon(node.inputs[0])
        p = self.pending.pop(src, None)
        why = None
        if p is None or p.tin2 is not None:
            why = "reads no layer's output (hwflow meets Trunc after an AveragePool, Conv or Gemm)"
        elif s.size != 1 or z.size != 1 or out_s.size != 1 or bits != int(bits) or not 2 <= bits <= 16:
            why = "needs one scale, zero point and output scale, and a 2..16-bit output"
        elif np.any(p.O) or np.isfinite(p.lo) or np.isfinite(p.hi) or np.any(p.R <= 0) \
                or np.any(np.abs(p.R / float(s[0]) - 1) > 2.0 ** -20):
            why = "has an input scale other than its layer's accumulator step (or an offset or clamp before it)"
        t = float(2 ** np.round(np.log2(out_s[0] / s[0])))
        zt = float(z[0]) / t if why is None else 0.0
        if why is None and (t < 1 or zt != int(zt) or z[0] != int(z[0])):
            why = "divides by less than 1 or leaves a fractional zero point"
        if why is None and mode not in ("ROUND", "HALF_EVEN") and not (t == 1 and mode in QONNX_ROUNDING):
            why = f"rounds {mode!r} after a division; hwflow's requantizer rounds half to even"
        if why:
            raise UnsupportedOpError(f"Trunc {node.name!r} {why}; hwflow cannot meet it exactly")
        bits = int(bits)
        qlo, qhi = qonnx_int_range(bits, signed, narrow)
        shift = 0 if signed else 1 << (bits - 1)
        out = node.outputs[0]
        w, wf = self._weights_for(p, np.zeros(p.channels, bool))
        bias = p.beta + self._fold(p, w) + int(z[0])
        self.tensors[out] = QTensor(out, g.shape(out), bits, float(out_s[0]), int(zt) - shift)
        n = int(round(math.log2(t)))
        self.layers.append(QLayer(**p.layer, output=out, weight=w, bias=bias, m=[1], n=[n], lo=qlo - shift,
                                  hi=qhi - shift, **wf, rounding="half_even",
                                  attrs={"scheme": "qonnx", "nodes": p.nodes + [node.name], "requant": "exact"}))

    def _op_BipolarQuant(self, node: Node) -> None:
        g = self.g
        src = node.inputs[0]
        s = _scalar(g, node.inputs[1], node, "scale").astype(np.float32)
        if g.const(src) is not None:
            w = np.asarray(g.const(src), np.float32)
            self.weights[node.outputs[0]] = _Weight(np.where(w >= 0, 1, -1).astype(np.int64),
                                                    np.broadcast_to(s, w.shape).astype(np.float64), 1, node.name)
            return
        src_c = self.canon(src)
        if src_c not in self.pending or s.size != 1 or float(s.reshape(-1)[0]) <= 0:
            raise UnsupportedOpError(
                f"BipolarQuant {node.name!r}: hwflow meets a binary activation exactly only right after a layer "
                "(Conv/Gemm/MatMul, then BatchNorm/affine ops), with one positive scale"
            )
        out = node.outputs[0]
        self._threshold(self.pending.pop(src_c), QTensor(out, g.shape(src), 2, float(s.reshape(-1)[0]), 0), node)

    # ---- layers -------------------------------------------------------------------------------
    def _weight(self, t: str, node: Node) -> _Weight:
        w = self.weights.get(t)
        if w is None:
            raise UnsupportedOpError(f"node {node.name!r} ({node.op}): its weights {t!r} are not quantized "
                                     "(no Quant/BipolarQuant); hwflow needs every weight quantized in a QONNX model")
        return w

    def _layer(self, node: Node, op: str, w: _Weight, wmat: np.ndarray, scale: np.ndarray, tin: QTensor,
               bias: str | None, geometry: dict) -> None:
        cout = wmat.shape[0]
        s_w = _channel_vector(scale, scale.shape, 0, node, "weight scale")
        R = tin.scale * s_w
        beta, O = np.zeros(cout, np.int64), np.zeros(cout)
        if bias:
            if bias in self.weights:
                b = self.weights[bias]
                codes = b.codes.reshape(-1)
                s_b = np.broadcast_to(b.scale.reshape(-1), (cout,)) if b.scale.size > 1 else np.full(cout, b.scale.flat[0])
                codes = np.broadcast_to(codes, (cout,))
                acc_scale = (np.float32(tin.scale) * s_w.astype(np.float32)).astype(np.float64)
                if np.all(np.abs(s_b - acc_scale) <= 2.0 ** -22 * acc_scale):  # Brevitas' Int32Bias
                    beta = codes.astype(np.int64).copy()
                else:
                    O = s_b * codes
            else:
                c = self.g.const(bias)
                if c is None:
                    raise UnsupportedOpError(f"node {node.name!r} ({node.op}): its bias must be a constant")
                O = np.broadcast_to(np.asarray(c, np.float64).reshape(-1), (cout,)).copy()
        self.pending[node.outputs[0]] = _Pending(
            dict(name=node.name, op=op, inputs=[self.canon(node.inputs[0])], **geometry), wmat, w.bits, tin,
            R, beta, O, nodes=[node.name])
        self._activation(node)

    def _activation(self, node: Node) -> None:
        act = node.attrs.get("activation")
        if act:
            self._clamp(self.pending[node.outputs[0]], act, node)

    def _op_Transpose(self, node: Node) -> None:
        """A Transpose of quantized weights (older Brevitas exports write ``Quant -> Transpose
        -> MatMul`` for a QuantLinear): the codes and their scales, permuted."""
        w = self.weights.get(node.inputs[0])
        if w is None:
            raise UnsupportedOpError(f"node {node.name!r} (Transpose) transposes an activation; in a QONNX model "
                                     "hwflow takes a Transpose only of quantized weights or of the input's layout")
        perm = node.attrs.get("perm") or list(range(w.codes.ndim))[::-1]
        self.weights[node.outputs[0]] = _Weight(np.transpose(w.codes, perm), np.transpose(w.scale, perm), w.bits,
                                                w.node)

    def _op_Conv(self, node: Node) -> None:
        tin = self._quantized(node.inputs[0], node)
        w = self._weight(node.inputs[1], node)
        kernel, strides, pads, _ = _window2d(node, self.g.shape(node.inputs[0]), w.codes.shape[2:])
        geo = dict(kernel=kernel, strides=strides, pads=pads, groups=int(node.attrs.get("group", 1)))
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        self._layer(node, "conv", w, w.codes, w.scale, tin, bias, geo)

    def _op_Gemm(self, node: Node) -> None:
        tin = self._quantized(node.inputs[0], node)
        w = self._weight(node.inputs[1], node)
        a = node.attrs
        if int(a.get("transA", 0)) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            raise UnsupportedOpError(f"node {node.name!r} (Gemm): transA, alpha or beta other than the defaults")
        trans = int(a.get("transB", 0))
        wmat = w.codes if trans else w.codes.T
        scale = w.scale if trans else w.scale.T
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        self._layer(node, "gemm", w, wmat, scale, tin, bias, {})

    def _op_MatMul(self, node: Node) -> None:
        tin = self._quantized(node.inputs[0], node)
        w = self._weight(node.inputs[1], node)
        if w.codes.ndim != 2 or len(self.g.shape(node.inputs[0])) != 2:
            raise UnsupportedOpError(f"node {node.name!r} (MatMul): only (1, F) x (F, K) is supported")
        self._layer(node, "gemm", w, w.codes.T, w.scale.T, tin, None, {})

    def _op_AveragePool(self, node: Node, global_pool: bool = False) -> None:
        tin = self._quantized(node.inputs[0], node)
        shp = self.g.shape(node.inputs[0])
        if global_pool:
            kernel, strides, pads = tuple(shp[2:]), (1, 1), (0, 0, 0, 0)
        else:
            kernel, strides, pads, overhang = _window2d(node, shp, node.attrs["kernel_shape"])
            if any(overhang) or (any(pads) and not int(node.attrs.get("count_include_pad", 0))):
                raise UnsupportedOpError(f"node {node.name!r} (AveragePool): border windows divided by fewer cells")
        k = kernel[0] * kernel[1]
        c = shp[1]
        self.pending[node.outputs[0]] = _Pending(
            dict(name=node.name, op="avgpool", inputs=[self.canon(node.inputs[0])], kernel=kernel, strides=strides,
                 pads=pads), None, 0, tin, np.full(c, tin.scale / k), np.zeros(c, np.int64), np.zeros(c),
            nodes=[node.name])

    def _op_GlobalAveragePool(self, node: Node) -> None:
        self._op_AveragePool(node, global_pool=True)

    def _op_MaxPool(self, node: Node) -> None:
        tin = self._quantized(node.inputs[0], node)
        if int(node.attrs.get("storage_order", 0)) or len(node.outputs) > 1 and node.outputs[1]:
            raise UnsupportedOpError(f"node {node.name!r} (MaxPool): the indices output is not supported")
        kernel, strides, pads, _ = _window2d(node, self.g.shape(node.inputs[0]), node.attrs["kernel_shape"])
        out = node.outputs[0]
        self.tensors[out] = QTensor(out, self.g.shape(out), tin.bits, tin.scale, tin.zero_point)
        lo, hi = tin.range
        self.layers.append(QLayer(node.name, "maxpool", [self.canon(node.inputs[0])], out, lo=lo, hi=hi,
                                  kernel=kernel, strides=strides, pads=pads, attrs={"nodes": [node.name]}))

    # ---- per-channel affine ops and clamps on a layer's float output -----------------------
    def _pending_of(self, node: Node) -> _Pending | None:
        src = self.canon(node.inputs[0])
        p = self.pending.pop(src, None)
        if p is not None:
            self.pending[node.outputs[0]] = p
        return p

    def _need_pending(self, node: Node) -> _Pending:
        p = self._pending_of(node)
        if p is None:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op}) acts on {node.inputs[0]!r}, which is not a layer's output before its "
                "quantizer; hwflow meets it exactly only between a layer and the Quant after it"
            )
        return p

    def _op_BatchNormalization(self, node: Node) -> None:
        p = self._need_pending(node)
        gamma, beta, mean, var = (np.asarray(_scalar(self.g, t, node, "parameters"), np.float64).reshape(-1)
                                  for t in node.inputs[1:5])
        k = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
        p.affine(k, beta - mean * k, node)

    def _affine_const(self, node: Node) -> tuple[_Pending, np.ndarray]:
        a, b = node.inputs
        if self.g.const(a) is not None and node.op in ("Mul", "Add"):
            a, b = b, a
        c = self.g.const(b)
        if c is None:
            raise UnsupportedOpError(f"node {node.name!r} ({node.op}) of two computed tensors in a QONNX model")
        node = Node(node.name, node.op, [a, b], node.outputs, node.attrs)
        p = self._need_pending(node)
        shape = self.g.shape(node.outputs[0])
        vec = _channel_vector(c, shape, 1, node, "constant")
        return p, np.broadcast_to(vec, (p.channels,)).astype(np.float64)

    def _op_Mul(self, node: Node) -> None:
        p, c = self._affine_const(node)
        p.affine(c, np.zeros_like(c), node)

    def _op_Div(self, node: Node) -> None:
        p, c = self._affine_const(node)
        p.affine(1.0 / c, np.zeros_like(c), node)

    def _op_Add(self, node: Node) -> None:
        if all(self.g.const(t) is None for t in node.inputs):
            self._residual_add(node)
            return
        p, c = self._affine_const(node)
        p.affine(np.ones_like(c), c, node)

    def _residual_add(self, node: Node) -> None:
        """``Add`` of two quantized tensors (a residual join): a pending ``add`` layer whose
        real value is ``sa * ((qa - za) + (sb / sa) * (qb - zb))``; its Quant sets ``add_m``."""
        ta, tb = (self._quantized(t, node) for t in node.inputs)
        if ta.shape != tb.shape or ta.shape != tuple(self.g.shape(node.outputs[0])):
            raise UnsupportedOpError(f"node {node.name!r} (Add) broadcasts {ta.shape} and {tb.shape}; hwflow adds "
                                     "tensors of one shape")
        c = ta.shape[1]
        self.pending[node.outputs[0]] = _Pending(
            dict(name=node.name, op="add", inputs=[ta.name, tb.name]), None, 0, ta, np.full(c, ta.scale),
            np.zeros(c, np.int64), np.zeros(c), nodes=[node.name], tin2=tb)

    def _op_Concat(self, node: Node) -> None:
        ins = [self._quantized(t, node) for t in node.inputs]
        axis = int(node.attrs.get("axis", 1))
        if axis not in (1, 1 - len(ins[0].shape)) or len(ins[0].shape) != 4:
            raise UnsupportedOpError(f"node {node.name!r} (Concat) joins along axis {axis}; hwflow joins the "
                                     "channels of NCHW tensors (axis 1)")
        if any((t.bits, t.scale, t.zero_point) != (ins[0].bits, ins[0].scale, ins[0].zero_point) for t in ins):
            raise UnsupportedOpError(
                f"node {node.name!r} (Concat) joins tensors of different scales or zero points "
                f"({', '.join(f'{t.scale:.6g}/{t.zero_point}' for t in ins)}); hwflow joins codes of one type: "
                "quantize every input with one shared quantizer (Brevitas: the same QuantIdentity/QuantReLU)")
        out = node.outputs[0]
        t0 = ins[0]
        self.tensors[out] = QTensor(out, self.g.shape(out), t0.bits, t0.scale, t0.zero_point)
        lo, hi = t0.range
        self.layers.append(QLayer(node.name, "concat", [t.name for t in ins], out, lo=lo, hi=hi,
                                  attrs={"scheme": "qonnx", "nodes": [node.name]}))

    def _op_Tanh(self, node: Node) -> None:
        src = self.canon(node.inputs[0])
        if src in self.pending:
            raise UnsupportedOpError(
                f"node {node.name!r} ({node.op}) reads a layer's output that no Quant follows; hwflow meets a "
                f"{node.op} exactly as a table on codes: quantize its input (Brevitas: a QuantIdentity before the "
                f"Quant{node.op})")
        self._quantized(src, node)
        self.tables[node.outputs[0]] = (src, node)

    _op_Sigmoid = _op_LeakyRelu = _op_Tanh

    def _op_Sub(self, node: Node) -> None:
        p, c = self._affine_const(node)
        p.affine(np.ones_like(c), -c, node)

    def _clamp(self, p: _Pending, act: dict, node: Node) -> None:
        if act["op"] == "Relu":
            lo, hi = 0.0, math.inf
        elif act["op"] == "Clip":
            lo = -math.inf if act.get("min") is None else float(act["min"])
            hi = math.inf if act.get("max") is None else float(act["max"])
        else:
            raise UnsupportedOpError(f"node {node.name!r}: activation {act['op']} on a layer's output before a "
                                     "quantizer; hwflow meets Relu and Clip exactly there, and Tanh/Sigmoid/LeakyRelu "
                                     "as a table on codes: quantize its input (Brevitas: a QuantIdentity before it)")
        p.lo, p.hi = max(p.lo, lo), min(p.hi, hi)
        p.nodes.append(node.name)

    def _op_Relu(self, node: Node) -> None:
        self._clamp(self._need_pending(node), {"op": "Relu"}, node)

    def _op_Clip(self, node: Node) -> None:
        self._clamp(self._need_pending(node), {"op": "Clip", "min": node.attrs.get("min"),
                                               "max": node.attrs.get("max")}, node)

    def _layout_op(self, node: Node) -> None:
        src = self.canon(node.inputs[0])
        ish, osh = self.g.shape(node.inputs[0]), self.g.shape(node.outputs[0])
        if src in self.pending and ish == osh:
            self.pending[node.outputs[0]] = self.pending.pop(src)
            return
        if src in self.pending and len(osh) == 2 and [d for d in ish if d != 1] == [d for d in osh if d != 1]:
            self.alias[node.outputs[0]] = src  # a layer's (N, C, 1, 1) flattened: its Quant types the layer's output
            return
        if src not in self.tensors or not (ish == osh or (len(osh) == 2 and osh[0] == ish[0])):
            raise UnsupportedOpError(f"node {node.name!r} ({node.op}) reshapes {ish} to {osh}; in a QONNX model hwflow "
                                     "supports flattening a quantized tensor to (1, F)")
        if src == self.input == node.inputs[0] and ish != osh and len(self.g.consumers(src)) == 1:
            # The quantized input's only reader flattens it: the input stream is (1, F), as
            # in a float model (_input_layout), so the first layer's weights are not padded
            # to whole words per pixel.
            t = self.tensors[src]
            self.layout = self.layout or {"shape": tuple(self.g.shape(self.graph_input)),
                                          "perm": tuple(range(len(ish)))}
            t.shape = tuple(osh)
        self.alias[node.outputs[0]] = src

    _op_Flatten = _op_Reshape = _op_Identity = _op_Dropout = _layout_op

    # ---- the requantizers -----------------------------------------------------------------------
    def _weights_for(self, p: _Pending, negate: np.ndarray) -> tuple[np.ndarray | None, dict]:
        """The layer's weights (channels with a negative scale negated) and their ``wbits``
        and ``wformat``: binary weights (``BipolarQuant``, 1-bit ``Quant``) stay ``binary``."""
        if p.weight is None:
            return None, {"wbits": 0}
        w = p.weight * np.where(negate, -1, 1).reshape((-1,) + (1,) * (p.weight.ndim - 1))
        if p.wbits == 1:
            return w, {"wbits": 1, "wformat": "binary"}
        return w, {"wbits": max(p.wbits, bits_for_range(min(0, int(w.min())), max(0, int(w.max()))), 2)}

    def _acc_range(self, p: _Pending, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Per channel, the range of ``sum (q_in - z_in) * w`` (of the window sum for a pool)."""
        xlo, xhi = (r - p.tin.zero_point for r in p.tin.range)
        if w is None:
            k = p.layer["kernel"][0] * p.layer["kernel"][1]
            return np.full(p.channels, k * xlo), np.full(p.channels, k * xhi)
        flat = w.reshape(w.shape[0], -1)
        pos, neg = np.where(flat > 0, flat, 0).sum(axis=1), np.where(flat < 0, flat, 0).sum(axis=1)
        return pos * xlo + neg * xhi, pos * xhi + neg * xlo

    def _fold(self, p: _Pending, w: np.ndarray | None) -> np.ndarray:
        """The zero-point fold ``-z_in * sum(w)`` per channel (``-k * z_in`` for a pool)."""
        if w is None:
            return np.full(p.channels, -p.layer["kernel"][0] * p.layer["kernel"][1] * p.tin.zero_point, np.int64)
        return -p.tin.zero_point * w.reshape(w.shape[0], -1).sum(axis=1)

    def _finish(self, p: _Pending, out: QTensor, qrange: tuple[int, int], node: Node) -> None:
        """``Quant`` of a layer's output: the requantizing QLayer."""
        s = out.scale
        rho, offs = p.R / s, p.O / s  # the quantizer's input, in output steps: rho*(acc + beta) + offs
        negate = rho < 0
        w, wf = self._weights_for(p, negate)
        rho, beta = np.abs(rho), np.where(negate, -p.beta, p.beta)
        lo, hi = self._clamp_range(p, out, qrange)
        alo, ahi = self._acc_range(p, w)
        fold = self._fold(p, w)
        exact_offset = np.all(offs == 0)
        zero = rho == 0
        # fractional bits of the offset (in accumulator steps): error < 2**-(_OFFSET_BITS+1) output steps
        f = 0
        if not exact_offset and p.weight is not None:
            f = int(np.clip(max(math.ceil(math.log2(r)) for r in rho[~zero]) + _OFFSET_BITS, 0, 32)) if (~zero).any() else 0
        elif not exact_offset:
            raise UnsupportedOpError(f"node {node.name!r}: an offset after an AveragePool; hwflow cannot meet it exactly")
        scale_f = 1 << f
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(zero, 0.0, offs / np.where(zero, 1.0, rho))
        bias = (beta + fold) * scale_f + np.round(frac * scale_f).astype(np.int64)
        if zero.any():  # a channel whose scale vanished: a constant output, held in the bias
            bias = np.where(zero, np.round(offs).astype(np.int64) * scale_f, bias)
            if w is not None:
                w = np.where(zero.reshape((-1,) + (1,) * (w.ndim - 1)), 0, w)
                wf = {"wbits": max(wf["wbits"], 2)}  # a zero is no binary weight
        vmax = int(max(np.abs(alo).max(), np.abs(ahi).max()) * scale_f + np.abs(bias).max())
        mbits_cap = min(MAX_MBITS, _PRODUCT_BITS - bits_for_range(-vmax, vmax))
        if mbits_cap < 16:
            raise UnsupportedOpError(f"node {node.name!r}: the layer's accumulator is too wide to requantize exactly "
                                     f"in 64 bits ({vmax:,} with {f} fractional bits)")
        m, n = np.ones(p.channels, np.int64), np.full(p.channels, f, np.int64)
        exact = True
        for c in range(p.channels):
            if zero[c]:
                continue
            r = rho[c] / scale_f
            d = _dyadic(float(r), mbits_cap)
            if d is None:
                exact = False
                _, e = math.frexp(r)
                n[c] = min(mbits_cap - e, 62)
                m[c] = round(math.ldexp(r, int(n[c])))
                if m[c] >= 1 << mbits_cap:
                    m[c] >>= 1
                    n[c] -= 1
            else:
                m[c], n[c] = d
        mbits = max(1, int(m.max()).bit_length()) if int(m.max()) > 1 else 1
        self.tensors[out.name] = out
        layer = QLayer(**p.layer, output=out.name, weight=w, bias=bias if (w is not None or p.layer["op"] == "avgpool")
                       else None, m=m, n=n, mbits=mbits, lo=lo, hi=hi, **wf, rounding="half_even",
                       acc_shift=f if w is not None else 0,
                       attrs={"scheme": "qonnx", "nodes": p.nodes + [node.name],
                              "requant": "exact" if exact else f"{mbits}-bit multiplier"})
        self.layers.append(layer)

    def _requantize(self, tin: QTensor, out: QTensor, qrange: tuple[int, int], node: Node) -> None:
        """``Quant`` of an already quantized tensor: nothing if it keeps every code, else a
        requantizing 1 x 1 AveragePool (``acc = q - z``, times ``s_in / s_out``)."""
        if (out.scale, out.zero_point) == (tin.scale, tin.zero_point) and qrange[0] <= tin.range[0] \
                and tin.range[1] <= qrange[1]:
            self.alias[out.name] = tin.name
            return
        if len(tin.shape) != 4:
            raise UnsupportedOpError(f"Quant {node.name!r} re-quantizes the flat tensor {tin.name!r} to another "
                                     "type; hwflow re-quantizes NCHW tensors only")
        c = tin.shape[1]
        p = _Pending(dict(name=node.name, op="avgpool", inputs=[tin.name], kernel=(1, 1), strides=(1, 1),
                          pads=(0, 0, 0, 0)), None, 0, tin, np.full(c, tin.scale), np.zeros(c, np.int64),
                     np.zeros(c), nodes=[])
        self._finish(p, out, qrange, node)

    def _table(self, src: str, out: QTensor, node: Node) -> None:
        """``Quant(Tanh(x))`` (Sigmoid, LeakyRelu) of a quantized ``x``: a table from every code of
        ``x`` to the output code, computed as qonnx computes it (float32). The table joins the
        layer that writes ``x`` when nothing else reads ``x``; else it is a ``lut`` layer."""
        tin_name, act = self.tables.pop(src)
        tin = self.tensors[tin_name]
        lo, hi = tin.range
        q = np.arange(lo, hi + 1)
        x = ((q - tin.zero_point).astype(np.float32) * np.float32(tin.scale)).astype(np.float32)
        if act.op == "Tanh":
            y = np.tanh(x)
        elif act.op == "Sigmoid":
            y = 1 / (1 + np.exp(-x))
        else:  # LeakyRelu
            y = np.where(x >= 0, x, x * np.float32(act.attrs.get("alpha", 0.01)))
        table = self._codes(node, y.astype(np.float32), out)
        self.tensors[out.name] = out
        nodes = [act.name, node.name]
        prod = next((l for l in self.layers if l.output == tin_name), None)
        readers = [n for n in self.g.nodes if any(self.canon(t) == tin_name for t in n.inputs if t)]
        if prod is not None and prod.has_requant and prod.lut is None and len(readers) == 1 \
                and tin_name != self.input and tin_name != self.canon(self.g.outputs[0]):
            prod.output, prod.lut, prod.lut_zero_point = out.name, table[prod.lo - lo:prod.hi - lo + 1], tin.zero_point
            prod.attrs.update(activation=act.op, lut_scale=tin.scale, nodes=prod.attrs["nodes"] + nodes)
            del self.tensors[tin_name]
            return
        self.layers.append(QLayer(act.name, "lut", [tin_name], out.name, m=[1], n=[0], lo=lo, hi=hi, lut=table,
                                  lut_zero_point=0, attrs={"scheme": "qonnx", "nodes": nodes,
                                                           "activation": act.op}))

    def _codes(self, node: Node, y: np.ndarray, out: QTensor) -> np.ndarray:
        """hwflow's codes of ``Quant`` ``node`` applied to float32 ``y``, as qonnx rounds them."""
        g = self.g
        s = np.float32(_scalar(g, node.inputs[1], node, "scale").reshape(-1)[0])
        z = np.float32(_scalar(g, node.inputs[2], node, "zero point").reshape(-1)[0])
        bits = int(float(_scalar(g, node.inputs[3], node, "bit width").reshape(-1)[0]))
        signed, narrow = bool(node.attrs.get("signed", 1)), bool(node.attrs.get("narrow", 0))
        qlo, qhi = qonnx_int_range(bits, signed, narrow)
        v = np.round(np.clip(y / s + z, qlo, qhi)).astype(np.int64)
        return v - (0 if signed else 1 << (bits - 1))

    def _clamp_range(self, p: _Pending, out: QTensor, qrange: tuple[int, int]) -> tuple[int, int]:
        """The code range of ``Quant(clamp(y, p.lo, p.hi))``: quant is monotone, so it commutes with the clamp."""
        lo, hi = qrange
        for bound, pick in ((p.lo, max), (p.hi, min)):
            if np.isfinite(bound):
                v = int(np.clip(np.round(np.float32(bound) / np.float32(out.scale)) + out.zero_point, *qrange))
                lo, hi = (pick(lo, v), hi) if pick is max else (lo, pick(hi, v))
        return lo, max(lo, hi)

    def _finish_add(self, p: _Pending, out: QTensor, qrange: tuple[int, int], node: Node) -> None:
        """``Quant`` of a residual Add: ``q = clamp(round((ma (qa - za) + mb (qb - zb)) * m / 2**n) + z)``.

        Equal input scales (one shared quantizer) give ``ma = mb = 1`` and the requantizer's
        multiplier does the rest, as for a layer. Otherwise ``ma / 2**n`` and ``mb / 2**n`` are
        the two scale ratios themselves (``m = 1``), exact when they are short binary fractions,
        else to ``2**-24`` of an output step, far inside qonnx's float32 noise.
        """
        ta, tb = p.tin, p.tin2
        rho = p.R / out.scale
        if np.any(p.O) or np.any(rho <= 0):
            raise UnsupportedOpError(f"node {node.name!r}: an offset or a non-positive factor between an Add and "
                                     "its Quant; hwflow cannot meet it exactly")
        k = tb.scale / ta.scale
        lo, hi = self._clamp_range(p, out, qrange)
        xa, xb = (max(abs(r - t.zero_point) for r in t.range) for t in (ta, tb))
        exact, note = True, "exact"
        if k == 1 or (1 / k == int(1 / k) and 1 / k < 256) or (k == int(k) and k < 256):
            ma, mb = (1, int(k)) if k >= 1 else (int(1 / k), 1)
            rho = rho / ma
            amax = xa * ma + xb * mb
            mbits_cap = min(MAX_MBITS, _PRODUCT_BITS - bits_for_range(-amax, amax))
            m, n = np.ones(len(rho), np.int64), np.zeros(len(rho), np.int64)
            for c, r in enumerate(rho):
                d = _dyadic(float(r), mbits_cap)
                if d is None:
                    exact = False
                    _, e = math.frexp(r)
                    n[c], m[c] = mbits_cap - e, round(math.ldexp(r, int(mbits_cap - e)))
                else:
                    m[c], n[c] = d
            mbits = max(1, int(m.max()).bit_length())
            if not exact:
                note = f"{mbits}-bit multiplier"
        else:
            if np.ptp(rho):
                raise UnsupportedOpError(f"node {node.name!r}: a per-channel factor after an Add of two scales; "
                                         "hwflow cannot meet it exactly")
            ra, rb = float(rho[0]), float(rho[0]) * k
            # error per output < (xa + xb) * 2**-(n+1) steps: n so that it is < 2**-24
            n0 = max(0, math.ceil(math.log2(xa + xb)) + 24)
            da, db = _dyadic(ra, 40), _dyadic(rb, 40)
            if da and db and max(da[1], db[1]) <= n0:
                n0 = max(da[1], db[1])
            else:
                exact = False
            ma, mb = round(math.ldexp(ra, n0)), round(math.ldexp(rb, n0))
            m, n, mbits = np.ones(1, np.int64), np.full(1, n0, np.int64), 1
            note = "exact" if exact else f"{max(ma, mb).bit_length()}-bit input multipliers"
        self.tensors[out.name] = out
        self.layers.append(QLayer(p.layer["name"], "add", p.layer["inputs"], out.name, m=m, n=n, mbits=mbits,
                                  lo=lo, hi=hi, add_m=(int(ma), int(mb)), rounding="half_even",
                                  attrs={"scheme": "qonnx", "nodes": p.nodes + [node.name], "requant": note}))

    def _threshold(self, p: _Pending, out: QTensor, node: Node) -> None:
        """``BipolarQuant`` of a layer's output: ``acc >= T[c]`` per channel, then -1 / +1."""
        if p.weight is None:
            raise UnsupportedOpError(f"BipolarQuant {node.name!r} after an AveragePool is not supported")
        R = p.R
        negate = R < 0
        w, wf = self._weights_for(p, negate)
        beta = np.where(negate, -p.beta, p.beta)
        zero = R == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(zero, 0.0, -beta - p.O / np.where(zero, 1.0, np.abs(R)))
        T = np.ceil(t).astype(np.int64)  # y >= 0 (-> +1) exactly when acc >= T
        if np.isfinite(p.lo) and p.lo >= 0:  # relu before the sign: always +1
            zero, T = np.ones_like(zero), T
            p.O = np.ones_like(p.O)
        bias = self._fold(p, w) - T
        if zero.any():
            bias = np.where(zero, np.where(p.O >= 0, 0, -1), bias)
            w = np.where(zero.reshape((-1,) + (1,) * (w.ndim - 1)), 0, w)
            wf = {"wbits": max(wf["wbits"], 2)}  # a zero is no binary weight
        self.tensors[out.name] = out
        self.layers.append(QLayer(**p.layer, output=out.name, weight=w, bias=bias, m=[1], n=[0], lo=-1, hi=0,
                                  **wf, lut=np.array([-1, 1]), lut_zero_point=0,
                                  attrs={"scheme": "qonnx", "nodes": p.nodes + [node.name], "requant": "threshold"}))

    # ---- the network's output ------------------------------------------------------------------
    def _output(self, tail: HostTail) -> tuple[str, HostTail]:
        """The QGraph's output tensor and the host tail, with the per-channel scale that
        turns exact integer logits into the model's real output where one is needed."""
        src = self.canon(tail.input)
        if src in self.tensors:
            return src, tail
        p = self.pending.get(src)
        if p is None:
            raise UnsupportedOpError(f"the model's output {tail.input!r} is not computed by a layer")
        w = p.weight
        if w is None:
            raise UnsupportedOpError("the model ends with an AveragePool that no Quant follows; hwflow cannot "
                                     "output its exact value")
        alo, ahi = self._acc_range(p, w)
        bias = p.beta + self._fold(p, w)
        lo, hi = int((alo + p.beta).min()), int((ahi + p.beta).max())
        bits = max(2, bits_for_range(min(lo, 0), max(hi, 0)))
        if bits > MAX_BITS:
            raise UnsupportedOpError(f"the model's output layer {p.layer['name']!r} accumulates {bits} bits; hwflow "
                                     f"outputs at most {MAX_BITS}")
        one_scale = np.all(p.R == p.R[0]) and p.R[0] > 0 and not np.any(p.O) and not (
            np.isfinite(p.lo) or np.isfinite(p.hi))
        name = src if one_scale else f"{src}::int"
        self.tensors[name] = QTensor(name, self.g.shape(src), bits, float(p.R[0]) if one_scale else 1.0, 0)
        self.layers.append(QLayer(**p.layer, output=name, weight=w, bias=bias, m=[1], n=[0], lo=lo, hi=hi,
                                  **self._weights_for(p, np.zeros(p.channels, bool))[1],
                                  attrs={"scheme": "qonnx", "nodes": p.nodes,
                                                                "requant": "exact integer output"}))
        if one_scale:
            return name, tail
        return name, _scaled_tail(tail, src, name, p, self.g.shape(src))


def _scaled_tail(tail: HostTail, src: str, name: str, p: _Pending, shape: tuple[int, ...]) -> HostTail:
    """``tail`` preceded by ``src = clamp(codes * R + O)`` per channel (the model's real output)."""
    g = Graph("host_tail", [name], tail.outputs)
    g.add_tensor(Tensor(name, shape, np.float32))
    vec = (1, -1) + (1,) * (len(shape) - 2)
    t = g.add_const(f"{src}::scale", p.R.astype(np.float32).reshape(vec)).name
    cur = f"{src}::scaled" if np.any(p.O) or np.isfinite(p.lo) or np.isfinite(p.hi) else src
    g.add_tensor(Tensor(cur, shape, np.float32))
    g.add_node(Node(f"{src}::mul", "Mul", [name, t], [cur], {"host": True}))
    if np.any(p.O):
        nxt = f"{src}::offset" if np.isfinite(p.lo) or np.isfinite(p.hi) else src
        o = g.add_const(f"{src}::bias", p.O.astype(np.float32).reshape(vec)).name
        g.add_tensor(Tensor(nxt, shape, np.float32))
        g.add_node(Node(f"{src}::add", "Add", [cur, o], [nxt], {"host": True}))
        cur = nxt
    if np.isfinite(p.lo) or np.isfinite(p.hi):
        g.add_tensor(Tensor(src, shape, np.float32))
        g.add_node(Node(f"{src}::clip", "Clip", [cur], [src], {"host": True,
                   "min": None if not np.isfinite(p.lo) else float(p.lo),
                   "max": None if not np.isfinite(p.hi) else float(p.hi)}))
    for n in tail.graph.nodes:
        for t in n.inputs + n.outputs:
            if t and t not in g.tensors:
                old = tail.graph.tensors[t]
                g.add_tensor(Tensor(t, old.shape, old.dtype, old.data))
        g.add_node(Node(n.name, n.op, list(n.inputs), list(n.outputs), dict(n.attrs)))
    return HostTail(g, tail.logits, tail.label)
