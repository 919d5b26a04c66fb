# amaranth: UnusedElaboratable=no
"""The depthwise unit (rtl/dw_array.py) end to end: ``dw`` steps bit- and cycle-exact against
run_int, in Amaranth and on Verilator: strides 1 and 2, asymmetric pads, channel counts that are
not a multiple of the lanes, several row groups, a dw step as the last layer (its writes bound
``done``) and as the first (behind the input stream)."""

import pytest

from _support.accel_sim import assert_exact
from _support.graphs import GraphBuilder
from hwflow.quant.reference import run_int
from hwflow.schedule import schedule
from hwflow.sim import run_vectors

# (channels, h, w, kernel, stride, pads, before, after): before/after: a 1 x 1 conv / a Gemm
CASES = {
    "s1": (6, 7, 5, 3, 1, 1, True, True),
    "s2": (10, 9, 6, 3, 2, 1, True, True),
    "s1-pads-last": (16, 11, 4, 3, 1, (0, 1, 1, 0), True, False),
    "s2-pads-first": (5, 8, 8, 3, 2, (1, 0, 0, 1), False, True),
    "k2-chain": (12, 9, 7, (3, 2), 1, (1, 0, 1, 1), False, False),
}


def _graph(name, seed=0):
    c, h, w, k, stride, pad, before, after = CASES[name]
    b = GraphBuilder(seed=seed, scheme="asymmetric")
    t = b.input_tensor((1, c, h, w))
    if before:
        t = b.conv(t, c, k=1, pad=0, relu=True)
    t = b.conv(t, c, k=k, stride=stride, pad=pad, groups=c, relu=True)
    if name == "k2-chain":
        t = b.conv(t, c, k=k, stride=2, pad=pad, groups=c)
    if after:
        b.gemm(t, 5)
    return b, b.build()


@pytest.mark.sim
@pytest.mark.parametrize("name,shape", [(n, s) for n in CASES for s in (4, 8)] + [("s1", 2), ("k2-chain", 2)])
def test_dw_steps_are_exact_in_amaranth(name, shape):
    b, qg = _graph(name, seed=shape)
    prog = schedule(qg, "generic", pe=shape, simd=shape)
    assert any(l.kind == "dw" for l in prog.layers), [(l.name, l.kind) for l in prog.layers]
    xs = [b.random_input(qg), b.random_input(qg, extreme=True)]
    assert_exact(prog, qg, xs, f"{name} {shape}x{shape}")


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name,shape", [("k2-chain", 8), ("s2", 4)])  # strides 1 and 2, pads, 12 and 10 channels
def test_dw_steps_are_exact_on_verilator(name, shape, tmp_path):
    b, qg = _graph(name, seed=shape)
    prog = schedule(qg, "generic", pe=shape, simd=shape)
    assert any(l.kind == "dw" for l in prog.layers)
    xs = [b.random_input(qg) for _ in range(3)]
    res = run_vectors(prog, xs, "verilator", expected=[run_int(qg, x).reshape(-1) for x in xs], build_dir=tmp_path)
    assert not res.mismatches and list(res.cycles) == [prog.cycles] * 3
