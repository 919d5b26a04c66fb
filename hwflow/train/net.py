"""The training network: hwflow's float plan as a torch module, compile's quantization in the loop.

The network is built from the plan :func:`hwflow.quant._lower.lower` makes of hwflow's
Graph IR, the plan the quantizer turns into QLayers one for one: Conv, Gemm, MaxPool,
AveragePool, Add and Concat, with Relu/Clip fused as clamps and Tanh/Sigmoid/LeakyRelu as
tables; BatchNorm is already folded into the Conv before it. Its quantizers start from
the QGraph that :func:`hwflow.quant.quantize_plan` built on the same plan (the one
``compile`` builds), tensor for tensor:

- every activation tensor (the input and each layer's output) is fake-quantized with its
  scale, zero point and width, clamped to the layer's code range ``[lo, hi]`` (a fused
  Relu/Clip tightens it exactly as the quantizer's ``_clamp_codes`` does); tensors the
  contract makes share a scale (MaxPool's input and output, Concat's) share one quantizer;
- a layer with a table activation is quantized twice, into the table's input code space
  and after the activation into its output, as the integer layer's LUT does;
- weights are fake-quantized per output channel (or per tensor) with the QGraph's scales
  and widths, symmetric, zero point 0.

Weights train in units of their starting quantization step (per output channel), biases
in units of their layer's output scale, so one learning rate suits every layer and width.
Rounding is straight-through (the gradient of ``round`` taken as 1, and 0 where the
clamp cuts). With ``learn=True`` the scales train too, LSQ-style; power-of-two scales
train as log2 values rounded straight-through, so they stay powers of two. Zero points,
widths and the network input's quantizer stay fixed.

What trains here is an approximation of the integer network (float rounding of the
products, the requantizer's ``M / 2**n`` and half-up rounding are not modelled); what
``hwflow finetune`` reports is measured on the integer network itself, rebuilt from
the exported model (:mod:`hwflow.train.loop`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnsupportedOpError
from ..quant._lower import FLayer, Plan
from ..quant.arith import int_range
from ..quant.qgraph import QGraph, QLayer, QTensor
from ..quant.quantize import _clamp_codes, _union_groups

__all__ = ["QuantNet"]

#: Table activations the training network computes.
_TABLES = {
    "Tanh": lambda x, a: torch.tanh(x),
    "Sigmoid": lambda x, a: torch.sigmoid(x),
    "LeakyRelu": lambda x, a: F.leaky_relu(x, float(a.get("alpha", 0.01))),
    "Relu": lambda x, a: torch.relu(x),
    "Clip": lambda x, a: _clip(x, a),
}


def _clip(x: torch.Tensor, act: dict) -> torch.Tensor:
    if act["op"] == "Relu":
        return torch.relu(x)
    return torch.clamp(x, act.get("min"), act.get("max"))


def round_ste(v: torch.Tensor) -> torch.Tensor:
    """``round(v)`` forward, identity backward (straight-through)."""
    return v + (torch.round(v) - v).detach()


def _grad_scale(v: torch.Tensor, g: float) -> torch.Tensor:
    """``v`` forward, its gradient times ``g`` backward (LSQ's step-size gradient scale)."""
    return (v - v * g).detach() + v * g


class _FakeQuant(torch.autograd.Function):
    """``(clamp(round(x/s) + z, lo, hi) - z) * s`` with LSQ's straight-through gradients.

    ``x`` receives the gradient where the code is not clamped; ``s`` (one value, or one
    per channel along axis 0) receives ``round(x/s) - x/s`` there and ``q - z`` where
    the code is clamped. One node instead of a chain of elementwise ones: the
    training step is dominated by these.
    """

    @staticmethod
    def forward(ctx, x, s, z: int, lo: int, hi: int):
        v = x / s
        r = torch.round(v)
        q = torch.clamp(r + z, lo, hi)
        inside = (r + z >= lo) & (r + z <= hi)
        ctx.save_for_backward(inside, torch.where(inside, r - v, q - z))
        ctx.s_shape = s.shape
        return (q - z) * s

    @staticmethod
    def backward(ctx, grad):
        inside, ds = ctx.saved_tensors
        gx = grad * inside
        gs = None
        if ctx.needs_input_grad[1]:
            g = grad * ds
            if ctx.s_shape.numel() == 1:
                gs = g.sum().reshape(ctx.s_shape)
            else:
                gs = g.sum(dim=tuple(range(1, g.dim()))).reshape(ctx.s_shape)
        return gx, gs, None, None, None


def fake_quant(x: torch.Tensor, s: torch.Tensor, z: int, lo: int, hi: int) -> torch.Tensor:
    """Fake quantization with straight-through gradients (``s`` broadcast against ``x``)."""
    return _FakeQuant.apply(x, s, z, lo, hi)


class Scale(nn.Module):
    """A quantization scale (one, or one per channel): fixed, or learned.

    Learned scales follow LSQ: the gradient reaches them through the straight-through
    rounding, scaled by ``grad``. They train as their log2 (Adam's steps are then
    relative, alike for a weight scale of 1e-3 and an activation scale of 10); a
    power-of-two scale's log2 is rounded straight-through, so it stays a power of two.
    """

    def __init__(self, init, learn: bool, pow2: bool, grad: float):
        super().__init__()
        init = np.asarray(init, np.float64).ravel()
        log = np.round(np.log2(init)) if pow2 else np.log2(init)
        value = torch.tensor(log if learn or pow2 else init, dtype=torch.float32)
        self.learn, self.pow2, self.grad = learn, pow2, grad
        if learn:
            self.value = nn.Parameter(value)
        else:
            self.register_buffer("value", value)

    def forward(self) -> torch.Tensor:
        if not self.learn:
            return torch.exp2(self.value) if self.pow2 else self.value
        v = _grad_scale(self.value, self.grad)
        return torch.exp2(round_ste(v) if self.pow2 else v)

    def numpy(self) -> np.ndarray:
        """The current scale(s), float32 values as float64."""
        with torch.no_grad():
            return self().double().numpy()


class ActQuant(nn.Module):
    """Fake quantization of an activation tensor: ``(clamp(round(x/s) + z, lo, hi) - z) * s``."""

    def __init__(self, tensor: QTensor, learn: bool, pow2: bool):
        super().__init__()
        self.bits, self.zero_point = tensor.bits, tensor.zero_point
        features = int(np.prod(tensor.shape[1:]))
        self.scale = Scale([tensor.scale], learn, pow2, 1.0 / math.sqrt(features * int_range(tensor.bits)[1]))

    def qtensor(self, name: str, shape) -> QTensor:
        """The tensor type this quantizer currently stands for."""
        return QTensor(name, shape, self.bits, float(self.scale.numpy()[0]), self.zero_point)

    def forward(self, x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        return fake_quant(x, self.scale(), self.zero_point, lo, hi)


class WeightQuant(nn.Module):
    """Symmetric fake quantization of a weight, one scale per output channel or per tensor."""

    def __init__(self, scale, bits: int, size: int, learn: bool, pow2: bool):
        super().__init__()
        self.bits = bits
        self.scale = Scale(scale, learn, pow2, 1.0 / math.sqrt(size * int_range(bits)[1]))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant(w, self.scale().reshape(-1, *([1] * (w.dim() - 1))), 0, *int_range(self.bits))

    def codes(self, w: torch.Tensor) -> np.ndarray:
        """The integer codes of ``w``."""
        with torch.no_grad():
            s = self.scale().reshape(-1, *([1] * (w.dim() - 1)))
            lo, hi = int_range(self.bits)
            return torch.clamp(torch.round(w / s), lo, hi).double().numpy().astype(np.int64)


def _table(act: dict):
    fn = _TABLES.get(act["op"])
    if fn is None:
        raise UnsupportedOpError(f"activation {act['op']!r} cannot be fine-tuned; "
                                 f"supported: {', '.join(_TABLES)}")
    return lambda x: fn(x, act)


def _torch_pads(pads) -> tuple[int, int, int, int]:
    """hwflow's ``(top, left, bottom, right)`` as ``F.pad``'s ``(left, right, top, bottom)``."""
    top, left, bottom, right = pads
    return left, right, top, bottom


class QuantNet(nn.Module):
    """The plan as a torch module, fake-quantized as ``qg`` (its QGraph) says.

    Parameters
    ----------
    plan : Plan
        The float plan (weights as the quantizer left them: after equalization).
    qg : QGraph
        :func:`~hwflow.quant.quantize_plan` of ``plan``: one QLayer per plan layer.
    learn : bool
        Train the scales (LSQ) as well as the weights and biases.

    Attributes
    ----------
    quantize : bool
        Fake-quantize (default); False computes the float plan.
    """

    def __init__(self, plan: Plan, qg: QGraph, learn: bool = False):
        super().__init__()
        if [l.name for l in plan.layers] != [l.name for l in qg.layers]:
            raise ValueError("the QGraph's layers are not the plan's")
        self.plan, self.qg, self.quantize = plan, qg, True
        pow2 = qg.attrs.get("scheme") == "pow2"
        for fl in plan.layers:
            if fl.lut is not None:
                _table(fl.lut)
        groups = _union_groups(plan)
        self.acts = nn.ModuleDict()
        self._act: dict[str, str] = {}
        for t in [plan.input] + [l.output for l in plan.layers]:
            key = f"t{len(self.acts)}"
            if groups[t] in self._act:
                self._act[t] = self._act[groups[t]]
                continue
            # the input keeps the range of the data (it is quantized on the host)
            self.acts[key] = ActQuant(qg.tensors[t], learn and t != plan.input, pow2)
            self._act[t] = self._act[groups[t]] = key
        self.pre = nn.ModuleDict()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.wquant = nn.ModuleList()
        self._param: dict[int, int] = {}
        self._units: list[tuple[torch.Tensor, torch.Tensor]] = []
        for i, (fl, ql) in enumerate(zip(plan.layers, qg.layers)):
            if fl.lut is not None and fl.op != "lut":
                space = QTensor(f"{fl.output}::pre", qg.tensors[fl.output].shape, qg.tensors[fl.output].bits,
                                float(ql.attrs["lut_scale"]), ql.lut_zero_point)
                self.pre[f"l{i}"] = ActQuant(space, learn, pow2)
            if fl.has_weight:
                # trained in units of their starting quantization step (per channel) and of the
                # output's scale, so one learning rate suits every layer and width
                s0 = np.broadcast_to(np.asarray(ql.attrs["w_scale"], np.float64), (ql.out_channels,))
                unit = (s0.reshape(-1, *([1] * (fl.weight.ndim - 1))), float(qg.tensors[fl.output].scale))
                self._param[i] = len(self.weights)
                self._units.append(tuple(torch.tensor(u, dtype=torch.float32) for u in unit))
                self.weights.append(nn.Parameter(torch.tensor(fl.weight / unit[0], dtype=torch.float32)))
                self.biases.append(nn.Parameter(torch.tensor(fl.bias / unit[1], dtype=torch.float32)))
                self.wquant.append(WeightQuant(ql.attrs["w_scale"], ql.wbits, int(fl.weight.size), learn, pow2))

    def act(self, tensor: str) -> ActQuant:
        """The quantizer of a plan tensor."""
        return self.acts[self._act[tensor]]

    def start_from_codes(self) -> None:
        """Set each weight to its QGraph codes times their scale and each bias to the QGraph's
        (bias correction included): the network starts as the post-training quantization."""
        with torch.no_grad():
            for i, j in self._param.items():
                ql = self.qg.layers[i]
                s_w = np.broadcast_to(np.asarray(ql.attrs["w_scale"], np.float64), (ql.out_channels,))
                tin = self.qg.tensors[ql.inputs[0]]
                fold = tin.zero_point * ql.weight.reshape(ql.out_channels, -1).sum(axis=1)
                self.weights[j].copy_(torch.tensor(ql.weight, dtype=torch.float32))  # unit: the codes' scale
                bias = (ql.bias + fold) * tin.scale * s_w / self._units[j][1].item()
                self.biases[j].copy_(torch.tensor(bias, dtype=torch.float32))

    def layer_params(self, i: int) -> tuple[torch.Tensor, torch.Tensor, WeightQuant]:
        """``(weight, bias, weight quantizer)`` of plan layer ``i`` (a Conv or Gemm)."""
        j = self._param[i]
        w_unit, b_unit = self._units[j]
        return self.weights[j] * w_unit, self.biases[j] * b_unit, self.wquant[j]

    def space(self, i: int) -> ActQuant:
        """The quantizer of the code space layer ``i``'s requantizer writes."""
        fl = self.plan.layers[i]
        return self.pre[f"l{i}"] if fl.lut is not None and fl.op != "lut" else self.act(fl.output)

    def bounds(self, i: int) -> tuple[int, int]:
        """``(lo, hi)`` of layer ``i``'s requantized code, for the current scale."""
        fl = self.plan.layers[i]
        q = self.space(i)
        if not q.scale.learn:
            ql = self.qg.layers[i]
            return ql.lo, ql.hi
        return _clamp_codes(fl, q.qtensor(fl.output, self.qg.tensors[fl.output].shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` of a batch of inputs (the plan's output, flattened)."""
        plan = self.plan
        tin = self.qg.tensors[plan.input]
        if plan.input_layout is not None:  # the user's layout (e.g. NHWC from Keras), as Plan.to_input
            x = x.reshape(len(x), *plan.input_layout["shape"][1:]).permute(*plan.input_layout["perm"])
        x = x.reshape(len(x), *plan.shapes[plan.input][1:])
        env = {plan.input: self.act(plan.input)(x, *tin.range) if self.quantize else x}
        for i, fl in enumerate(plan.layers):
            env[fl.output] = self._layer(i, fl, [env[t] for t in fl.inputs])
        return env[plan.output].flatten(1)

    def _layer(self, i: int, fl: FLayer, ins: list[torch.Tensor]) -> torch.Tensor:
        if fl.op == "maxpool":  # exact on codes: no requantization
            x = F.pad(ins[0], _torch_pads(fl.pads), value=float("-inf"))
            return F.max_pool2d(x, fl.kernel, fl.strides)
        if fl.op == "concat":
            return torch.cat(ins, dim=1)
        if fl.op == "conv":
            w, b, wq = self.layer_params(i)
            x = F.pad(ins[0], _torch_pads(fl.pads))  # real zero (the integer layer inserts z_in)
            y = F.conv2d(x, wq(w) if self.quantize else w, b, stride=fl.strides, groups=fl.groups)
        elif fl.op == "gemm":
            w, b, wq = self.layer_params(i)
            y = F.linear(ins[0].flatten(1), wq(w) if self.quantize else w, b)
        elif fl.op == "avgpool":  # padded cells count, as the integer layer's sum does
            y = F.avg_pool2d(F.pad(ins[0], _torch_pads(fl.pads)), fl.kernel, fl.strides)
        elif fl.op == "add":
            y = ins[0] + ins[1]
        elif fl.op == "lut":
            y = ins[0]
        else:
            raise UnsupportedOpError(f"layer {fl.name!r}: op {fl.op!r} cannot be fine-tuned")
        if fl.clamp is not None:
            y = _clip(y, fl.clamp)
        table = _table(fl.lut) if fl.lut is not None else None
        if not self.quantize:
            return table(y) if table is not None else y
        out = self.qg.tensors[fl.output]
        if fl.op == "lut":  # a table on codes already in their space
            return self.act(fl.output)(table(y), *out.range)
        y = self.space(i)(y, *self.bounds(i))
        if table is not None:
            y = self.act(fl.output)(table(y), *out.range)
        return y

    def qlayer(self, i: int) -> QLayer:
        """Plan layer ``i``'s QLayer in the starting QGraph (widths, zero points)."""
        return self.qg.layers[i]
