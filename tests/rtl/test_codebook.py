# amaranth: UnusedElaboratable=no
"""Codebook lookup against its numpy model (per-layer tables selected by ROM address)."""

import numpy as np
import pytest

from hwflow.rtl.codebook import CodebookLookup, index_image, lookup_model
from hwflow.rtl.weight_rom import pack_words
from hwflow.sim.beats import pack, unpack


def test_index_image_roundtrip_and_rejects_foreign_weights():
    book = np.array([-7, 0, 3, 9])
    w = np.array([[9, 0], [-7, 3]])
    idx = index_image(w, book, 2)
    raw = idx & 3
    assert np.array_equal(book[raw], w)
    pack_words(idx.reshape(1, 2, 2), 2)  # fits the ROM's signed packing
    with pytest.raises(ValueError, match=r"not in the codebook"):
        index_image(np.array([4]), book, 2)


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"bases must start at 0"):
        CodebookLookup([[1], [2]], [1, 5], 4, 2, 8, 8)
    with pytest.raises(ValueError, match=r"codebook 0 needs 1..4 entries"):
        CodebookLookup([[1, 2, 3, 4, 5]], [0], 4, 2, 8, 8)
    with pytest.raises(ValueError, match=r"exceeds signed 4 bits"):
        CodebookLookup([[8]], [0], 4, 2, 4, 8)


@pytest.mark.sim
@pytest.mark.parametrize("ibits,lanes", [(2, 4), (3, 6), (5, 1)])
def test_lookup_matches_model_with_latency_1(run_sim, ibits, lanes):
    rng = np.random.default_rng(ibits)
    wbits = 8
    books = [np.sort(rng.choice(np.arange(-128, 128), size=s, replace=False))
             for s in (1 << ibits, (1 << ibits) - 1, 2)]
    bases = [0, 7, 20]
    dut = CodebookLookup(books, bases, lanes, ibits, wbits, 5)
    assert dut.latency == 1
    stim = [(int(rng.integers(0, 32)), rng.integers(0, 1 << ibits, size=lanes)) for _ in range(60)]

    async def bench(ctx):
        for addr, raw in stim:
            ctx.set(dut.addr, addr)
            ctx.set(dut.idx, pack(raw, [range(lanes)], ibits)[0])
            await ctx.tick()  # registered: the lookup appears after one clock edge
            want = lookup_model(raw, addr, books, bases, ibits).tolist()
            assert unpack([ctx.get(dut.w)], [range(lanes)], wbits) == want

    run_sim(dut, bench)


@pytest.mark.sim
def test_lookup_has_no_combinational_path(run_sim):
    books = [np.array([-3, 5]), np.array([7, -8])]
    dut = CodebookLookup(books, [0, 4], 2, 1, 8, 3)

    async def bench(ctx):
        ctx.set(dut.addr, 0)
        ctx.set(dut.idx, pack([1, 0], [range(2)], 1)[0])
        await ctx.tick()
        assert unpack([ctx.get(dut.w)], [range(2)], 8) == [5, -3]
        ctx.set(dut.addr, 4)  # change inputs: the output must not move before the edge
        ctx.set(dut.idx, pack([0, 0], [range(2)], 1)[0])
        await ctx.delay(1e-9)
        assert unpack([ctx.get(dut.w)], [range(2)], 8) == [5, -3]
        await ctx.tick()
        assert unpack([ctx.get(dut.w)], [range(2)], 8) == [7, 7]

    run_sim(dut, bench)


@pytest.mark.sim
def test_accelerator_with_codebook_rom_is_bit_and_cycle_exact():
    """A shared CNN (3-bit codebooks, padded lanes): the ROM holds indices, the hardware
    looks weights up, and outputs and cycles equal the reference and the schedule."""
    from pathlib import Path

    from hwflow.config import PruneConfig
    from hwflow.flow import load_graph, quantize_graph
    from hwflow.quant import QuantConfig
    from hwflow.quant.reference import run_int
    from _support.accel_sim import simulate
    from hwflow.schedule import schedule

    models = Path(__file__).resolve().parents[2] / "examples" / "models"
    graph = load_graph(models / "digits_cnn.onnx")
    calib = np.load(models / "digits_cnn_calib.npz")["x"][:32].astype(np.float32).reshape(-1, 1, 8, 8)
    qg = quantize_graph(graph, calib, QuantConfig(), prune=PruneConfig(sparsity=0.3, share=3)).qgraph
    plain = schedule(qg, "generic", pe=2, simd=4)
    assert plain.ibits == 3 and plain.latency["codebook"] == 1
    assert plain.weights.shape[1:] == (2, 4) and plain.weights.min() >= -4 and plain.weights.max() <= 3
    books = sum(len(b) for b in plain.codebooks) * plain.wbits
    assert plain.weight_rom_bits == plain.weights.shape[0] * 8 * 3 + books
    tin = qg.tensors[qg.input]
    xs = [tin.quantize(calib[i]) for i in range(2)]
    outs, cycles, measured = simulate(plain, xs)
    for x, o in zip(xs, outs):
        assert np.array_equal(np.asarray(run_int(qg, x)).reshape(-1), np.asarray(o).reshape(-1))
    assert cycles == measured == [plain.cycles] * 2
