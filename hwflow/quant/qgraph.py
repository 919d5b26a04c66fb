"""The quantized graph: every tensor an integer type with a scale; every layer integer-only.

This is the hand-off between the quantizer (which builds it), the integer reference
(which defines what it computes) and the scheduler/RTL (which must compute the same,
bit for bit). The arithmetic is the integer contract of DESIGN.md:

- real value ``r = scale * (q - zero_point)``; activation codes are signed ``bits`` wide;
- Conv/Gemm: ``acc[c] = bias[c] + sum(q_in * w[c])`` where ``bias`` already holds the
  zero-point fold ``- z_in * sum(w[c])``, and spatial padding inserts ``z_in``;
- AvgPool: ``acc = bias + sum(q_in over the window)`` with padding inserting ``z_in`` and
  ``bias = -k * z_in`` (``k`` the window size); division is folded into ``m``/``n``;
- Add: ``acc = (qa - za) * ma + (qb - zb) * mb``, then requantized with ``m = 1``;
- every such layer then requantizes:
  ``q = clamp(rshift_round(acc * m[c], n[c]) + z_out, lo, hi)``; fused ReLU/ReLU6/Clip
  only tighten ``lo``/``hi``;
- a layer may end with ``lut``: ``q_final = lut[q - lo]`` (Tanh, Sigmoid, LeakyReLU);
  the LUT is indexed by the clamped code, which has its own scale and zero point
  (``lut_zero_point`` replaces ``z_out`` in the requantizer);
- MaxPool takes the max over the window (padding never wins: it inserts the minimum
  code); Concat joins channels of inputs that share the output's scale and zero point.

Weight formats (``QLayer.wformat``, :mod:`hwflow.quant.wformat`): ``weight`` always holds
the integer values the MAC multiplies by, so the arithmetic above is the same for every
format; the format restricts the values and says how each is stored in ``wbits`` bits:

- ``int``: any ``wbits``-bit two's-complement value (``wbits`` 2..16);
- ``pot``: 0 or ``±2**k``, ``k = 0 .. 2**(wbits-1) - 2``: a sign bit, an exponent field of
  ``wbits - 1`` bits whose 0 is the zero code (``wbits`` 3..5; pot4 values reach ±64).
  The real weight is ``±2**k * scale[c]``: the scale (per channel or per layer) places
  the exponent window;
- ``binary``: ``±1`` (``wbits`` 1, code 1 is +1); ``ternary``: ``-1, 0, +1`` (``wbits`` 2).

An ordinary MAC lane takes the value as a signed integer of :attr:`QLayer.mul_wbits` bits
(8 for pot4, 2 for binary and ternary); ``wbits`` is the width of the stored code.

Binary activations: a tensor of ``bits == 1`` is bipolar: its codes are ``-1`` and ``+1``
(zero point 0; real value ``±scale``), and only a threshold layer writes it. That is an
ordinary requantizing layer with ``m = 1``, ``n = 0`` and a two-entry LUT ``[-1, +1]`` over
``hi = lo + 1``, so its output is ``+1`` exactly when ``acc + lut_zero_point >= hi``
(:attr:`QLayer.is_threshold`). The quantizer writes ``lo = -1``, ``hi = 0``,
``lut_zero_point = 0`` (``+1`` iff ``acc >= 0``), the per-channel integer threshold of a
BatchNorm followed by a sign (FINN's MultiThreshold with one step) being folded into the
bias: ``+1`` iff ``sum(q_in * w[c]) >= -bias[c]`` (:meth:`QLayer.thresholds`). A standalone
``lut`` threshold compares its input code with the input's zero point ``z``
(``lo = z - 1``, ``hi = z``; or one code higher with ``lut_zero_point = 1`` when ``z`` is
the lowest code). Padding inserts ``z_in = 0`` (not a bipolar code) and MaxPool
pads with ``-1``. Today's MAC array multiplies the codes as 2-bit integers; an
XNOR-popcount lane would store ``(q + 1) / 2``.

Tensors are NCHW (``(1, C, H, W)``) or ``(1, F)``. Flatten/Reshape are not layers: a
Gemm may read a 4-D tensor, which it sees flattened in NCHW order, as ONNX does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arith import int_range
from .wformat import WeightFormat, wbits_problem

__all__ = ["QTensor", "QLayer", "QGraph", "LAYER_OPS"]

#: Layer kinds the integer reference (and, layer by layer, the hardware) understands.
LAYER_OPS = ("conv", "gemm", "maxpool", "avgpool", "add", "concat", "lut")

_REQUANT_OPS = ("conv", "gemm", "avgpool", "add", "lut")


@dataclass
class QTensor:
    """An integer activation tensor.

    Parameters
    ----------
    name : str
    shape : tuple of int
        ``(1, C, H, W)`` or ``(1, F)``.
    bits : int
        Signed code width, 2..16; or 1: bipolar codes ``-1``/``+1`` (zero point 0).
    scale : float
        Real value of one code step.
    zero_point : int
        Code of real zero (0 for symmetric and power-of-2 schemes).
    """

    name: str
    shape: tuple[int, ...]
    bits: int
    scale: float
    zero_point: int = 0

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        if not isinstance(self.bits, (int, np.integer)) or not 1 <= self.bits <= 16:
            raise ValueError(f"tensor {self.name!r}: bits must be in 1..16, not {self.bits!r}")
        if self.bits == 1 and self.zero_point != 0:
            raise ValueError(f"tensor {self.name!r}: a bipolar (1-bit) tensor has zero point 0, not {self.zero_point!r}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"tensor {self.name!r}: scale must be finite and > 0, not {self.scale!r}")
        lo, hi = self.range
        if not lo <= self.zero_point <= hi:
            raise ValueError(
                f"tensor {self.name!r}: zero point {self.zero_point!r} outside [{lo}, {hi}]"
            )
        self.bits = int(self.bits)
        self.zero_point = int(self.zero_point)

    @property
    def range(self) -> tuple[int, int]:
        """The representable code range ``(lo, hi)`` (``(-1, 1)`` for bipolar, without 0)."""
        return (-1, 1) if self.bits == 1 else int_range(self.bits)

    @property
    def value_bits(self) -> int:
        """Signed width that holds every code (2 for bipolar): the width the activation
        memory and an ordinary MAC lane give it."""
        return max(self.bits, 2)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float to codes (host side): round half away from zero, add zero point, clamp;
        bipolar: ``+1`` for ``x >= 0``, else ``-1``."""
        x = np.asarray(x, dtype=np.float64) / self.scale
        if self.bits == 1:
            return np.where(x >= 0, 1, -1).astype(np.int64)
        q = np.sign(x) * np.floor(np.abs(x) + 0.5) + self.zero_point
        return np.clip(q, *self.range).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Codes to float (host side)."""
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


@dataclass
class QLayer:
    """One integer layer.

    Parameters
    ----------
    name : str
        Name of the float node(s) it came from (for reports and ``--bits``).
    op : str
        One of :data:`LAYER_OPS`.
    inputs : list of str
        Input tensor names (two for ``add``, two or more for ``concat``).
    output : str
        Output tensor name.
    weight : numpy.ndarray of int64, optional
        Conv: ``(Cout, Cin/groups, kh, kw)``; Gemm: ``(Cout, Cin)``.
    bias : numpy.ndarray of int64, optional
        ``(Cout,)``, zero-point fold included; fits int32.
    m, n : numpy.ndarray of int64
        Per-output-channel multiplier and shift (length 1 for per-tensor; ``m`` is all
        ones for power-of-2). For ``add``, ``m``/``n`` are the common ``[1]``/``[n]``.
    lo, hi : int
        Clamp bounds of the requantized code (activation fused).
    wbits : int
        Width of a stored weight code (0 for layers without weights); see ``wformat``.
    wformat : str
        Weight format, one of :data:`hwflow.quant.wformat.WEIGHT_FORMATS`: which integer
        values ``weight`` may hold (``int``: any ``wbits``-bit value; ``pot``, ``binary``,
        ``ternary``: see the module docstring).
    kernel, strides, pads, groups :
        Window geometry; ``pads`` is ``(top, left, bottom, right)``.
    add_m : tuple of int
        ``(ma, mb)`` input multipliers for ``add``.
    lut : numpy.ndarray of int64, optional
        ``hi - lo + 1`` output codes indexed by ``q - lo``.
    lut_zero_point : int
        With ``lut``, the zero point the requantizer adds in place of the output's
        (the LUT's input code space has its own scale and zero point).
    mbits : int
        Width of the unsigned multiplier ``m`` in hardware (1 for power-of-2).
    attrs : dict
        Free-form notes (scheme, source nodes, fused activation name).
    """

    name: str
    op: str
    inputs: list[str]
    output: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    m: np.ndarray = field(default_factory=lambda: np.ones(1, np.int64))
    n: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    lo: int = -128
    hi: int = 127
    wbits: int = 0
    wformat: str = "int"
    mbits: int = 1
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    add_m: tuple[int, int] = (1, 1)
    lut: np.ndarray | None = None
    lut_zero_point: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in LAYER_OPS:
            raise ValueError(f"layer {self.name!r}: op must be one of {LAYER_OPS!r}, not {self.op!r}")
        self.inputs = list(self.inputs)
        want = {"add": 2, "concat": None}.get(self.op, 1)
        if want is not None and len(self.inputs) != want:
            raise ValueError(f"layer {self.name!r} ({self.op}) needs {want} inputs, not {self.inputs!r}")
        if self.op in ("conv", "gemm"):
            if self.weight is None or self.bias is None:
                raise ValueError(f"layer {self.name!r} ({self.op}) needs weight and bias")
            self.weight = np.asarray(self.weight, dtype=np.int64)
            self.bias = np.asarray(self.bias, dtype=np.int64)
            why = wbits_problem(self.wformat, self.wbits)
            if why:
                raise ValueError(f"layer {self.name!r}: {why}")
            fmt = self.weight_format
            if self.wformat == "int":
                wlo, whi = int_range(self.wbits)
                if self.weight.min(initial=0) < wlo or self.weight.max(initial=0) > whi:
                    raise ValueError(f"layer {self.name!r}: weights exceed {self.wbits}-bit range")
            elif not fmt.contains(self.weight):
                raise ValueError(f"layer {self.name!r}: weights are not all {self.wformat}{self.wbits} values "
                                 f"{fmt.levels.tolist()!r}")
            if self.bias.shape != (self.weight.shape[0],):
                raise ValueError(f"layer {self.name!r}: bias shape {self.bias.shape!r} != ({self.weight.shape[0]},)")
            blo, bhi = int_range(32)
            if self.bias.min(initial=0) < blo or self.bias.max(initial=0) > bhi:
                raise ValueError(f"layer {self.name!r}: bias exceeds int32")
        elif self.bias is not None:
            self.bias = np.asarray(self.bias, dtype=np.int64)
        self.m = np.atleast_1d(np.asarray(self.m, dtype=np.int64))
        self.n = np.atleast_1d(np.asarray(self.n, dtype=np.int64))
        if self.m.shape != self.n.shape:
            raise ValueError(f"layer {self.name!r}: m {self.m.shape!r} and n {self.n.shape!r} differ in shape")
        if (self.m < 0).any() or self.m.max() >= (1 << max(self.mbits, 1)):
            raise ValueError(f"layer {self.name!r}: m must be unsigned {self.mbits}-bit, got {self.m!r}")
        if self.lo > self.hi:
            raise ValueError(f"layer {self.name!r}: lo {self.lo!r} > hi {self.hi!r}")
        if self.lut is not None:
            self.lut = np.asarray(self.lut, dtype=np.int64)
            if self.lut.shape != (self.hi - self.lo + 1,):
                raise ValueError(
                    f"layer {self.name!r}: lut needs {self.hi - self.lo + 1} entries, has {self.lut.shape!r}"
                )
        self.kernel = tuple(int(k) for k in self.kernel)
        self.strides = tuple(int(s) for s in self.strides)
        self.pads = tuple(int(p) for p in self.pads)

    @property
    def has_requant(self) -> bool:
        """Whether the layer ends in the requantizer (everything but maxpool and concat)."""
        return self.op in _REQUANT_OPS

    @property
    def weight_format(self) -> WeightFormat | None:
        """The :class:`~hwflow.quant.wformat.WeightFormat` of the weights (None without)."""
        return WeightFormat(self.wformat, self.wbits) if self.weight is not None else None

    @property
    def mul_wbits(self) -> int:
        """Signed width of the weight values: what an ordinary MAC lane multiplies by
        (``wbits`` for ``int``, 8 for pot4, 2 for binary/ternary; 0 without weights)."""
        return self.weight_format.value_bits if self.weight is not None else 0

    @property
    def is_threshold(self) -> bool:
        """Whether the layer ends in a threshold: ``m = 1``, ``n = 0`` and the LUT ``[-1, +1]``
        over two codes, so it writes bipolar codes, ``+1`` iff ``acc + lut_zero_point >= hi``."""
        return (self.lut is not None and self.lut.tolist() == [-1, 1] and bool((self.m == 1).all())
                and bool((self.n == 0).all()))

    def thresholds(self) -> np.ndarray:
        """Per output channel, the integer ``T[c]`` of a threshold Conv/Gemm: the output is
        ``+1`` iff ``sum(q_in * w[c]) >= T[c]`` (bias, zero-point fold and LUT offset included).

        Raises
        ------
        ValueError
            If the layer is not a threshold Conv/Gemm.
        """
        if not self.is_threshold or self.bias is None or self.weight is None:
            raise ValueError(f"layer {self.name!r} ({self.op}) is not a threshold Conv/Gemm")
        return self.hi - self.lut_zero_point - self.bias

    @property
    def out_channels(self) -> int:
        """Output channels (rows of the weight for Conv/Gemm)."""
        return int(self.weight.shape[0]) if self.weight is not None else 0

    def channel_params(self, c: int) -> tuple[int, int]:
        """``(m, n)`` of output channel ``c`` (per-tensor layers broadcast)."""
        i = c if self.m.shape[0] > 1 else 0
        return int(self.m[i]), int(self.n[i])


@dataclass
class QGraph:
    """An integer network: tensors with types and scales, layers in execution order.

    Parameters
    ----------
    name : str
    tensors : dict of str to QTensor
    layers : list of QLayer
        In a valid execution order.
    input, output : str
        The network's single input and output tensors.
    host_tail : list of str
        Ops left to the host after ``output`` (e.g. ``["Softmax"]``).
    """

    name: str
    tensors: dict[str, QTensor]
    layers: list[QLayer]
    input: str
    output: str
    host_tail: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.verify()

    def verify(self) -> None:
        """Check that every layer reads defined tensors and the output is produced.

        Raises
        ------
        ValueError
            Naming the layer and tensor at fault.
        """
        defined = {self.input}
        if self.input not in self.tensors:
            raise ValueError(f"input tensor {self.input!r} is not declared")
        for layer in self.layers:
            for t in layer.inputs:
                if t not in defined:
                    raise ValueError(f"layer {layer.name!r} reads {t!r} before it is produced")
            if layer.output not in self.tensors:
                raise ValueError(f"layer {layer.name!r} writes undeclared tensor {layer.output!r}")
            if layer.output in defined:
                raise ValueError(f"tensor {layer.output!r} is written twice")
            defined.add(layer.output)
        if self.output not in defined:
            raise ValueError(f"output tensor {self.output!r} is never produced")

    def layer(self, name: str) -> QLayer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]!r}")

    def weight_bits(self) -> int:
        """Total bits of weight storage (``wbits`` per weight: the stored codes)."""
        return sum(int(l.weight.size) * l.wbits for l in self.layers if l.weight is not None)
