"""Random hand-built QGraphs for the hardware and schedule tests (no quantizer involved).

Every parameter is drawn in its legal range: weights in ``wbits``, multipliers in
``mbits``, shifts chosen so outputs spread over the code range, random zero points and
clamp bounds. ``extreme=True`` pins weights to the range ends.
"""

from __future__ import annotations

import numpy as np

from hwflow.quant.arith import int_range
from hwflow.quant.qgraph import QGraph, QLayer, QTensor
from hwflow.quant.reference import acc_bounds

__all__ = ["GraphBuilder", "random_graph", "digits_cnn", "first_conv", "dwnet", "resblock"]


class GraphBuilder:
    """Build a QGraph layer by layer with random parameters.

    Parameters
    ----------
    seed : int
    scheme : {"pow2", "symmetric", "asymmetric"}
    wbits, abits, mbits : int
    extreme : bool
        Weights at the ends of their range (worst-case accumulators).
    """

    def __init__(self, seed=0, scheme="symmetric", wbits=8, abits=8, mbits=16, extreme=False):
        self.rng = np.random.default_rng(seed)
        self.scheme, self.wbits, self.abits = scheme, wbits, abits
        self.mbits = 1 if scheme == "pow2" else mbits
        self.extreme = extreme
        self.tensors: dict[str, QTensor] = {}
        self.layers: list[QLayer] = []
        self.input = None

    # ---- tensors -----------------------------------------------------------------------------
    def _zp(self, bits):
        if self.scheme != "asymmetric":
            return 0
        lo, hi = int_range(bits)
        return int(self.rng.integers(lo // 2, hi // 2 + 1))

    def tensor(self, name, shape, bits=None, zero_point=None):
        bits = bits or self.abits
        z = self._zp(bits) if zero_point is None else zero_point
        self.tensors[name] = QTensor(name, tuple(shape), bits, 1.0, z)
        return name

    def input_tensor(self, shape, bits=None):
        self.input = self.tensor("x", shape, bits)
        return self.input

    def _new(self, shape, bits=None, zero_point=None):
        return self.tensor(f"t{len(self.layers)}", shape, bits, zero_point)

    # ---- requantization parameters -------------------------------------------------------------
    def _requant(self, layer_kw, ins, out_bits, cout, relu=False, op="conv"):
        tmp = QLayer(name="tmp", inputs=ins, output="tmp", **{**layer_kw, "m": [1], "n": [0], "lo": -1, "hi": 1})
        lo, hi = acc_bounds(tmp, [self.tensors[t] for t in ins])
        mag = max(abs(lo), abs(hi), 1)
        per = cout if op in ("conv", "gemm") else 1
        if self.mbits == 1 or op == "add":
            m = np.ones(per, np.int64)
        else:
            m = self.rng.integers(1 << (self.mbits - 2), 1 << self.mbits, size=per)
        # Typical sums are ~sqrt of the worst case; aim them at the output range.
        if op in ("conv", "gemm"):
            xbits = self.tensors[ins[0]].bits
            w = np.asarray(layer_kw["weight"], dtype=np.float64).reshape(cout, -1)
            typ = 2.5 * np.sqrt((w ** 2).sum(axis=1).max() * (1 << (2 * xbits)) / 12) + 1
        else:
            typ = mag
        n = np.array([max(int(np.ceil(np.log2(typ * mm))) - (out_bits - 1), -2) for mm in m], np.int64)
        n = n + self.rng.integers(-1, 2, size=per)
        olo, ohi = int_range(out_bits)
        if relu:
            olo = 0
        else:
            olo = int(self.rng.integers(olo, olo // 2 + 1))
        ohi = int(self.rng.integers(ohi // 2, ohi + 1))
        return dict(m=m, n=n, lo=olo, hi=ohi, mbits=self.mbits)

    # ---- layers ---------------------------------------------------------------------------------
    def _weights(self, shape, wbits):
        lo, hi = int_range(wbits)
        if self.extreme:
            return self.rng.choice([lo, hi], size=shape)
        return self.rng.integers(lo, hi + 1, size=shape)

    def conv(self, src, cout, k=3, stride=1, pad=1, groups=1, relu=False, wbits=None, bits=None):
        wbits = wbits or self.wbits
        _, cin, h, w = self.tensors[src].shape
        kh, kw = (k, k) if isinstance(k, int) else k
        pads = (pad,) * 4 if isinstance(pad, int) else tuple(pad)
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        oh = (h + pads[0] + pads[2] - kh) // sh + 1
        ow = (w + pads[1] + pads[3] - kw) // sw + 1
        wt = self._weights((cout, cin // groups, kh, kw), wbits)
        zin = self.tensors[src].zero_point
        bias = self.rng.integers(-2000, 2000, size=cout) - zin * wt.reshape(cout, -1).sum(axis=1)
        kw_ = dict(op="conv", weight=wt, bias=bias, wbits=wbits, kernel=(kh, kw), strides=(sh, sw),
                   pads=pads, groups=groups)
        out = self._new((1, cout, oh, ow), bits)
        rq = self._requant(kw_, [src], self.tensors[out].bits, cout, relu)
        self.layers.append(QLayer(name=f"conv{len(self.layers)}", inputs=[src], output=out, **kw_, **rq))
        return out

    def gemm(self, src, cout, relu=False, wbits=None, bits=None):
        wbits = wbits or self.wbits
        cin = int(np.prod(self.tensors[src].shape[1:]))
        wt = self._weights((cout, cin), wbits)
        zin = self.tensors[src].zero_point
        bias = self.rng.integers(-2000, 2000, size=cout) - zin * wt.sum(axis=1)
        kw_ = dict(op="gemm", weight=wt, bias=bias, wbits=wbits)
        out = self._new((1, cout), bits)
        rq = self._requant(kw_, [src], self.tensors[out].bits, cout, relu, op="gemm")
        self.layers.append(QLayer(name=f"gemm{len(self.layers)}", inputs=[src], output=out, **kw_, **rq))
        return out

    def maxpool(self, src, k=2, stride=None, pad=0):
        t = self.tensors[src]
        _, c, h, w = t.shape
        stride = stride or k
        pads = (pad,) * 4 if isinstance(pad, int) else tuple(pad)
        oh = (h + pads[0] + pads[2] - k) // stride + 1
        ow = (w + pads[1] + pads[3] - k) // stride + 1
        out = self._new((1, c, oh, ow), t.bits, t.zero_point)
        lo, hi = t.range
        self.layers.append(QLayer(name=f"maxpool{len(self.layers)}", op="maxpool", inputs=[src], output=out,
                                  kernel=(k, k), strides=(stride, stride), pads=pads, lo=lo, hi=hi))
        return out

    def avgpool(self, src, k=None, stride=None, pad=0, bits=None):
        t = self.tensors[src]
        _, c, h, w = t.shape
        kh, kw = (h, w) if k is None else (k, k)
        sh = sw = stride or (1 if k is None else k)
        pads = (pad,) * 4
        oh = (h + 2 * pad - kh) // sh + 1
        ow = (w + 2 * pad - kw) // sw + 1
        kw_ = dict(op="avgpool", kernel=(kh, kw), strides=(sh, sw), pads=pads,
                   bias=np.array([-kh * kw * t.zero_point]))
        out = self._new((1, c, oh, ow), bits)
        rq = self._requant(kw_, [src], self.tensors[out].bits, c, op="avgpool")
        self.layers.append(QLayer(name=f"avgpool{len(self.layers)}", inputs=[src], output=out, **kw_, **rq))
        return out

    def add(self, a, b, bits=None):
        t = self.tensors[a]
        ma, mb = (int(v) for v in self.rng.integers(1, 1 << 12, size=2))
        kw_ = dict(op="add", add_m=(ma, mb))
        out = self._new(t.shape, bits)
        rq = self._requant(kw_, [a, b], self.tensors[out].bits, 1, op="add")
        self.layers.append(QLayer(name=f"add{len(self.layers)}", inputs=[a, b], output=out, **kw_, **rq))
        return out

    def concat(self, srcs):
        t = self.tensors[srcs[0]]
        for s in srcs[1:]:
            self.tensors[s] = QTensor(s, self.tensors[s].shape, t.bits, t.scale, t.zero_point)
        c = sum(self.tensors[s].shape[1] for s in srcs)
        out = self._new((1, c) + t.shape[2:], t.bits, t.zero_point)
        lo, hi = t.range
        self.layers.append(QLayer(name=f"concat{len(self.layers)}", op="concat", inputs=list(srcs), output=out,
                                  lo=lo, hi=hi))
        return out

    def lut(self, src, bits=None):
        t = self.tensors[src]
        lo, hi = t.range
        out = self._new(t.shape, bits)
        olo, ohi = self.tensors[out].range
        table = np.clip(np.round(np.tanh(np.arange(lo, hi + 1) / (hi / 3)) * ohi), olo, ohi).astype(np.int64)
        self.layers.append(QLayer(name=f"lut{len(self.layers)}", op="lut", inputs=[src], output=out,
                                  m=[1], n=[0], lo=lo, hi=hi, lut=table, lut_zero_point=0, mbits=self.mbits))
        return out

    def build(self, name="test", output=None):
        out = output or self.layers[-1].output
        return QGraph(name, dict(self.tensors), list(self.layers), self.input, out)

    def random_input(self, qg, extreme=False):
        t = qg.tensors[qg.input]
        lo, hi = t.range
        if extreme:
            return self.rng.choice([lo, hi], size=t.shape).astype(np.int64)
        return self.rng.integers(lo, hi + 1, size=t.shape).astype(np.int64)


def digits_cnn(b: GraphBuilder) -> None:
    """The issue's digits CNN on ``b``: Conv 1->8, MaxPool, Conv 8->16, Gemm 256->10."""
    x = b.input_tensor((1, 1, 8, 8))
    h = b.conv(x, 8, relu=True)
    h = b.maxpool(h, 2)
    h = b.conv(h, 16, relu=True)
    b.gemm(h, 10)


def random_graph(seed: int):
    """A random small network (1-3 random ops, maybe a Gemm) and its builder.

    Covers conv with random kernel/stride/asymmetric padding/groups, depthwise, max/avg pool
    with padding, add, LUT and concat, with random scheme, weight and activation widths.
    """
    rng = np.random.default_rng(seed)
    scheme = rng.choice(["pow2", "symmetric", "asymmetric"])
    b = GraphBuilder(seed=seed, scheme=str(scheme), wbits=int(rng.choice([2,3,4,8])), abits=int(rng.choice([4,6,8])))
    c = int(rng.integers(1, 7)); h = int(rng.integers(3, 9)); w = int(rng.integers(3, 9))
    x = b.input_tensor((1, c, h, w))
    t = x
    for i in range(int(rng.integers(1, 4))):
        _, c, h, w = b.tensors[t].shape
        op = rng.choice(["conv", "dw", "maxpool", "avgpool", "add", "lut", "concat"])
        kh, kw = int(rng.integers(1, min(h, 4) + 1)), int(rng.integers(1, min(w, 4) + 1))
        if op == "conv":
            g = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
            cout = g * int(rng.integers(1, 4))
            t = b.conv(t, cout, k=(kh, kw), stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                       pad=tuple(int(v) for v in rng.integers(0, 2, size=4)), groups=g, relu=bool(rng.integers(2)))
            _, _, oh, ow = b.tensors[t].shape
            if oh >= 2 and ow >= 2 and rng.integers(2):  # a MaxPool right after: fusable
                t = b.maxpool(t, k=2, stride=int(rng.integers(1, 3)))
        elif op == "dw":
            t = b.conv(t, c, k=3, pad=1, groups=c)
        elif op == "maxpool" and h >= 2 and w >= 2:
            t = b.maxpool(t, k=2, stride=int(rng.integers(1, 3)), pad=int(rng.integers(0, 2)))
        elif op == "avgpool" and h >= 2 and w >= 2:
            t = b.avgpool(t, k=2, stride=1, pad=int(rng.integers(0, 2)))
        elif op == "add":
            o = b.conv(t, c, k=1, pad=0)
            t = b.add(t, o)
        elif op == "lut":
            t = b.lut(t)
        elif op == "concat":
            o = b.conv(t, int(rng.integers(1, 5)), k=1, pad=0)
            b.tensors[o] = QTensor(o, b.tensors[o].shape, b.tensors[t].bits, 1.0, b.tensors[t].zero_point)
            t = b.concat([t, o])
    if rng.integers(2):
        t = b.gemm(t, int(rng.integers(1, 12)))
    return b, b.build()


def first_conv(cin, k, stride, pad, h=7, w=6):
    """A first convolution (6 channels) and a 2 x 2 MaxPool: small-cin layers stream their input."""
    def build(b):
        x = b.input_tensor((1, cin, h, w))
        t = b.conv(x, 6, k=k, stride=stride, pad=pad, relu=True)
        b.maxpool(t, 2)
    return build


def dwnet(b):
    """Depthwise-separable blocks (16 channels: dense super-groups, several tiles)."""
    x = b.input_tensor((1, 16, 6, 5))
    h = b.conv(x, 16, k=3, pad=1, groups=16, relu=True)
    h = b.conv(h, 16, k=1, pad=0, relu=True)
    h = b.conv(h, 16, k=(3, 2), stride=2, pad=(1, 0, 1, 1), groups=16)
    b.gemm(h, 5)


def resblock(b):
    """A residual block whose output overwrites the maps it consumes (two maps live, not three)."""
    x = b.input_tensor((1, 4, 6, 5))
    s = b.conv(x, 6, relu=True)
    y = b.conv(s, 6, k=(3, 2), pad=(1, 0, 1, 1), relu=True)
    z = b.conv(y, 6, k=(1, 3), pad=(0, 1, 0, 1))
    a = b.add(s, z)
    b.conv(b.maxpool(a, k=2), 5, k=1, pad=0)
