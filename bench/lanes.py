"""LUTs of one MAC lane, by lane type, measured with Yosys on a MAC array alone (issue 15).

Each row synthesises ``rtl/mac_array.py``'s ``MacArray`` (PE x SIMD, 8-bit activations)
with the target family's Yosys command (``synth_ecp5 -abc9``, ``synth_ice40 -dsp``) and
counts cells as ``hwflow synth`` does (an ECP5 CCU2C is two LUT4s). The same array with
every lane on a DSP is the baseline: its LUTs are the adder trees, accumulators and
control, so ``(LUTs - baseline LUTs) / lanes`` is what one lane's product costs in LUTs:

- ``mul-lut``: an 8 x 8 multiplier as a shift-add tree in LUTs (``lut_products``);
- ``pot4``: the shift lane for 4-bit power-of-two codes (``pot_products``: a barrel
  shift by 0..6, a negation), products 8 x 8 bits wide like the multiplier's.

The ``lane/mul`` column is a lane's cost over the LUT multiplier's (goal: <= 40 %).

A second table synthesises the XNOR-popcount unit alone (``rtl/xnor_array.py``, ``--xrows``
rows of ``--simd`` binary MACs, 2-bit bipolar input lanes, accumulators for a 256-input
layer, one chunk a tile) against the estimator's count of the same unit
(``estimate.block_features``' ``xnor`` block without its ROM): the LUTs and FFs one binary
MAC costs with its share of the accumulators and output buffer.

    python bench/lanes.py [--family ecp5,ice40] [--pe 4 --simd 4] [--xrows 16,64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwflow.quant.arith import bits_for_range  # noqa: E402
from hwflow.rtl.mac_array import MacArray  # noqa: E402
from hwflow.rtl.xnor_array import XnorArray  # noqa: E402
from hwflow.schedule.estimate import xnor_lane_cost  # noqa: E402
from hwflow.synth.yosys import find_yosys, parse_stat  # noqa: E402

SYNTH = {"ecp5": "synth_ecp5 -abc9", "ice40": "synth_ice40 -dsp"}


def synth(dut, family: str) -> dict:
    """Yosys resource counts of ``dut`` (an Amaranth component) for ``family``."""
    with tempfile.TemporaryDirectory() as d:
        out = dut.out if isinstance(dut, XnorArray) else dut.acc
        ports = [p for p in (dut.a, dut.w, dut.valid, dut.first, dut.last, out, dut.out_valid)]
        Path(d, "mac.v").write_text(verilog.convert(dut, name="mac", ports=ports))
        Path(d, "s.ys").write_text(f"read_verilog mac.v\n{SYNTH[family]} -top mac\nstat -json\ntee -o stat.json stat -json\n")
        subprocess.run([*find_yosys(), "-q", "-s", "s.ys"], cwd=d, check=True, capture_output=True)
        return parse_stat(json.loads(Path(d, "stat.json").read_text()), family)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="ecp5,ice40")
    ap.add_argument("--pe", type=int, default=4)
    ap.add_argument("--simd", type=int, default=4)
    ap.add_argument("--xrows", default="16,64")
    args = ap.parse_args(argv)
    pe, simd, ab = args.pe, args.simd, 8
    n = pe * simd
    acc = 8 + ab + 8
    print(f"# python bench/lanes.py --family {args.family} --pe {pe} --simd {simd} --xrows {args.xrows}")
    print(f"# MacArray PE {pe} x SIMD {simd}, {ab}-bit activations, {acc}-bit accumulators; LUT4s")
    print(f"{'family':7} {'lane':8} {'LUTs':>6} {'FFs':>6} {'DSPs':>5} {'LUTs/lane':>10} {'lane/mul':>9}")
    for fam in args.family.split(","):
        base = synth(MacArray(pe, simd, 8, ab, acc), fam)
        rows = {"mul-dsp": base,
                "mul-lut": synth(MacArray(pe, simd, 8, ab, acc, dsp_mults=0), fam),
                "pot4": synth(MacArray(pe, simd, 8, ab, acc, lane="pot", cbits=4), fam)}
        mul = (rows["mul-lut"]["lut"] - base["lut"]) / n
        for name, r in rows.items():
            per = (r["lut"] - base["lut"]) / n
            print(f"{fam:7} {name:8} {r['lut']:6d} {r['ff']:6d} {r['dsp']:5d} {per:10.1f} "
                  f"{per / mul:9.0%}")
    xb = bits_for_range(-256, 256)
    print(f"\n# XnorArray rows x SIMD {simd}, 2-bit input lanes, {xb}-bit accumulators; LUT4s; "
          "est.: the estimator's xnor block without its ROM")
    print(f"{'family':7} {'rows':>5} {'MACs':>5} {'LUTs':>6} {'FFs':>6} {'LUTs/MAC':>9} {'FFs/MAC':>8} "
          f"{'est. LUTs':>9} {'est. FFs':>8}")
    for fam in args.family.split(","):
        for rows in (int(r) for r in args.xrows.split(",")):
            r = synth(XnorArray(rows, simd, 2, xb), fam)
            xn = rows * simd
            lane_l, lane_f = xnor_lane_cost(simd, fam)
            est_l = xn * lane_l + 2 * rows * xb + 2 * rows.bit_length() + 4
            est_f = xn * lane_f + 2 * rows * xb + simd + 7 + 2 * rows.bit_length()
            print(f"{fam:7} {rows:5d} {xn:5d} {r['lut']:6d} {r['ff']:6d} {r['lut'] / xn:9.2f} {r['ff'] / xn:8.2f} "
                  f"{est_l:9.0f} {est_f:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
