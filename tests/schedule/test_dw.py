"""The depthwise unit's mapping (``dw`` steps): when it is chosen, its loop nest, its cycles, its ROM."""

import numpy as np
import pytest

from _support.graphs import GraphBuilder
from hwflow.schedule import schedule
from hwflow.schedule.lower import dw_cycles
from hwflow.schedule.program import SETUP_CYCLES


def _dw(c=12, h=9, w=7, k=3, stride=1, pad=1, seed=0):
    b = GraphBuilder(seed=seed, scheme="asymmetric")
    x = b.input_tensor((1, c, h, w))
    t = b.conv(x, c, k=1, pad=0, relu=True)
    t = b.conv(t, c, k=k, stride=stride, pad=pad, groups=c, relu=True)
    b.gemm(t, 5)
    return b.build()


@pytest.mark.parametrize("shape,stride", [(4, 1), (8, 1), (8, 2), (4, 2)])
def test_depthwise_runs_on_the_unit_when_faster_than_the_array(shape, stride):
    qg = _dw(stride=stride, h=9 * stride, w=7 * stride)  # stride 2 pays off on larger maps
    unit = schedule(qg, "generic", pe=shape, simd=shape)
    array = schedule(qg, "generic", pe=shape, simd=shape, dw=False)
    dw = [l for l in unit.layers if l.kind == "dw"]
    assert len(dw) == 1 and not any(l.kind == "dw" for l in array.layers)
    l, m = dw[0], array.layers[1]
    assert l.tiles * l.t < m.tiles * m.t and unit.cycles < array.cycles
    # The loop nest: per chunk, row group and input column (plus the computing one), the group's rows.
    assert (l.oh, l.ow, l.nt, l.qh, l.qw) == (1, 1, -(-12 // shape), -(-l.doh // l.dwr), (l.dow - 1) * stride + 3 + 1)
    assert l.k == l.kh == (l.dwr - 1) * stride + 3 and l.t == max(l.k, 9) and l.wk == 9
    assert l.tiles * l.t == dw_cycles(l.dwr, 3, 3, stride, stride, l.doh, l.dow, l.nt)[0]
    assert l.cycles == SETUP_CYCLES + l.tiles * l.t + l.drain
    assert unit.rq_lanes == shape  # the unit's loads are a word each
    # The same MACs; the ROM holds only the taps (packed diagonals) and the words the last
    # column's reads run past them.
    assert unit.macs == array.macs
    assert l.w_words == l.nt * 9 + max(0, l.t - 9)
    assert unit.weights.shape[0] - array.weights.shape[0] <= -(-max(0, l.t - 9) // unit.w_pack) + 1


def test_reads_and_read_trace_agree_on_a_dw_step():
    prog = schedule(_dw(c=10, h=8, w=6, stride=2, pad=(1, 0, 0, 1)), "generic", pe=4, simd=4)
    l = next(l for l in prog.layers if l.kind == "dw")
    reads = [(i, r) for i, r in enumerate(l.reads()) if r is not None and r[0] is not None]
    cyc, addr = l.read_trace()
    assert [i for i, _ in reads] == cyc.tolist() and [r[0] for _, r in reads] == addr.tolist()
    # Each chunk's weight words are its taps, from w_base + g*9.
    ws = [r[1] for r in l.reads() if r is not None]
    assert ws[0] == l.w_base and ws[l.k * l.qh * l.qw] == l.w_base + 9


def test_no_unit_on_a_non_square_array_or_without_a_word_wide_back_end():
    qg = _dw()
    assert not any(l.kind == "dw" for l in schedule(qg, "generic", pe=4, simd=8).layers)
    assert not any(l.kind == "dw" for l in schedule(qg, "generic", pe=3, simd=3).layers)  # 3 lanes: no word a cycle
    assert any(l.kind == "dw" for l in schedule(qg, "generic", pe=2, simd=2).layers)


def test_descriptor_holds_the_sweep():
    from hwflow.schedule.descriptor import descriptor_values

    prog = schedule(_dw(c=12, h=9, w=7), "generic", pe=4, simd=4)
    i, l = next((i, l) for i, l in enumerate(prog.layers) if l.kind == "dw")
    v = descriptor_values(prog)[i]
    assert v["loads_m1"] == l.nt * l.doh * l.dow - 1
    assert v["dw_last_rows"] == l.doh - (l.qh - 1) * l.dwr and 1 <= v["dw_last_rows"] <= l.dwr
    assert (v["dw_rows"], v["dw_ow"], v["dw_groups"], v["wk"]) == (l.dwr, l.dow, l.qh, 9)
    assert all(descriptor_values(prog)[j]["dw_rows"] == 0 for j in range(len(prog.layers)) if j != i)
