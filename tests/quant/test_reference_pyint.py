"""The integer reference against a plain Python-int model of the contract (loops, no numpy).

Python ints never overflow and ``>>`` on them is an arithmetic (floor) shift, so this
model is the contract written out literally; the numpy reference must agree exactly.
"""

import itertools
import random

import numpy as np
import pytest

from hwflow.quant.arith import int_range, requantize, rshift_round
from hwflow.quant.qgraph import QGraph, QLayer, QTensor
from hwflow.quant.reference import acc_bounds, run_int, run_layer


# -- the literal model ---------------------------------------------------------------
def py_rshift_round(v: int, n: int) -> int:
    if n > 0:
        return (v + (1 << (n - 1))) >> n
    return v << -n


def py_requant(acc: int, m: int, n: int, z: int, lo: int, hi: int) -> int:
    return min(max(py_rshift_round(acc * m, n) + z, lo), hi)


def py_layer(layer: QLayer, ins, tins, tout):
    """Run ``layer`` on nested Python lists of ints; returns a flat list in C order."""
    x = ins[0]
    if layer.op in ("conv", "maxpool", "avgpool"):
        _, c, h, w = tins[0].shape
        kh, kw = layer.kernel
        sh, sw = layer.strides
        top, left, bottom, right = layer.pads
        oh = (h + top + bottom - kh) // sh + 1
        ow = (w + left + right - kw) // sw + 1
        pad = tins[0].range[0] if layer.op == "maxpool" else tins[0].zero_point

        def at(ci, y, xx):
            y, xx = y - top, xx - left
            return x[ci][y][xx] if 0 <= y < h and 0 <= xx < w else pad

    out = []
    if layer.op == "conv":
        cout = layer.weight.shape[0]
        cin_g = layer.weight.shape[1]
        per_group = cout // layer.groups
        for oc in range(cout):
            g = oc // per_group
            m, n = layer.channel_params(oc)
            for oy in range(oh):
                for ox in range(ow):
                    acc = int(layer.bias[oc])
                    for ic in range(cin_g):
                        for ky in range(kh):
                            for kx in range(kw):
                                acc += at(g * cin_g + ic, oy * sh + ky, ox * sw + kx) * int(layer.weight[oc, ic, ky, kx])
                    out.append(acc)
    elif layer.op == "gemm":
        flat = list(_flatten(x))
        for oc in range(layer.weight.shape[0]):
            acc = int(layer.bias[oc])
            for i, v in enumerate(flat):
                acc += v * int(layer.weight[oc, i])
            out.append(acc)
    elif layer.op in ("maxpool", "avgpool"):
        for ci in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    cells = [at(ci, oy * sh + ky, ox * sw + kx) for ky in range(kh) for kx in range(kw)]
                    if layer.op == "maxpool":
                        out.append(max(cells))
                    else:
                        out.append(sum(cells) + int(layer.bias[ci]))
        if layer.op == "maxpool":
            return out
    elif layer.op == "add":
        ma, mb = layer.add_m
        za, zb = tins[0].zero_point, tins[1].zero_point
        out = [(a - za) * ma + (b - zb) * mb for a, b in zip(_flatten(ins[0]), _flatten(ins[1]))]
    elif layer.op == "lut":
        out = list(_flatten(x))
    # requantize, channel by channel
    z = tout.zero_point if layer.lut is None else layer.lut_zero_point
    per_c = len(out) // tout.shape[1]
    res = []
    for i, acc in enumerate(out):
        m, n = layer.channel_params(i // per_c)
        q = py_requant(acc, m, n, z, layer.lo, layer.hi)
        res.append(int(layer.lut[q - layer.lo]) if layer.lut is not None else q)
    return res


def _flatten(x):
    if isinstance(x, list):
        for v in x:
            yield from _flatten(v)
    else:
        yield int(x)


def _tolist(a):
    return a.tolist()


# -- rshift_round ---------------------------------------------------------------------
def test_rshift_round_ties_round_half_up():
    # -2.5 -> -2, -1.5 -> -1, -0.5 -> 0, 0.5 -> 1, 1.5 -> 2, 2.5 -> 3
    v = np.array([-5, -3, -1, 1, 3, 5])
    assert rshift_round(v, 1).tolist() == [-2, -1, 0, 1, 2, 3]
    assert rshift_round(v * 4, 3).tolist() == [-2, -1, 0, 1, 2, 3]


@pytest.mark.parametrize("n", [-5, -1, 0, 1, 2, 7, 15, 31, 40, 62])
def test_rshift_round_matches_python_ints(n):
    rng = random.Random(n)
    span = 1 << 40
    vals = [rng.randint(-span, span) for _ in range(300)]
    vals += [0, 1, -1, (1 << max(n - 1, 0)), -(1 << max(n - 1, 0)), span, -span]
    if n > 0:  # exact ties, both signs
        vals += [(2 * k + 1) << (n - 1) for k in range(-4, 4) if abs((2 * k + 1) << (n - 1)) < 1 << 62]
    got = rshift_round(np.array(vals, dtype=np.int64), n).tolist()
    assert got == [py_rshift_round(v, n) for v in vals]


def test_requantize_matches_python_ints_extremes():
    rng = random.Random(1)
    for _ in range(2000):
        mbits = rng.randint(1, 16)
        m = rng.choice([0, 1, (1 << mbits) - 1, rng.randint(0, (1 << mbits) - 1)])
        acc = rng.choice([rng.randint(-(1 << 40), 1 << 40), -(1 << 40), (1 << 40) - 1, 0, -1])
        n = rng.randint(-4, 60)
        bits = rng.randint(2, 16)
        lo, hi = int_range(bits)
        z = rng.randint(lo, hi)
        assert int(requantize(acc, m, n, z, lo, hi)) == py_requant(acc, m, n, z, lo, hi)


# -- layers ---------------------------------------------------------------------------
def _rand_codes(rng: np.random.Generator, shape, bits, extreme: str):
    lo, hi = int_range(bits)
    if extreme == "max":
        return np.full(shape, hi, np.int64)
    if extreme == "min":
        return np.full(shape, lo, np.int64)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _rand_mn(rng, c, mbits, per_channel):
    k = c if per_channel else 1
    m = rng.integers(0, 1 << mbits, size=k, dtype=np.int64)
    m[0] = (1 << mbits) - 1
    n = rng.integers(-2, 40, size=k, dtype=np.int64)
    return m, n


CASES = list(itertools.product(["conv", "gemm", "avgpool", "maxpool", "add", "lut"], ["rand", "max", "min"], [0, 1, 2]))


@pytest.mark.parametrize("op,extreme,seed", CASES)
def test_layer_matches_python_ints(op, extreme, seed):
    rng = np.random.default_rng(hash((op, extreme, seed)) % (1 << 32))
    abits = int(rng.choice([2, 3, 8, 12, 16]))
    wbits = int(rng.choice([2, 4, 8, 16]))
    mbits = int(rng.choice([1, 8, 16]))
    lo_a, hi_a = int_range(abits)
    z_in = int(rng.integers(lo_a, hi_a + 1)) if seed else 0
    c, h, w = 3, 5, 6
    tin = QTensor("x", (1, c, h, w), abits, 0.1, z_in)
    x = _rand_codes(rng, (1, c, h, w), abits, extreme)
    wlo, whi = int_range(wbits)
    if op == "conv":
        groups = int(rng.choice([1, 3]))
        cout = 6
        wshape = (cout, c // groups, 3, 2)
        wt = rng.integers(wlo, whi + 1, size=wshape, dtype=np.int64)
        if extreme != "rand":  # +-max weights against +-max inputs
            wt = np.where(rng.random(wshape) < 0.5, wlo, whi)
        bias = rng.integers(-(1 << 20), 1 << 20, size=cout, dtype=np.int64)
        m, n = _rand_mn(rng, cout, mbits, seed != 1)
        layer = QLayer("l", "conv", ["x"], "y", weight=wt, bias=bias, m=m, n=n, wbits=wbits, mbits=mbits,
                       kernel=(3, 2), strides=(2, 1), pads=(1, 0, 2, 1), groups=groups, lo=-100, hi=90)
        oh, ow = (h + 3 - 3) // 2 + 1, (w + 1 - 2) + 1
        tout = QTensor("y", (1, cout, oh, ow), 8, 0.1, 3)
    elif op == "gemm":
        cout = 7
        wt = rng.integers(wlo, whi + 1, size=(cout, c * h * w), dtype=np.int64)
        if extreme != "rand":
            wt = np.full_like(wt, whi if seed % 2 else wlo)
        bias = rng.integers(-(1 << 31), (1 << 31) - 1, size=cout, dtype=np.int64)
        m, n = _rand_mn(rng, cout, mbits, seed != 1)
        layer = QLayer("l", "gemm", ["x"], "y", weight=wt, bias=bias, m=m, n=n, wbits=wbits, mbits=mbits)
        tout = QTensor("y", (1, cout), 8, 0.1, -5)
    elif op == "avgpool":
        k = (2, 3)
        bias = np.full(c, -6 * z_in, dtype=np.int64)
        m, n = _rand_mn(rng, c, mbits, False)
        layer = QLayer("l", "avgpool", ["x"], "y", bias=bias, m=m, n=n, mbits=mbits, kernel=k, strides=(1, 2),
                       pads=(1, 1, 0, 1), lo=-128, hi=100)
        tout = QTensor("y", (1, c, h, (w + 2 - 3) // 2 + 1), 8, 0.1, 0)
    elif op == "maxpool":
        layer = QLayer("l", "maxpool", ["x"], "y", kernel=(2, 2), strides=(2, 2), pads=(0, 0, 1, 0))
        tout = QTensor("y", (1, c, 3, 3), abits, 0.1, z_in)
    elif op == "add":
        tb = QTensor("b", (1, c, h, w), 8, 0.2, -7)
        xb = _rand_codes(rng, (1, c, h, w), 8, extreme)
        layer = QLayer("l", "add", ["x", "b"], "y", m=[1], n=[int(rng.integers(0, 20))],
                       add_m=(int(rng.integers(0, 1 << 16)), (1 << 16) - 1), lo=-128, hi=127)
        tout = QTensor("y", (1, c, h, w), 8, 0.1, 2)
    else:  # lut on a requantized code space
        m, n = _rand_mn(rng, 1, mbits, False)
        lo, hi = -20, 30
        table = rng.integers(-128, 128, size=hi - lo + 1, dtype=np.int64)
        layer = QLayer("l", "lut", ["x"], "y", m=m, n=n, mbits=mbits, lo=lo, hi=hi, lut=table, lut_zero_point=4)
        tout = QTensor("y", (1, c, h, w), 8, 0.1, 0)
    ins, tins = [x], [tin]
    if op == "add":
        ins, tins = [x, xb], [tin, tb]
    got = run_layer(layer, ins, tins, tout).ravel().tolist()
    want = py_layer(layer, [_tolist(a[0]) for a in ins], tins, tout)
    assert got == want
    if layer.has_requant and op != "lut":
        # the accumulator bound really bounds what the reference computed
        blo, bhi = acc_bounds(layer, tins)
        accs = _py_accs(layer, ins, tins, tout)
        assert blo <= min(accs) and max(accs) <= bhi


def _py_accs(layer, ins, tins, tout):
    """Accumulators of the Python model (requantize with m=1, n=0, no clamp)."""
    raw = QLayer(layer.name, layer.op, layer.inputs, layer.output, weight=layer.weight, bias=layer.bias,
                 m=[1], n=[0], wbits=layer.wbits, kernel=layer.kernel, strides=layer.strides, pads=layer.pads,
                 groups=layer.groups, add_m=layer.add_m, lo=-(1 << 62), hi=1 << 62)
    zt = QTensor(tout.name, tout.shape, tout.bits, tout.scale, 0)
    return py_layer(raw, [_tolist(a[0]) for a in ins], tins, zt)


def test_acc_bounds_reached_by_extreme_inputs():
    wt = np.array([[127, -128, 5]], dtype=np.int64)
    layer = QLayer("g", "gemm", ["x"], "y", weight=wt, bias=[10], wbits=8)
    tin = QTensor("x", (1, 3), 8, 1.0)
    lo, hi = acc_bounds(layer, [tin])
    assert hi == 10 + 127 * 127 + (-128) * (-128) + 5 * 127
    assert lo == 10 + 127 * -128 + (-128) * 127 + 5 * -128


def test_run_int_graph_matches_python_chain():
    rng = np.random.default_rng(7)
    t0 = QTensor("x", (1, 2, 4, 4), 8, 0.05, -3)
    t1 = QTensor("c", (1, 4, 4, 4), 8, 0.1, -128)
    t2 = QTensor("p", (1, 4, 2, 2), 8, 0.1, -128)
    t3 = QTensor("o", (1, 5), 8, 0.2, 1)
    conv = QLayer("c", "conv", ["x"], "c", weight=rng.integers(-128, 128, (4, 2, 3, 3)),
                  bias=rng.integers(-1000, 1000, 4), m=rng.integers(1 << 15, 1 << 16, 4), n=[20, 21, 22, 23],
                  wbits=8, mbits=16, kernel=(3, 3), pads=(1, 1, 1, 1), lo=-128, hi=127)
    pool = QLayer("p", "maxpool", ["c"], "p", kernel=(2, 2), strides=(2, 2))
    fc = QLayer("f", "gemm", ["p"], "o", weight=rng.integers(-8, 8, (5, 16)), bias=rng.integers(-99, 99, 5),
                m=[40000], n=[18], wbits=4, mbits=16)
    qg = QGraph("g", {t.name: t for t in (t0, t1, t2, t3)}, [conv, pool, fc], "x", "o")
    x = rng.integers(-128, 128, (1, 2, 4, 4))
    got = run_int(qg, x).ravel().tolist()
    a = py_layer(conv, [x[0].tolist()], [t0], t1)
    a = np.array(a).reshape(t1.shape)
    b = np.array(py_layer(pool, [a[0].tolist()], [t1], t2)).reshape(t2.shape)
    want = py_layer(fc, [b[0].tolist()], [t2], t3)
    assert got == want
