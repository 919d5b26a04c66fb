"""Accuracy against compression: magnitude pruning x weight sharing (and channel pruning).

For each example model (the digits MLP and CNN, and the 784-100-10 tanh MLP on digits
upsampled to 28x28), every configuration is pruned, quantized (hwflow defaults: asymmetric,
per-channel 8-bit weights, MSE calibration, GPTQ rounding) and shared, then:

- accuracy of the integer reference on the test set, and the drop against float;
- the storage report (``hwflow.prune.storage``): its host-side what-if figures, marked ``~``
  (the sparse relative-index encoding of the shared weights, and the Huffman bound; the
  hardware builds neither) and their ratios against fp32, and what the hardware's weight
  ROM holds (``ROM``: the scheduled Program's weight ROM bits, dense; with sharing b-bit
  indices plus codebooks);
- where it fits: each target's scheduler budget check (block RAM, DSP, LUT) at its default
  array shape ("yes" or "no").

The row marked ``*`` is the goal configuration for fpga-tiny: the 784-100-10 tanh MLP
with <= 1 pp accuracy loss, >= 20x smaller than fp32, fitting fpga-tiny.

    python bench/compression.py [--models digits784_tanh_mlp,...] [--quick]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from hwflow.config import PruneConfig
from hwflow.data import load_data
from hwflow.errors import FitError
from hwflow.flow import load_graph, quantize_graph
from hwflow.quant import QuantConfig
from hwflow.quant.evaluate import compare, float_logits, quant_logits
from hwflow.schedule import schedule
from hwflow.targets import load_target

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
TARGETS = ("fpga-tiny", "fpga-small", "fpga-medium")
SPARSITY = (0.0, 0.5, 0.8, 0.9, 0.95)
SHARE = (None, 5, 4, 3, 2)
#: extra rows: (prune_channels, prune, share)
EXTRA = {"digits784_tanh_mlp": [(0.4, None, 2), (0.44, None, 2), (0.44, None, 3), (0.5, None, 2), (0.3, 0.5, 2)]}
GOAL = ("digits784_tanh_mlp", (0.44, None, 2))


def _fits(qg) -> tuple[dict[str, str], int]:
    out = {}
    for t in TARGETS:
        try:
            schedule(qg, t)
            out[t] = "yes"
        except FitError:
            out[t] = "no"
    # ROM bits at fpga-tiny's array shape (PE x SIMD padding depends on the shape)
    tiny = load_target(TARGETS[0])
    return out, schedule(qg, "generic", pe=tiny.pe, simd=tiny.simd).weight_rom_bits


def run(models: list[str], quick: bool) -> list[dict]:
    rows = []
    for name in models:
        graph = load_graph(MODELS / f"{name}.onnx")
        shape = graph.shape(graph.inputs[0])
        x, y = load_data(MODELS / f"{name}_test.npz", shape)
        calib, _ = load_data(MODELS / f"{name}_calib.npz", shape)
        ref = float_logits(graph, quantize_plain(graph, calib), x)
        float_acc = float((ref.argmax(1) == y).mean())
        print(f"# {name}: float accuracy {100 * float_acc:.2f} % on {len(x)} test samples", flush=True)
        grid = [(None, s or None, b) for s in (SPARSITY[::2] if quick else SPARSITY) for b in (SHARE[::2] if quick else SHARE)]
        grid += EXTRA.get(name, [])
        for ch, sp, b in grid:
            t0 = time.perf_counter()
            prune = PruneConfig(sparsity=sp, channels=ch, share=b) if (ch, sp, b) != (None, None, None) else None
            q = quantize_graph(graph, calib, QuantConfig(), prune=prune)
            qg, storage = q.qgraph, q.storage
            acc = compare(ref, quant_logits(qg, x), y)["quant_accuracy"]
            fits, rom = _fits(qg)
            tot = storage["total"] if storage else None
            rows.append({
                "model": name, "channels": ch, "sparsity": sp, "share": b, "float": float_acc, "acc": acc,
                "drop_pp": 100 * (float_acc - acc),
                "kbit_sparse": (tot["sparse"] if tot else qg.weight_bits()) / 1024,
                "ratio_sparse": tot["ratio_sparse"] if tot else 4.0,
                "ratio_huffman": tot["ratio_huffman"] if tot else None,
                "rom_kbit": rom / 1024, "ratio_rom": (32 * sum(graph.tensors[n.inputs[1]].size for n in graph.nodes
                                                               if n.op in ("Conv", "Gemm"))) / rom,
                "fits": fits, "goal": (name, (ch, sp, b)) == GOAL, "seconds": time.perf_counter() - t0,
            })
            print_row(rows[-1], flush=True)
    return rows


def quantize_plain(graph, calib):
    from hwflow.quant import quantize

    return quantize(graph, QuantConfig(), calib)


HEADER = (f"{'model':<20}{'chan':>5}{'sparse':>7}{'share':>6}{'acc %':>8}{'drop pp':>8}{'~kbit':>8}"
          f"{'~x fp32':>8}{'~x huff':>8}{'ROM kbit':>9}{'x ROM':>7}  " + " ".join(f"{t:>11}" for t in TARGETS))


def print_row(r: dict, flush: bool = False) -> None:
    f = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    print(f"{r['model']:<20}{f(r['channels'], '.2f'):>5}{f(r['sparsity'], '.2f'):>7}{f(r['share'], 'd'):>6}"
          f"{100 * r['acc']:>8.2f}{r['drop_pp']:>+8.2f}{r['kbit_sparse']:>8.1f}{r['ratio_sparse']:>8.1f}"
          f"{f(r['ratio_huffman'], '.1f'):>8}{r['rom_kbit']:>9.1f}{r['ratio_rom']:>7.1f}  "
          + " ".join(f"{r['fits'][t]:>11}" for t in TARGETS) + ("  *" if r["goal"] else ""), flush=flush)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits_mlp,digits_cnn,digits784_tanh_mlp")
    ap.add_argument("--quick", action="store_true", help="sparsity 0/0.8/0.95 x sharing none/4/2 only")
    args = ap.parse_args(argv)
    print("$ python bench/compression.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])))
    print("~: host-side what-if figures, not built by the hardware: ~kbit the sparse+shared encoding (storage report), "
          "~x fp32 / ~x huff its ratio and the Huffman bound's against fp32; ROM: the scheduled weight ROM (fpga-tiny's PE x SIMD) and its ratio; fits: the target's budget check at its default PE x SIMD")
    print(HEADER)
    rows = run(args.models.split(","), args.quick)
    goal = [r for r in rows if r["goal"]]
    if goal:
        g = goal[0]
        ok = g["drop_pp"] <= 1.0 and g["ratio_rom"] >= 20 and g["fits"]["fpga-tiny"] == "yes"
        print(f"\ngoal (784-100-10 tanh MLP on fpga-tiny, <= 1 pp, >= 20x): drop {g['drop_pp']:+.2f} pp, "
              f"ROM {g['ratio_rom']:.1f}x smaller than fp32, fits fpga-tiny: {g['fits']['fpga-tiny']} -> "
              f"{'MET' if ok else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
