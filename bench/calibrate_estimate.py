"""Calibrate the LUT/FF estimate (hwflow/schedule/estimate.py) against real synthesis, block by block.

For a set of designs (the example models x array shapes x weight widths x families) it
compiles the RTL and synthesizes it with the target family's Yosys script, flattened as
``hwflow synth`` does, then splits the netlist's LUTs and FFs by RTL block (ctrl, mac,
ser, rq, pool, crom, lut, act, wrom, and the top-level glue "top"): Yosys keeps each
cell's source line through mapping, and Amaranth writes one Verilog module per block.
(Synthesizing with ``-noflatten`` instead overstates the blocks by 10-30 %: flattening
lets ABC merge logic across blocks and propagate the descriptor's constant fields.)
Where the design fits the real device it runs ``hwflow synth`` itself (Yosys + nextpnr:
the figures the issue's 20 % goal and ``bench/synth.py`` use) and fits the packing from
Yosys's counts to nextpnr's. Measurements are cached in a JSON file, so coefficients
can be refitted without re-running the tools.

    python bench/calibrate_estimate.py measure                 # synthesize every design (slow)
    python bench/calibrate_estimate.py measure --only digits_cnn --shapes 4x4 --no-pnr
    python bench/calibrate_estimate.py table                   # per block: estimate, Yosys, error
    python bench/calibrate_estimate.py fit                     # refit every block's coefficients
    python bench/calibrate_estimate.py fit --blocks mac --write  # refit one block, rewrite the coefficients

After an RTL change re-measure (``measure --force``, or a fresh ``--cache``), then
``fit --write``, which rewrites ``hwflow/schedule/estimate_coefficients.json``. LUTs are counted as ``hwflow synth`` counts them: ECP5 LUT4 + 2 x CCU2C
(+ 2 x DPR16X4), iCE40 SB_LUT4; FFs TRELLIS_FF / SB_DFF*.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import dataclasses
import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"
CACHE = Path(tempfile.gettempdir()) / "hwflow-calibrate-estimate-flat.json"
_COEF_FILE = ROOT / "hwflow" / "schedule" / "estimate_coefficients.json"

MODEL_NAMES = ("digits_mlp", "digits_cnn", "digits784_tanh_mlp")
SHAPES = {"ecp5": ("1x1", "2x2", "4x4", "8x8", "2x8", "8x2"), "ice40": ("1x1", "2x2", "4x4", "2x4")}
WBITS = (8, 4)
# Real targets for the whole-design (nextpnr) figure; 8x8 needs the 85F's DSPs.
_PNR_TARGET = {"ecp5": ("fpga-small", "fpga-medium"), "ice40": ("fpga-tiny",)}


def design_key(model: str, family: str, shape: str, wbits: int) -> str:
    return f"{model}/{family}/{shape}/w{wbits}"


def designs(models=MODEL_NAMES, families=("ecp5", "ice40"), shapes=None, wbits=WBITS):
    for model in models:
        for family in families:
            for shape in (shapes or SHAPES[family]):
                for wb in wbits:
                    yield model, family, shape, wb


# ---- building ------------------------------------------------------------------------------

_QCACHE: dict = {}


def program_for(model: str, family: str, shape: str, wbits: int):
    """Schedule ``model`` on a ``family`` device with unlimited resources (no budget check)."""
    from hwflow.data import load_data
    from hwflow.ir import load_model
    from hwflow.passes import optimize
    from hwflow.quant import QuantConfig, quantize
    from hwflow.schedule import schedule
    from hwflow.targets import load_target

    key = (model, wbits)
    if key not in _QCACHE:
        g = optimize(load_model(MODELS / f"{model}.onnx"))
        calib, _ = load_data(MODELS / f"{model}_calib.npz", g.shape(g.inputs[0]))
        _QCACHE[key] = quantize(g, QuantConfig(wbits=wbits), calib)
    tgt = load_target("fpga-small" if family == "ecp5" else "fpga-tiny")
    tgt = dataclasses.replace(tgt.with_memory(**{k.name: None for k in tgt.memory}), luts=None, ffs=None, dsps=None)
    pe, simd = (int(v) for v in shape.split("x"))
    return schedule(_QCACHE[key], tgt, pe=pe, simd=simd), tgt


_LUT_WEIGHT = {"ecp5": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 2}, "ice40": {"SB_LUT4": 1}}


def _is_ff(cell: str, family: str) -> bool:
    return cell == "TRELLIS_FF" if family == "ecp5" else cell.startswith("SB_DFF")


def _module_ranges(vtext: str, top: str):
    """(first line, block) of every module in the generated Verilog."""
    out = []
    for i, line in enumerate(vtext.splitlines(), 1):
        m = re.match(r"module\s+(\\\S+|[\w$]+)", line)
        if m:
            name = m.group(1).lstrip("\\")
            out.append((i, "top" if name == top else
                        name[len(top) + 1:].split(".")[0] if name.startswith(top + ".") else "wrom"))
    return out


def attribute_blocks(vtext: str, vname: str, netlist: dict, module: str, top: str, family: str) -> dict:
    """Per-block LUT/FF of a *flattened* netlist: ``{block: {"lut", "ff"}}``.

    Yosys keeps each cell's ``src`` (file:line of the generated Verilog) through mapping,
    and Amaranth writes one Verilog module per RTL block, so the line says the block.
    Cells without one (a few made by optimisation passes, the I/O wrapper) take the block
    most of their neighbours have. The blocks sum exactly to the flat design's figures.
    """
    ranges = _module_ranges(vtext, top)
    starts = [r[0] for r in ranges]
    cells = netlist["modules"][module]["cells"]
    pat = re.compile(re.escape(vname) + r":(\d+)")
    blk: dict = {}
    known = {b for _, b in ranges}
    by_name = re.compile(r"^(?:\$flatten\\|\$memory\\)?\\?([A-Za-z_]\w*)\.")
    for name, c in cells.items():
        m = pat.search(c.get("attributes", {}).get("src", ""))
        if m:
            blk[name] = ranges[bisect.bisect_right(starts, int(m.group(1))) - 1][1]
            continue
        # Mapped cells carry the technology library's source; their names follow the
        # (hierarchical) net they drive: "ctrl.counter_..._LUT4_Z".
        m = by_name.match(name)
        if m and m.group(1) in known:
            blk[name] = m.group(1)
    nets = collections.defaultdict(list)
    for name, c in cells.items():
        for bits in c["connections"].values():
            for b in bits:
                if isinstance(b, int):
                    nets[b].append(name)
    todo = [n for n in cells if n not in blk]
    for _ in range(20):
        left = []
        for n in todo:
            votes = collections.Counter(blk[o] for bits in cells[n]["connections"].values() for b in bits
                                        if isinstance(b, int) for o in nets[b] if o in blk)
            if votes:
                blk[n] = votes.most_common(1)[0][0]
            else:
                left.append(n)
        if not left or len(left) == len(todo):
            break
        todo = left
    out: dict = {}
    weights = _LUT_WEIGHT[family]
    for name, c in cells.items():
        b = out.setdefault(blk.get(name, "top"), {"lut": 0, "ff": 0})
        b["lut"] += weights.get(c["type"], 0)
        b["ff"] += int(_is_ff(c["type"], family))
    return out


def synth_blocks(prog, family: str, work: Path) -> dict:
    """Flattened Yosys (the target family's ``hwflow synth`` script): per-block LUT/FF."""
    from hwflow.rtl.accelerator import to_verilog
    from hwflow.synth._tools import run_tool
    from hwflow.synth.yosys import find_yosys
    from hwflow.targets import load_target

    top = "cal"
    vtext = to_verilog(prog, top)
    (work / "cal.v").write_text(vtext, encoding="utf-8")
    synth = load_target("fpga-small" if family == "ecp5" else "fpga-tiny").yosys_synth
    (work / "flat.ys").write_text(f"read_verilog -sv cal.v\n{synth} -top {top} -json flat.json\n",
                                  encoding="utf-8")
    secs = run_tool([*find_yosys(), "-q", "-s", "flat.ys"], work, work / "flat.log", "Yosys")
    out = attribute_blocks(vtext, "cal.v", json.loads((work / "flat.json").read_text()), top, top, family)
    out["_seconds"] = round(secs, 1)
    return out


def synth_whole(model: str, family: str, shape: str, wbits: int, work: Path) -> dict | None:
    """``hwflow synth`` (flattened Yosys + nextpnr) on the real target; None if it does not fit.

    Also attributes its flattened netlist to blocks (``"blocks"``)."""
    from hwflow.errors import FitError
    from hwflow.flow import compile_model
    from hwflow.quant import QuantConfig
    from hwflow.synth import synthesize

    pe, simd = (int(v) for v in shape.split("x"))
    for target in _PNR_TARGET[family]:
        build = work / f"build-{target}"
        try:
            man = compile_model(MODELS / f"{model}.onnx", target, build, QuantConfig(wbits=wbits),
                                MODELS / f"{model}_calib.npz", pe, simd, top="cal")
        except FitError:
            continue
        rep = synthesize(build)
        vname = man["verilog"]
        netlist = json.loads((build / "synth" / f"{rep['synth_top']}.json").read_text())
        blocks = attribute_blocks((build / vname).read_text(), vname, netlist, rep["synth_top"], "cal", family)
        if not rep["fits"] or rep["fmax_mhz"] is None:
            return {"blocks": blocks}
        res = rep["resources"]
        return {"target": target, "lut": res["lut"]["used"], "ff": res["ff"]["used"],
                "yosys_lut": sum(b["lut"] for b in blocks.values()),
                "yosys_ff": sum(b["ff"] for b in blocks.values()), "fmax_mhz": rep["fmax_mhz"],
                "seconds": rep["seconds"], "blocks": blocks}
    return None


def measure(args) -> None:
    cache = _load(args.cache)
    todo = [d for d in designs(args.only or MODEL_NAMES, args.families, args.shapes, args.wbits)
            if args.force or design_key(*d) not in cache]
    for i, d in enumerate(todo):
        key = design_key(*d)
        print(f"[{i + 1}/{len(todo)}] {key}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hwflow-cal-") as tmp:
            work = Path(tmp)
            try:
                prog, _ = program_for(*d)
            except Exception as exc:  # noqa: BLE001 - record why a design was skipped
                cache[key] = {"error": f"{type(exc).__name__}: {exc}"}
                _save(args.cache, cache)
                continue
            whole = None if args.no_pnr else synth_whole(*d, work)
            if whole is not None and "blocks" in whole:
                entry = {"blocks": whole.pop("blocks")}
                if "lut" in whole:
                    entry["whole"] = whole
            else:
                entry = {"blocks": synth_blocks(prog, d[1], work)}
            if args.keep_netlists:
                keep = Path(args.keep_netlists)
                keep.mkdir(parents=True, exist_ok=True)
                for f in [*work.glob("flat.json"), *work.glob("build-*/synth/*.json"), *work.glob("cal.v"),
                          *work.glob("build-*/cal.v")]:
                    if f.name not in ("yosys_stat.json", "nextpnr_report.json"):
                        shutil.copy(f, keep / f"{key.replace('/', '_')}_{f.name}")
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        cache = _load(args.cache)
        cache[key] = entry
        _save(args.cache, cache)
        w = entry.get("whole") or {}
        print(f"    Yosys LUT {sum(b['lut'] for k, b in entry['blocks'].items() if k[0] != '_')}"
              f" FF {sum(b['ff'] for k, b in entry['blocks'].items() if k[0] != '_')}"
              f"  placed LUT {w.get('lut')} FF {w.get('ff')}  ({entry['seconds']} s)",
              file=sys.stderr, flush=True)


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, cache: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


# ---- comparing and fitting -----------------------------------------------------------------

def _rows(cache: dict):
    """(key, program, family, entry) for every measured design."""
    for key, entry in sorted(cache.items()):
        if "blocks" not in entry:
            continue
        model, family, shape, wb = key.split("/")
        prog, _ = program_for(model, family, shape, int(wb[1:]))
        # The weight ROM's logic (data register, depth mux) is named after either side of
        # the ROM -> MAC array connection: the estimate counts it in "mac".
        blocks = {k: dict(v) for k, v in entry["blocks"].items() if not k.startswith("_")}
        w = blocks.pop("wrom", None)
        if w:
            m = blocks.setdefault("mac", {"lut": 0, "ff": 0})
            m["lut"] += w["lut"]
            m["ff"] += w["ff"]
        yield key, prog, family, {**entry, "blocks": blocks}


def _pct(est: float, got: float) -> str:
    return f"{100 * (est - got) / got:+.0f}%" if got else ("0" if est == got else "inf")


def table(args) -> None:
    from hwflow.schedule.estimate import block_estimates, estimate

    print("$ python bench/calibrate_estimate.py " + " ".join(sys.argv[1:]))
    blocks_wanted = args.blocks.split(",") if args.blocks else None
    head = ("design", "block", "LUT est", "LUT yosys", "err", "FF est", "FF yosys", "err")
    lines = [head]
    whole = [("design", "target", "LUT est", "LUT placed", "err", "FF est", "FF placed", "err",
              "Yosys LUT", "FF")]
    for key, prog, family, entry in _rows(_load(args.cache)):
        est = block_estimates(prog, family)
        blocks = {k: v for k, v in entry["blocks"].items() if not k.startswith("_")}
        for b in sorted(set(est) | set(blocks)):
            if blocks_wanted and b not in blocks_wanted:
                continue
            e = est.get(b, {"lut": 0, "ff": 0})
            g = blocks.get(b, {"lut": 0, "ff": 0})
            lines.append((key, b, round(e["lut"]), g["lut"], _pct(e["lut"], g["lut"]),
                          round(e["ff"]), g["ff"], _pct(e["ff"], g["ff"])))
        w = entry.get("whole")
        if w:
            tot = estimate(prog, _family_target(family, w["target"]))
            whole.append((key, w["target"], tot["luts"], w["lut"], _pct(tot["luts"], w["lut"]),
                          tot["ffs"], w["ff"], _pct(tot["ffs"], w["ff"]), w["yosys_lut"], w["yosys_ff"]))
    if not args.whole_only:
        print(_fmt(lines))
        print()
    print(_fmt(whole))


def _family_target(family: str, name: str):
    from hwflow.targets import load_target

    return load_target(name)


def _fmt(lines) -> str:
    widths = [max(len(str(l[i])) for l in lines) for i in range(len(lines[0]))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(l, widths)).rstrip() for l in lines]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)


def fit(args) -> None:
    """Least squares (non-negative) of each block's Yosys figure on its features."""
    from scipy.optimize import nnls

    est_mod = importlib.import_module("hwflow.schedule.estimate")

    rows = list(_rows(_load(args.cache)))
    coef = json.loads(_COEF_FILE.read_text(encoding="utf-8"))
    wanted = args.blocks.split(",") if args.blocks else None
    for family in ("ecp5", "ice40"):
        fam_rows = [r for r in rows if r[2] == family]
        if not fam_rows:
            continue
        feats = [(r, est_mod.block_features(r[1], family)) for r in fam_rows]
        blocks = sorted({b for _, f in feats for b in f})
        before = coef[family]
        if not wanted:  # a full refit: only the blocks the features name
            coef[family] = {b: {"lut": {}, "ff": {}} for b in blocks} | {"pack": before["pack"]}
        for block in blocks:
            if wanted and block not in wanted:
                continue
            for res in ("lut", "ff"):
                names = sorted(est_mod.block_features(fam_rows[0][1], family)[block][res]) or \
                    sorted({n for _, f in feats for n in f.get(block, {}).get(res, {})})
                # A feature no design exercises (e.g. a pool unit: the examples fuse their
                # MaxPools) keeps its previous coefficient, default 1 (one cell per unit).
                keep = {n: before.get(block, {}).get(res, {}).get(n, 1.0) for n in names
                        if not any(f.get(block, {}).get(res, {}).get(n, 0) for _, f in feats)}
                coef[family].setdefault(block, {"lut": {}, "ff": {}})[res] = dict(keep)
                names = [n for n in names if n not in keep]
                if not names:
                    continue
                A = np.array([[f.get(block, {}).get(res, {}).get(n, 0) for n in names] for _, f in feats], float)
                y = np.array([r[3]["blocks"].get(block, {}).get(res, 0) for r, _ in feats], float)
                # Relative error matters: weight each row by 1/max(y, 20).
                wgt = 1 / np.maximum(y, 20)
                x, _ = nnls(A * wgt[:, None], y * wgt)
                coef[family][block][res].update({n: round(float(v), 3) for n, v in zip(names, x)})
                pred = A @ x
                worst = np.max(np.abs(pred - y) / np.maximum(y, 20))
                print(f"{family:5} {block:5} {res:3} " + ", ".join(f"{n}={v:.3f}" for n, v in zip(names, x))
                      + f"   worst {100 * worst:.0f}% over {len(y)} designs")
        # Packing: the placed figure against the sum of the block formulas (so the factor
        # also takes up what the block fits miss on average, e.g. the iCE40 I/O wrapper).
        whole = [(r, f) for r, f in feats if r[3].get("whole")]
        if whole and not wanted:
            def total(f, res):
                return sum(coef[family].get(b, {}).get(res, {}).get(n, 0) * v
                           for b, fr in f.items() for n, v in fr[res].items())

            ylut = np.array([total(f, "lut") for _, f in whole], float)
            yff = np.array([total(f, "ff") for _, f in whole], float)
            whole = [r for r, _ in whole]
            got = np.array([r[3]["whole"]["lut"] for r in whole], float)
            if family == "ice40":
                # A logic cell holds a LUT and a FF: cells = LUTs + the FFs no LUT feeds.
                x = [1.0, float(np.exp(np.mean(np.log(np.maximum(got - ylut, 1) / yff))))]
            else:
                x = [float(np.exp(np.mean(np.log(got / ylut)))), 0.0]
            worst = np.max(np.abs((x[0] * ylut + x[1] * yff) / got - 1))
            gff = np.array([r[3]["whole"]["ff"] for r in whole], float)
            rff = float(np.exp(np.mean(np.log(gff / yff))))
            coef[family]["pack"] = {"lut": round(float(x[0]), 3), "lut_ff": round(float(x[1]), 3),
                                    "ff": round(rff, 3)}
            print(f"{family:5} pack  placed LUT = {x[0]:.3f} x block LUTs + {x[1]:.3f} x block FFs "
                  f"(worst {100 * worst:.0f}%), placed FF = {rff:.3f} x block FFs, over {len(got)} designs")
    if args.write:
        tmp = _COEF_FILE.with_suffix(".tmp")
        tmp.write_text(coef_text(coef), encoding="utf-8")
        os.replace(tmp, _COEF_FILE)
        print(f"wrote the coefficients into {_COEF_FILE}")


def coef_text(coef: dict) -> str:
    """The coefficients as ``estimate_coefficients.json`` holds them: one line per block."""
    fams = []
    for fam, blocks in coef.items():
        rows = ",\n".join(f"    {json.dumps(block)}: {json.dumps(res)}" for block, res in blocks.items())
        fams.append(f"  {json.dumps(fam)}: {{\n{rows}\n  }}")
    return "{\n" + ",\n".join(fams) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("measure", "table", "fit"))
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"measurement file (default {CACHE})")
    ap.add_argument("--only", type=lambda s: s.split(","), default=None, help="model stems")
    ap.add_argument("--families", type=lambda s: s.split(","), default=["ecp5", "ice40"])
    ap.add_argument("--shapes", type=lambda s: s.split(","), default=None, help="e.g. 2x2,4x4")
    ap.add_argument("--wbits", type=lambda s: [int(v) for v in s.split(",")], default=list(WBITS))
    ap.add_argument("--keep-netlists", default=None, help="measure: copy the netlists into this directory")
    ap.add_argument("--force", action="store_true", help="re-measure designs already in the cache")
    ap.add_argument("--no-pnr", action="store_true", help="per-block Yosys only (no hwflow synth)")
    ap.add_argument("--blocks", default=None, help="comma-separated blocks to show / refit")
    ap.add_argument("--whole-only", action="store_true", help="table: whole-design rows only")
    ap.add_argument("--write", action="store_true", help=f"fit: rewrite {_COEF_FILE.name}")
    args = ap.parse_args(argv)
    {"measure": measure, "table": table, "fit": fit}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
