"""The scheduler: tiling, memory map, ROM images, exact cycle formula, budget errors."""

import json

import numpy as np
import pytest

from hwflow.errors import FitError, OptionError, UnsupportedOpError
from hwflow.quant.qgraph import QGraph, QLayer, QTensor
from _support.graphs import GraphBuilder, digits_cnn
from hwflow.schedule import schedule
from hwflow.schedule.memory import allocate, weight_words
from hwflow.schedule.program import SETUP_CYCLES


def _cnn(seed=0, **kw):
    b = GraphBuilder(seed=seed, **kw)
    digits_cnn(b)
    return b.build()


def test_allocation_reuses_memory_and_never_overlaps_live_tensors():
    sizes = {"a": 10, "b": 10, "c": 10, "d": 10}
    live = {"a": (0, 0), "b": (0, 1), "c": (1, 2), "d": (2, 3)}
    bases, depth = allocate(sizes, live)
    assert depth == 20  # a chain needs two buffers, not four
    for x in sizes:
        for y in sizes:
            if x < y and not (live[x][1] < live[y][0] or live[y][1] < live[x][0]):
                assert bases[x] + sizes[x] <= bases[y] or bases[y] + sizes[y] <= bases[x]


def test_allocation_places_a_shared_output_at_its_shift_from_the_donor():
    # x feeds an add at step 3; y -> z (conv) may overlap with z 3 words below y; a (add) on z.
    sizes = {"x": 10, "y": 10, "z": 10, "a": 10}
    live = {"x": (0, 3), "y": (1, 2), "z": (2, 3), "a": (3, 4)}
    bases, depth = allocate(sizes, live, {"z": ("y", 3), "a": ("z", 0)})
    assert bases["y"] == bases["z"] + 3 and bases["a"] == bases["z"]
    assert depth == 23  # two maps and the shift, not three maps
    assert bases["x"] + 10 <= bases["z"] or bases["y"] + 10 <= bases["x"]


def test_residual_block_holds_two_maps_not_three():
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 8, 8, 8))
    s = b.conv(x, 8, relu=True)
    y = b.conv(s, 8, relu=True)
    b.add(s, b.conv(y, 8))
    prog = schedule(b.build(), "generic", pe=4, simd=4)
    tens = prog.tensors
    one = 8 * 8 * 2  # words of one 8 x 8 x 8 map at SIMD 4
    assert prog.act_words < 3 * one
    # The second conv's output overlaps the map it reads, shifted by about a row of pixels.
    conv3 = prog.layers[2]
    assert 0 < abs(tens[conv3.inputs[0]].base - conv3.out_base) <= 3 * 8 * 2


def test_weight_words_follow_the_read_order():
    rng = np.random.default_rng(0)
    wd = rng.integers(-8, 8, size=(5, 6, 2, 3))
    pe, simd = 2, 4
    words = weight_words(wd, pe, simd, nt=3, cis=2, tpg=3)
    k = 2 * 3 * 2
    assert words.shape == (3 * k, pe, simd)
    for g in range(3):
        for ky in range(2):
            for kx in range(3):
                for ci in range(2):
                    word = words[g * k + (ky * 3 + kx) * 2 + ci]
                    for p in range(pe):
                        for s in range(simd):
                            co, c = g * pe + p, ci * simd + s
                            want = wd[co, c, ky, kx] if co < 5 and c < 6 else 0
                            assert word[p, s] == want


def test_cycle_formula_and_json():
    prog = schedule(_cnn(), "generic", pe=8, simd=8)
    assert prog.cycles == prog.input_lead + sum(l.cycles for l in prog.layers) + prog.output_beats + 2
    assert 1 <= prog.input_lead <= prog.input_beats and (prog.input_stream is None) == (prog.input_beats == prog.input_map.words)
    for l in prog.layers:
        assert l.cycles == SETUP_CYCLES + l.oh * l.ow * l.nt * l.qh * l.qw * l.t + l.drain
        assert l.t >= l.k and l.t * l.qh * l.qw >= l.nb  # the serializer is free for every load
        assert sum(1 for _ in l.reads()) == l.tiles * l.t
    conv2 = prog.layers[1]  # after conv1 + maxpool (fused)
    assert prog.layers[0].name == "conv0+maxpool1"
    # Conv 8->16 at 8x8: K = 9 and 2 tiles of 8 channels per pixel, no waste.
    assert (conv2.k, conv2.nt, conv2.t) == (9, 2, 9)
    assert conv2.macs == 8 * 16 * 9 * 16
    assert conv2.oh * conv2.ow * conv2.nt * conv2.t == conv2.macs / 64
    doc = json.loads(json.dumps(prog.to_json()))
    assert doc["cycles"] == prog.cycles
    assert doc["pe"] == 8 and doc["simd"] == 8
    assert [l["name"] for l in doc["layers"]] == [l.name for l in prog.layers]
    assert doc["memory"]["weight_bits"] == prog.weights.shape[0] * 64 * prog.wbits


def test_gemm_on_4d_input_reads_nchw_flattening():
    """The Gemm after a conv sees its input flattened NCHW; the weight ROM is reordered to HWC."""
    prog = schedule(_cnn(), "generic", pe=4, simd=4, fuse="never")
    gemm = prog.layers[-1]
    assert (gemm.kh, gemm.kw, gemm.ich, gemm.oh, gemm.ow) == (4, 4, 4, 1, 1)


def test_depthwise_uses_supergroups():
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 16, 4, 4))
    b.conv(x, 16, groups=16)
    prog = schedule(b.build(), "generic", pe=4, simd=4, dw=False)  # on the array, not the depthwise unit
    l = prog.layers[0]
    assert (l.kind, l.cis, l.tpg, l.nt, l.k) == ("mac", 1, 1, 4, 9)


def test_bad_array_shape_is_an_option_error():
    with pytest.raises(OptionError, match=r"pe must be an integer >= 1, not 0"):
        schedule(_cnn(), "generic", pe=0, simd=4)


def test_unsupported_layout_is_named():
    t = {n: QTensor(n, s, 8, 1.0) for n, s in (("x", (1, 4, 4, 4)), ("y", (1, 4, 2, 2)), ("z", (1, 8, 4, 4)))}
    layers = [QLayer("pool", "maxpool", ["x"], "y", kernel=(2, 2), strides=(2, 2)),
              QLayer("cat", "concat", ["x", "y"], "z")]
    qg = QGraph("bad", t, layers, "x", "z")
    with pytest.raises(UnsupportedOpError, match=r"layer 'cat': concat is only supported along channels"):
        schedule(qg, "generic")


def test_too_big_for_the_target_says_what_to_do():
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 784))
    h = b.gemm(x, 512)
    b.gemm(h, 512)
    with pytest.raises(FitError, match=r"needs \d+ bits .* target fpga-tiny has \d+ bits .*try --wbits 4, --prune"):
        schedule(b.build(), "fpga-tiny")
    # Every memory kind is named: the block RAM's shortfall, and what the weights need of the SPRAM.
    with pytest.raises(FitError, match=r"\(1307 bram blocks of SB_RAM40_4K, 4 kbit each\), target fpga-tiny has "
                                       r"122880 bits \(30 bram blocks\); its 5308416-bit weight memory would need "
                                       r"22 of the 4 spram blocks \(SB_SPRAM256KA, 256 kbit\); try"):
        schedule(b.build(), "fpga-tiny")


def test_mlp_784_100_10_fits_fpga_tiny_with_its_weights_in_spram():
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 784))
    h = b.gemm(x, 100, relu=True)
    b.gemm(h, 10)
    qg = b.build()
    prog = schedule(qg, "fpga-tiny")  # PE 2 x SIMD 2: 19,850 words of 32 bits, 635 kbit
    assert prog.weight_kind.name == "spram" and prog.weight_load
    assert (prog.weight_words, prog.weight_word_bits, prog.load_cycles) == (19850, 32, 19850)
    assert prog.estimate["spram_blocks"] == 4 and prog.estimate["bram_blocks"] <= 30
    assert prog.to_json()["load"] == {"words": 19850, "word_bits": 32, "cycles": 19850, "memory": "spram"}
    # The same design on a target without SPRAM keeps its ROM (and the cycle count).
    small = schedule(qg, "fpga-small", pe=2, simd=2)
    assert small.weight_kind.name == "bram" and not small.weight_load and small.load_cycles == 0
    assert small.cycles == prog.cycles and small.to_json()["load"] is None
    # Weights that fit the block RAM stay there, initialised: no load phase.
    b = GraphBuilder(seed=0)
    b.gemm(b.input_tensor((1, 64)), 10)
    assert not schedule(b.build(), "fpga-tiny").weight_load


def test_mlp_784_100_10_fits_the_default_target():
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 784))
    h = b.gemm(x, 100, relu=True)
    b.gemm(h, 10)
    prog = schedule(b.build(), "fpga-small")
    assert prog.estimate["bram_blocks"] <= 56
    assert prog.input_size == 784 and prog.output_size == 10


def test_streamed_input_is_chosen_only_when_faster():
    qg = _cnn()  # conv 1 -> 8, 3 x 3, pad 1, on 1 x 8 x 8
    p4 = schedule(qg, "generic", pe=4, simd=4, fuse="never")
    st = p4.input_stream
    assert st is not None and st.chunks == 3  # 9 taps in 3 words: K 9 -> 3
    conv = p4.layers[0]
    assert (conv.kh, conv.kw, conv.k, conv.ih, conv.iw, conv.pt, conv.stream) == (1, 1, 3, 8, 8, 0, 1)
    assert p4.input_beats == 64 * 2 * 3  # every field once per tile of 4 channels
    assert p4.input_lead == 1 and qg.input not in _ram_tensors(p4)
    p16 = schedule(qg, "generic", pe=16, simd=8, fuse="never")
    assert p16.input_stream is not None  # the input phase goes even where the tile length stays
    # A wide first layer gains nothing from the stream: stored.
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 16, 6, 6))
    b.conv(x, 8, k=1, pad=0)
    wide = schedule(b.build(), "generic", pe=4, simd=4)
    assert wide.input_stream is None and wide.input_map.in_ram


def _ram_tensors(prog):
    return {n for n, t in prog.tensors.items() if t.in_ram}


def test_maxpool_fuses_into_the_conv_before_it():
    qg = _cnn()
    plain = schedule(qg, "generic", pe=4, simd=4, fuse="never")
    fused = schedule(qg, "generic", pe=4, simd=4)
    assert [l.kind for l in plain.layers] == ["mac", "max", "mac", "mac"]
    assert [l.kind for l in fused.layers] == ["mac", "mac", "mac"]
    l = fused.layers[0]
    assert (l.qh, l.qw, l.oh, l.ow, l.sh, l.wsh) == (2, 2, 4, 4, 2, 1)
    assert fused.cycles < plain.cycles
    assert fused.macs == plain.macs
    # The conv's own output is never stored.
    assert qg.layers[0].output not in fused.tensors
    with pytest.raises(OptionError, match=r"fuse must be 'auto', 'always' or 'never', not 'yes'"):
        schedule(qg, "generic", fuse="yes")


def test_stream_maps_name_every_code_once_per_word_lane():
    """Each code travels in the word(s) its layout puts it in; output maps round-trip."""
    from hwflow.sim.beats import pack, unpack

    qg = _cnn()
    for pe, simd in ((4, 4), (2, 2), (8, 8)):
        prog = schedule(qg, "generic", pe=pe, simd=simd)
        in_map, out_map = prog.stream_maps()
        tin = prog.input_map
        assert in_map.shape == (prog.input_beats, simd) and out_map.shape == (prog.output_beats, simd)
        counts = np.bincount(in_map[in_map >= 0], minlength=tin.size)
        if prog.input_stream is None:
            assert (counts == 1).all()
        else:  # a streamed code sits in every field that holds it, once per tile
            assert counts.min() >= 1 and counts.max() == 9 * prog.layers[0].nt
        assert sorted(out_map[out_map >= 0]) == list(range(prog.output_size))
        codes = np.arange(prog.output_size) - prog.output_size // 2
        assert unpack(pack(codes, out_map, 8), out_map, 8) == list(codes)


def test_every_qlayer_op_has_a_lowering():
    from hwflow.quant.qgraph import LAYER_OPS
    from hwflow.schedule.lower import LOWERINGS

    assert set(LOWERINGS) == set(LAYER_OPS)


def test_lowered_layers_report_the_ranges_the_datapath_is_sized_from():
    """Each lowering reports its accumulator range; the Program's widths hold them all."""
    from hwflow.quant.arith import bits_for_range
    from hwflow.schedule.lower import LOWERINGS, LowerContext, RomImages
    from hwflow.schedule.schedule import _layout

    b = GraphBuilder(seed=3)
    x = b.input_tensor((1, 4, 4, 4))
    h = b.conv(x, 4)
    c = b.concat([b.add(x, h), h])
    p = b.maxpool(c, k=2)
    b.lut(b.avgpool(p, k=2, stride=1))
    qg = b.build()
    prog = schedule(qg, "generic", pe=2, simd=2, fuse="never")
    tensors, _ = _layout(qg, 2, None, {})
    roms = RomImages()
    ctx = LowerContext(qg, tensors, 2, 2, roms)
    lowered = {l.op: LOWERINGS[l.op](l, ctx) for l in qg.layers}
    assert [s.kind for s in lowered["concat"].steps] == ["max", "max"]
    assert [s.coff for s in lowered["concat"].steps] == [0, 4]
    xlo, xhi = qg.tensors[x].range
    za = qg.tensors[x].zero_point
    assert lowered["add"].acc[0] <= xlo - za and lowered["add"].acc[1] >= xhi - za
    assert lowered["add"].addm == max(abs(int(v)) for v in qg.layers[1].add_m)
    assert lowered["maxpool"].post is None and lowered["conv"].post is not None
    plo, phi = qg.tensors[p].range
    assert lowered["maxpool"].acc == qg.tensors[c].range and lowered["avgpool"].acc == (4 * plo, 4 * phi)
    for low in lowered.values():
        assert bits_for_range(min(low.acc[0], 0), max(low.acc[1], 0)) <= prog.acc_bits
        if low.post is not None:
            assert bits_for_range(min(low.post[0], 0), max(low.post[1], 0)) <= prog.post_bits
            assert prog.n_min <= low.shift[0] and low.shift[1] <= prog.n_max
    # The ROM images are the lowerings' parts back to back.
    images = roms.images(2, 2)
    assert images["bias"].shape[0] == sum(s.cout for low in lowered.values() for s in low.steps)
    assert np.array_equal(images["weights"], prog.weights) and np.array_equal(images["lut"], prog.lut)


def test_the_scheduler_imports_no_rtl():
    """The scheduler and estimator compute every width as plain integers (no Amaranth)."""
    import subprocess
    import sys

    code = ("import sys, hwflow.schedule, hwflow.schedule.estimate, hwflow.schedule.descriptor; "
            "print([m for m in sys.modules if m.split('.')[0] == 'amaranth' or m.startswith('hwflow.rtl')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_fit_error_says_when_the_weights_would_fit_the_spram_but_the_rest_does_not():
    b = GraphBuilder(seed=0)
    x = b.input_tensor((1, 16, 48, 48))  # a 36,864-code input: the activation RAM alone overflows
    b.gemm(b.conv(x, 4, k=1, pad=0), 10)
    with pytest.raises(FitError, match=r"would need 4 of the 4 spram blocks \(SB_SPRAM256KA, 256 kbit\), and the "
                                       r"rest still \d+ bram blocks; try"):
        schedule(b.build(), "fpga-tiny")
