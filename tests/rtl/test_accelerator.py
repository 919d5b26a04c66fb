# amaranth: UnusedElaboratable=no
"""The Accelerator end to end in the Amaranth simulator: outputs equal run_int, cycles equal the schedule."""

import re

import numpy as np
import pytest
from amaranth import Shape, signed, unsigned

from hwflow.quant.reference import run_int
from _support.accel_sim import simulate
from _support.graphs import GraphBuilder, digits_cnn, dwnet, first_conv, resblock
from hwflow.rtl.accelerator import Accelerator, to_verilog
from hwflow.schedule.program import ISSUE_CYCLES, MERGE_CYCLES, READ_DATA_REGS
from hwflow.schedule import schedule


def mlp(b):
    x = b.input_tensor((1, 20))
    h = b.gemm(x, 12, relu=True)
    b.gemm(h, 5)


cnn = digits_cnn


def ops(b):
    """Every op: strided/asymmetric-padded conv, depthwise, grouped 1x1, add, avgpool, maxpool
    with padding, LUT, concat, global average pool, gemm on a 4-D tensor."""
    x = b.input_tensor((1, 3, 7, 6))
    h = b.conv(x, 8, k=3, stride=2, pad=(1, 0, 1, 1), relu=True)
    d = b.conv(h, 8, k=3, pad=1, groups=8)
    g = b.conv(h, 8, k=1, pad=0, groups=2)
    a = b.add(d, g)
    p = b.avgpool(a, k=2, stride=1, pad=1)
    m = b.maxpool(p, k=3, stride=2, pad=1)
    c = b.concat([m, b.lut(m)])
    gp = b.avgpool(c)
    b.gemm(gp, 5)


def _check(builder_fn, scheme, wbits, pe, simd, seed=0, extreme=False, n=2, stall=0, fuse="auto"):
    b = GraphBuilder(seed=seed, scheme=scheme, wbits=wbits, extreme=extreme)
    builder_fn(b)
    qg = b.build()
    prog = schedule(qg, "generic", pe=pe, simd=simd, fuse=fuse)
    xs = [b.random_input(qg, extreme=extreme) for _ in range(n)]
    stalls = []
    outs, cycles, measured = simulate(prog, xs, stall=stall, seed=seed, stalls=stalls)
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, run_int(qg, x).reshape(-1))
    # Every stall cycle costs exactly one cycle (the core holds in lockstep with the stream).
    assert cycles == measured == [prog.cycles + s for s in stalls]
    assert (sum(stalls) > 0) == bool(stall)
    return prog


@pytest.mark.sim
@pytest.mark.parametrize("fn,scheme,wbits,pe,simd", [
    (mlp, "pow2", 8, 4, 4),
    (mlp, "symmetric", 4, 3, 5),
    (cnn, "asymmetric", 8, 4, 4),
    (cnn, "pow2", 4, 8, 8),
    (cnn, "symmetric", 8, 2, 3),
    (ops, "asymmetric", 8, 4, 4),
    (ops, "pow2", 4, 3, 5),
    (ops, "symmetric", 8, 1, 1),
])
def test_accelerator_bit_and_cycle_exact(fn, scheme, wbits, pe, simd):
    _check(fn, scheme, wbits, pe, simd)


@pytest.mark.sim
@pytest.mark.parametrize("fn,pe,simd", [(cnn, 4, 4), (ops, 2, 2)])
def test_accelerator_extreme_values(fn, pe, simd):
    _check(fn, "asymmetric", 8, pe, simd, seed=7, extreme=True)


@pytest.mark.sim
def test_accelerator_under_back_pressure():
    _check(ops, "asymmetric", 8, 4, 4, seed=3, stall=3)


@pytest.mark.sim
@pytest.mark.parametrize("fn", [mlp, cnn])
def test_first_layer_reads_behind_a_stalling_input_stream(fn):
    """The first layer starts after ``input_lead`` beats; when the partner stalls the core
    holds with it (one beat in two dropped here), and stays bit- and cycle-exact."""
    prog = _check(fn, "asymmetric", 8, 4, 4, seed=5, stall=2)
    assert prog.input_lead < prog.input_beats


@pytest.mark.sim
def test_accelerator_done_pulses_once_and_restarts():
    b = GraphBuilder(seed=1)
    mlp(b)
    qg = b.build()
    prog = schedule(qg, "generic", pe=4, simd=4)
    xs = [b.random_input(qg) for _ in range(3)]
    outs, cycles, _ = simulate(prog, xs)
    assert cycles == [prog.cycles] * 3
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, run_int(qg, x).reshape(-1))


def test_accelerator_ports_follow_the_brief():
    b = GraphBuilder(seed=1, abits=6)
    mlp(b)
    prog = schedule(b.build(), "generic", pe=2, simd=2)
    sig = Accelerator(prog).signature.members
    got = {k: (m.flow.name, Shape.cast(m.shape)) for k, m in sig.items()}
    assert got == {
        "start": ("In", unsigned(1)), "busy": ("Out", unsigned(1)), "done": ("Out", unsigned(1)),
        "cycles": ("Out", unsigned(32)), "in_valid": ("In", unsigned(1)), "in_ready": ("Out", unsigned(1)),
        "in_data": ("In", unsigned(2 * 6)), "out_valid": ("Out", unsigned(1)), "out_ready": ("In", unsigned(1)),
        "out_data": ("Out", unsigned(2 * 6)),  # word streams: SIMD lanes of 6-bit codes
    }
    with pytest.raises(TypeError, match=r"needs a hwflow.schedule.Program, not 'x'"):
        Accelerator("x")


@pytest.mark.parametrize("pe,simd", [(4, 4), (8, 8)])
def test_verilog_is_small_and_independent_of_weights(pe, simd):
    b = GraphBuilder(seed=2)
    cnn(b)
    prog = schedule(b.build(), "generic", pe=pe, simd=simd)
    text = to_verilog(prog, "digits_cnn")
    assert "module digits_cnn(" in text
    # every register carries the stall enable (issue 18); 8 requantizers of split products,
    # each clamping in two stages; the two-stage max-merge; the pool unit's input register;
    # the back end's first-load flags
    assert len(text.splitlines()) <= 6800
    # Weights are ROM contents (one line per word), not logic; the RAM's zero fill is a loop.
    assert "module digits_cnn_wrom(" in text
    words = [l for l in text.splitlines() if l.startswith("    mem[") and "'h" in l]
    assert len(words) >= prog.weights.shape[0]
    assert "module digits_cnn_act(" in text and f"for (i = 0; i < {prog.act_words}; i = i + 1)" in text
    with pytest.raises(ValueError, match=r"Verilog identifier, not '1bad'"):
        to_verilog(prog, "1bad")


def test_memory_data_is_registered_before_the_datapath():
    """Both memories' read data pass READ_DATA_REGS registers (timing: block-RAM clock-to-out
    and the multi-block output mux end at a register), and the schedule counts them."""
    b = GraphBuilder(seed=2)
    cnn(b)
    prog = schedule(b.build(), "generic", pe=4, simd=4)
    assert READ_DATA_REGS >= 1 and prog.latency["issue"] == ISSUE_CYCLES == 3 + READ_DATA_REGS
    text = to_verilog(prog, "digits_cnn")
    regs = set(re.findall(r"^  reg \[\d+:0\] (\S+) =", text, re.M))
    # the first of each in its memory's module (per bank, before the bank mux): the activation
    # RAM's rd_q, the weight ROM's q
    assert "if (en) rd_q <= rd_data;" in text or "if (en) q_0 <= rd_0;" in text
    assert "    q <= data;\n" in text or "    q_0 <= rd_0;\n" in text
    names = [f"wrom_q_{i}" for i in range(READ_DATA_REGS - 1)] + [f"act_q_{i}" for i in range(READ_DATA_REGS - 1)]
    for name in names:
        # Amaranth may name a register after its reader: follow one assign.
        alias = re.search(rf"^  assign {name} = (\S+);", text, re.M)
        assert name in regs or (alias is not None and alias.group(1) in regs), name


@pytest.mark.sim
@pytest.mark.parametrize("pe,stall", [(2, 0), (4, 0), (5, 0), (8, 0), (4, 3)])
def test_packed_depthwise_weights_are_exact(pe, stall):
    """Depthwise weights are stored without their zeros: ``w_pack`` diagonals a ROM word."""
    prog = _check(dwnet, "asymmetric", 8, pe, pe, seed=pe, stall=stall)
    dw = [l for l in prog.layers if l.wpk]
    assert len(dw) == 2 and prog.w_pack == 1 << (pe.bit_length() - 1)
    words = sum(-(-l.w_words // prog.w_pack) for l in dw)
    params = sum(16 * l.kh * l.kw for l in dw)
    if pe in (4, 8):  # a power-of-two array: every packed word is full but each step's last
        assert words * pe * pe < params + len(dw) * pe * pe


@pytest.mark.sim
@pytest.mark.parametrize("pe,simd,stall", [(4, 4, 0), (2, 3, 0), (8, 8, 0), (4, 2, 3)])
def test_shared_maps_are_exact(pe, simd, stall):
    prog = _check(resblock, "asymmetric", 8, pe, simd, seed=pe + simd, stall=stall)
    bases = {n: (t.base, t.base + t.words) for n, t in prog.tensors.items() if t.in_ram}
    overlaps = [(m, n) for m in bases for n in bases if m < n and bases[m][0] < bases[n][1]
                and bases[n][0] < bases[m][1]]
    assert overlaps  # some outputs overwrite their inputs


@pytest.mark.sim
@pytest.mark.parametrize("cin,k,stride,pad,pe,simd", [
    (1, 3, 1, 1, 4, 4),
    (1, (3, 2), (2, 1), (1, 0, 2, 1), 2, 4),
    (2, 3, 1, (2, 1, 0, 1), 3, 8),
    (1, 5, 2, 2, 2, 5),
    (3, 3, 2, (0, 0, 1, 1), 4, 4),    # MobileNet's and ResNet's first layers in small
    (1, (4, 2), 2, (2, 0, 1, 1), 8, 8),  # a DS-CNN-like tall kernel, fields wider than a word
])
def test_streamed_first_layer(cin, k, stride, pad, pe, simd):
    """A small-Cin first convolution takes its receptive fields from the input stream (the
    host im2cols them; the padding lanes are the datapath's), also when the partner stalls."""
    fn = first_conv(cin, k, stride, pad)
    prog = _check(fn, "asymmetric", 8, pe, simd, seed=cin)
    st = prog.input_stream
    kh, kw = (k, k) if isinstance(k, int) else k
    assert st is not None and (st.kh, st.kw, st.chunks) == (kh, kw, -(-kh * kw * cin // simd))
    assert not prog.input_map.in_ram and prog.layers[0].stream
    assert prog.input_beats == prog.layers[0].tiles * prog.layers[0].k
    _check(fn, "asymmetric", 8, pe, simd, seed=cin + 10, stall=3)


def _conv_pool(k, stride, pool, pool_stride, pool_pad=0, cin=3, share=False):
    def build(b):
        x = b.input_tensor((1, cin, 9, 8))
        c = b.conv(x, 5, k=k, stride=stride, pad=1, relu=True)
        p = b.maxpool(c, k=pool, stride=pool_stride, pad=pool_pad)
        if share:  # the conv output has a second reader: no fusion
            p = b.concat([p, b.maxpool(c, k=pool, stride=pool_stride, pad=pool_pad)])
        b.conv(p, 4, k=1, pad=0)
    return build


@pytest.mark.sim
@pytest.mark.parametrize("k,stride,pool,pool_stride,pool_pad,cin,share,fused,pe,simd", [
    (3, 1, 2, 2, 0, 3, False, True, 4, 4),
    (3, 1, 3, 2, 0, 3, False, True, 3, 2),     # overlapping windows
    (2, 2, 2, 1, 0, 1, False, True, 4, 4),     # stride-1 pool after a strided, streamed first conv
    (3, 1, 2, 2, 1, 3, False, False, 4, 4),    # padded pool: not fused
    (3, 1, 2, 2, 0, 3, True, False, 2, 2),     # conv output read twice: not fused
])
def test_fused_conv_maxpool(k, stride, pool, pool_stride, pool_pad, cin, share, fused, pe, simd):
    fn = _conv_pool(k, stride, pool, pool_stride, pool_pad, cin, share)
    prog = _check(fn, "asymmetric", 8, pe, simd, seed=k, fuse="always")
    assert any(l.qh * l.qw > 1 for l in prog.layers) == fused
    assert any(l.kind == "max" for l in prog.layers) != fused or share
    if fused:
        _check(fn, "symmetric", 4, pe, simd, seed=k, fuse="never")  # the unfused schedule agrees


@pytest.mark.sim
@pytest.mark.parametrize("fn,pe,simd,stall", [(cnn, 2, 2, 0), (cnn, 4, 4, 3), (resblock, 4, 4, 0),
                                              (ops, 3, 5, 3), (dwnet, 4, 4, 0), (mlp, 4, 4, 3)])
def test_no_cycle_reads_a_word_it_writes(fn, pe, simd, stall):
    """The activation RAM's Verilog marks the memory ``no_rw_check`` (rtl/act_buffer.py: else
    Yosys emulates read-first on the UP5K's block RAM, whose collisions are undefined, with
    a bypass on the slowest path): the core reads only the words a step needs, and never in
    the cycle the word is written, layer overlap, shared maps, the streams and stalls included."""
    b = GraphBuilder(seed=pe + simd)
    fn(b)
    qg = b.build()
    prog = schedule(qg, "generic", pe=pe, simd=simd)
    seen = {"reads": 0, "writes": 0, "both": []}

    def watch(ctx, dut):
        act = dut.act
        if not ctx.get(act.en):
            return
        rd, wr = ctx.get(act.rd_en), ctx.get(act.mem_wr_en)  # the write as the memory sees it
        seen["reads"] += rd
        seen["writes"] += bool(wr)
        if rd and wr and ctx.get(act.rd_addr) == ctx.get(act.mem_wr_addr):
            seen["both"].append(ctx.get(act.rd_addr))

    xs = [b.random_input(qg) for _ in range(2)]
    outs, cycles, measured = simulate(prog, xs, stall=stall, seed=1, watch=watch)
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, run_int(qg, x).reshape(-1))
    assert cycles == measured
    assert seen["reads"] > 0 and seen["writes"] > 0 and seen["both"] == []


def _one_read_window():
    """A fused 2x2 window whose conv takes one read a result (a 2x2 first conv on one
    channel, streamed: k == 1), so only the max-merge keeps its results apart."""
    b = GraphBuilder(seed=2, scheme="asymmetric", wbits=8)
    _conv_pool(2, 2, 2, 1, 0, cin=1)(b)
    qg = b.build()
    return qg, b, schedule(qg, "generic", pe=4, simd=4, fuse="always")


def test_a_fused_window_keeps_its_results_merge_cycles_apart():
    """The max-merge compares, registers, then loads the hold (MERGE_CYCLES stages): a pooled
    step's tile takes at least MERGE_CYCLES even when one read makes a result; a program
    without a fused window keeps the one-register merge and its tiles."""
    qg, _, prog = _one_read_window()
    conv, gemm = prog.layers
    assert (conv.qh * conv.qw, conv.k, conv.t) == (4, 1, MERGE_CYCLES) and MERGE_CYCLES == 2
    assert gemm.qh * gemm.qw == 1 and gemm.t == gemm.k
    assert prog.latency["merge"] == MERGE_CYCLES
    plain = schedule(qg, "generic", pe=4, simd=4, fuse="never")
    assert plain.latency["merge"] == 1 and all(l.t == max(l.k, l.ng) for l in plain.layers if l.kind == "mac")


@pytest.mark.sim
def test_one_read_window_is_exact_with_stalls():
    """Results of a window MERGE_CYCLES apart (the shortest the schedule makes), with input
    stalls holding the merge mid-window: bit- and cycle-exact."""
    qg, b, prog = _one_read_window()
    xs = [b.random_input(qg) for _ in range(3)]
    stalls = []
    outs, cycles, measured = simulate(prog, xs, stall=3, seed=2, stalls=stalls)
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, run_int(qg, x).reshape(-1))
    assert cycles == measured == [prog.cycles + s for s in stalls] and sum(stalls) > 0


@pytest.mark.sim
@pytest.mark.tool("verilator")
def test_one_read_window_is_exact_in_verilator():
    from hwflow.quant.reference import run_int_batch
    from hwflow.sim import run_vectors
    qg, b, prog = _one_read_window()
    xs = np.stack([b.random_input(qg) for _ in range(3)])
    r = run_vectors(prog, xs, "verilator", expected=run_int_batch(qg, xs))
    assert r.passed, r.summary()
    assert r.cycles == r.core_cycles == [prog.cycles] * 3


@pytest.mark.sim
def test_layer_overlap_is_as_tight_as_the_reads_allow():
    """Layers overlap (the schedule shortens ``drain``); where the next layer's reads are what
    bounds it, starting a few cycles earlier still reads stale words, and the simulation sees it."""
    b = GraphBuilder(seed=3)
    mlp(b)
    qg = b.build()
    prog = schedule(qg, "generic", pe=4, simd=4)
    from hwflow.schedule.schedule import drain_cycles

    first = prog.layers[0]
    full = drain_cycles(prog.latency, first.kind, first.ng, first.t, first.k)
    assert 1 <= first.drain < full  # overlapped, bounded by gemm2 reading gemm1's last chunk
    assert prog.layers[-1].drain == drain_cycles(prog.latency, "mac", prog.layers[-1].ng, prog.layers[-1].t,
                                                 prog.layers[-1].k)  # the output reads everything
    xs = [b.random_input(qg) for _ in range(2)]
    outs, cycles, _ = simulate(prog, xs)
    assert cycles == [prog.cycles] * 2
    for x, o in zip(xs, outs):
        np.testing.assert_array_equal(o, run_int(qg, x).reshape(-1))
    prog.layers[0].drain = max(1, first.drain - 8)  # too early: gemm2 reads h before it is written
    outs, _, _ = simulate(prog, xs)
    assert any(not np.array_equal(o, run_int(qg, x).reshape(-1)) for x, o in zip(xs, outs))
