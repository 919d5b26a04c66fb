"""Design-space sweep: compile every (PE, SIMD, wbits) point in parallel, tabulate, find the Pareto front.

Each point is a full :func:`hwflow.flow.compile_model` in a worker process (schedule,
budget check, Verilog, test vectors), written to ``DIR/points/pe{P}_simd{S}_w{W}``; the
workers are local processes, or a Dask cluster's (``scheduler="tcp://HOST:PORT"``).
A point that does not fit the target is kept in the table with the reason.

The Pareto front
----------------
A point is on the front when no other fitting point is at least as good in every
objective and better in one. The objectives are latency (cycles), LUTs and DSPs, all
minimized, plus accuracy (agreement without labels), maximized, when ``data`` is given.
Latency against LUTs alone, or against DSPs alone, would be misleading here: the
estimate maps multipliers to DSPs when both operands are 5 bits or wider and to LUTs
otherwise, so an 8-bit point looks free in LUTs and a 4-bit point free in DSPs.
Counting both keeps the trade explicit, and accuracy keeps narrow weights from
looking free. LUT and DSP are the figures *on the target*: multipliers beyond the
target's DSPs are counted as LUTs (``wbits·abits`` each), as the budget check does.
The plot shows latency against LUTs, with DSPs as colour, front points ringed.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HwflowError, OptionError

__all__ = ["SweepPoint", "parse_int_list", "run_sweep", "pareto_front", "format_table", "plot_front"]

SWEEP_JSON = "sweep.json"


@dataclass(frozen=True)
class SweepPoint:
    """One design point."""

    pe: int
    simd: int
    wbits: int

    @property
    def name(self) -> str:
        return f"pe{self.pe}_simd{self.simd}_w{self.wbits}"


def parse_int_list(text: str | int | list, option: str, lo: int = 1, hi: int | None = None) -> list[int]:
    """``"4,8,16"`` → ``[4, 8, 16]``; raises OptionError naming ``option`` on a bad list."""
    if isinstance(text, int):
        items = [text]
    elif isinstance(text, (list, tuple)):
        items = list(text)
    else:
        try:
            items = [int(v) for v in str(text).split(",") if v.strip()]
        except ValueError:
            raise OptionError(f"{option} takes a comma-separated list of integers, not {text!r}") from None
    bad = [v for v in items if v < lo or (hi is not None and v > hi)]
    if not items or bad:
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise OptionError(f"{option} needs integers {rng}, got {text!r}")
    return list(dict.fromkeys(items))


# ---- the worker (a module-level function: it runs in another process) ----------------

_FLOAT: dict[str, Any] = {}  # per-process cache: model path -> optimized float graph


def _float_graph(model: str):
    if model not in _FLOAT:
        from ..flow import load_graph

        _FLOAT[model] = load_graph(model)
    return _FLOAT[model]


def _compile_point(model: str, target: str, point: SweepPoint, abits: int, calib: str | None,
                   data: str | None, out: str) -> dict:
    """Compile one point; returns its table row (``error`` set when it fails)."""
    from ..build import load_build
    from ..flow import compile_model
    from ..quant import QuantConfig
    from ..targets import load_target

    row: dict[str, Any] = {"point": point.name, "pe": point.pe, "simd": point.simd, "wbits": point.wbits,
                           "abits": abits, "error": None, "worker_pid": os.getpid()}
    try:
        tgt = load_target(target)
        m = compile_model(model, tgt, out, QuantConfig(wbits=point.wbits, abits=abits), calib,
                          point.pe, point.simd)
    except HwflowError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    est = m["estimate"]
    wb, ab = m["options"]["quant"]["wbits"], m["options"]["quant"]["abits"]
    dsps, luts = est["dsps"], est["luts"]
    if tgt.dsps is not None and dsps > tgt.dsps:  # spilled multipliers become LUTs (as budget.py counts)
        luts += (dsps - tgt.dsps) * wb * ab
        dsps = tgt.dsps
    row.update(cycles=m["cycles"], latency_us=m["cycles"] / tgt.clock_mhz, luts=luts, dsps=dsps,
               ffs=est["ffs"], bram=est["bram_blocks"], estimate=est,
               weight_rom_bits=m["memory"]["weight_rom_bits"], memory_bits=m["memory"]["total_bits"],
               path=m["path"])
    if data is not None:
        from ..data import load_data
        from ..quant.evaluate import evaluate

        graph = _float_graph(model)
        x, y = load_data(data, graph.shape(graph.inputs[0]))
        res = evaluate(graph, load_build(out).qgraph(), x, y)
        row["weight_bits"] = res["weight_bits"]
        row["agreement"] = res["agreement"]
        row["sqnr_db"] = res["sqnr_db"]
        if "quant_accuracy" in res:
            row["accuracy"], row["float_accuracy"] = res["quant_accuracy"], res["float_accuracy"]
    return row


# ---- where the points run: local processes, or a Dask cluster -----------------------------

#: Seconds to wait for a Dask scheduler before giving up (an unreachable address fails fast).
DASK_CONNECT_TIMEOUT = 10


def _dask_client(address: str):
    """A ``distributed.Client`` on the scheduler at ``tcp://HOST:PORT``; OptionError (one
    line) for a malformed address, a missing extra, or a scheduler not reached in time."""
    import re

    if not isinstance(address, str) or not re.fullmatch(r"(tcp|tls)://[^\s:/]+:\d+", address):
        raise OptionError(f"--scheduler takes a Dask scheduler address tcp://HOST:PORT, not {address!r}")
    try:
        from distributed import Client
    except ImportError:
        raise OptionError("--scheduler needs Dask's distributed package: pip install 'hwflow[dask]'") from None
    try:
        return Client(address, timeout=DASK_CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise OptionError(f"cannot reach the Dask scheduler at {address} within {DASK_CONNECT_TIMEOUT} s "
                          f"({type(exc).__name__}); start one (`dask scheduler`) or drop --scheduler") from None


def _run_points(calls: dict, jobs: int, scheduler: str | None, bar) -> dict:
    """Run ``_compile_point(*args)`` for every ``{point: args}``; returns ``{point: row}``.

    Local worker processes by default; with ``scheduler``, tasks on that Dask cluster (its
    workers must import hwflow and see the model, data and output paths: a shared
    filesystem, as dask-jobqueue clusters have). Each point is independent and
    deterministic, so where it runs changes no result.
    """
    rows = {}
    if scheduler is None:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(_compile_point, *args): pt for pt, args in calls.items()}
            for f in as_completed(futs):
                rows[futs[f]] = f.result()
                bar.advance()
        return rows
    client = _dask_client(scheduler)
    try:
        futs = {pt: client.submit(_compile_point, *args, key=f"hwflow-sweep-{pt.name}-{os.getpid()}", pure=False)
                for pt, args in calls.items()}
        for pt, f in futs.items():
            rows[pt] = f.result()
            bar.advance()
    finally:
        client.close()
    return rows


# ---- Pareto front, table, plot ----------------------------------------------------------

def _objectives(row: dict) -> tuple[float, ...]:
    """Minimized objectives of a row (accuracy negated)."""
    obj = [row["cycles"], row["luts"], row["dsps"]]
    score = row.get("accuracy", row.get("agreement"))
    if score is not None:
        obj.append(-score)
    return tuple(obj)


def pareto_front(rows: list[dict]) -> list[bool]:
    """For each row, whether it is non-dominated among the rows that compiled."""
    objs = [None if r.get("error") else _objectives(r) for r in rows]
    out = []
    for a in objs:
        if a is None:
            out.append(False)
            continue
        dominated = any(b is not None and b != a and all(y <= x for x, y in zip(a, b)) for b in objs)
        out.append(not dominated)
    return out


def objective_names(rows: list[dict]) -> list[str]:
    names = ["latency (cycles) ↓", "LUT ↓", "DSP ↓"]
    if any("accuracy" in r for r in rows):
        names.append("accuracy ↑")
    elif any("agreement" in r for r in rows):
        names.append("agreement ↑")
    return names


def format_table(rows: list[dict], clock_mhz: float) -> str:
    """The text table ``hwflow sweep`` prints (a point that failed shows its error)."""
    acc_key = next((k for k in ("accuracy", "agreement") if any(k in r for r in rows)), None)
    head = ["PE", "SIMD", "wbits", "cycles", f"µs@{clock_mhz:g}MHz", "LUT", "FF", "DSP", "BRAM", "weight kbit"]
    if acc_key:
        head.append(f"{acc_key} %")
    head.append("Pareto")
    cells = []
    for r in rows:
        c = [str(r["pe"]), str(r["simd"]), str(r["wbits"])]
        if not r.get("error"):
            c += [f"{r['cycles']:,}", f"{r['latency_us']:.2f}", f"{r['luts']:,}", f"{r['ffs']:,}", str(r["dsps"]),
                  str(r["bram"]), f"{r['weight_rom_bits'] / 1024:.1f}"]
            if acc_key:
                c.append(f"{100 * r[acc_key]:.2f}" if acc_key in r else "-")
            c.append("*" if r.get("pareto") else "")
        cells.append(c)
    width = [max([len(h)] + [len(c[i]) for c in cells if len(c) == len(head)]) for i, h in enumerate(head)]
    out = ["  ".join(h.rjust(w) for h, w in zip(head, width))]
    for r, c in zip(rows, cells):
        line = "  ".join(x.rjust(w) for x, w in zip(c, width))
        out.append(line + (f"  {r['error']}" if r.get("error") else ""))
    return "\n".join(out)


def plot_front(rows: list[dict], path: Path, title: str) -> Path:
    """Latency against LUTs (DSPs as colour, front ringed, 4-bit and 8-bit as shapes) as PNG."""
    from ..report._figure import figure, png_bytes

    ok = [r for r in rows if not r.get("error")]
    fig = figure(7.5, 4.6)
    ax = fig.add_subplot()
    if ok:
        dsp = np.array([r["dsps"] for r in ok], float)
        norm = (dsp.min(), max(dsp.max(), dsp.min() + 1))
        markers = ["o", "s", "^", "D", "v", "P"]
        wlist = sorted({r["wbits"] for r in ok}, reverse=True)
        sc = None
        for wi, wb in enumerate(wlist):
            sel = [r for r in ok if r["wbits"] == wb]
            sc = ax.scatter([r["latency_us"] for r in sel], [r["luts"] for r in sel],
                            c=[r["dsps"] for r in sel], cmap="viridis", vmin=norm[0], vmax=norm[1],
                            marker=markers[wi % len(markers)], s=60, label=f"{wb}-bit weights", zorder=3)
        front = sorted((r for r in ok if r["pareto"]), key=lambda r: r["latency_us"])
        ax.scatter([r["latency_us"] for r in front], [r["luts"] for r in front], s=220, facecolors="none",
                   edgecolors="#d02020", linewidths=1.8, label="Pareto front", zorder=4)
        for r in ok:
            acc = r.get("accuracy", r.get("agreement"))
            text = f"{r['pe']}x{r['simd']} w{r['wbits']}" + (f"\n{100 * acc:.1f}%" if acc is not None else "")
            up = r["wbits"] == wlist[-1]  # narrowest weights labelled above right, the others below left
            ax.annotate(text, (r["latency_us"], r["luts"]), xytext=(7, 3) if up else (-7, -3),
                        textcoords="offset points", fontsize=6.5, va="bottom" if up else "top",
                        ha="left" if up else "right")
        if sc is not None:
            fig.colorbar(sc, ax=ax, label="DSP blocks")
        ax.margins(x=0.15, y=0.08)
        lat = [r["latency_us"] for r in ok]
        if max(lat) > 10 * min(lat):
            ax.set_xscale("log")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xlabel("latency per inference (µs at the target clock)")
    ax.set_ylabel("LUTs (estimate)")
    ax.set_title(title, fontsize=9)
    path.write_bytes(png_bytes(fig))
    return path


# ---- the sweep ----------------------------------------------------------------------------

def run_sweep(model: str | Path, target: str = "fpga-small", pe=(4, 8, 16), simd=(4, 8), wbits=(8, 4), *,
              abits: int = 8, calib: str | Path | None = None, data: str | Path | None = None,
              jobs: int | None = None, out_dir: str | Path | None = None, quiet: bool = False,
              scheduler: str | None = None) -> dict:
    """Compile every (pe, simd, wbits) combination of ``model`` in parallel processes
    (or on a Dask cluster).

    Parameters
    ----------
    model : path
        The ONNX model.
    target : str
        Target name or TOML file.
    pe, simd, wbits : list of int or "a,b,c"
        The grid.
    abits : int
        Activation bits of every point.
    calib : path, optional
        Calibration data for quantization (and the test vectors of each BUILD).
    data : path, optional
        Test data: accuracy (with labels) and agreement of each point.
    jobs : int, optional
        Worker processes (default: the CPU count, at most the number of points).
    out_dir : path, optional
        Where the builds, ``sweep.json`` and ``pareto.png`` go (default
        ``sweep/<model stem>``); written atomically.
    quiet : bool
        No progress display.
    scheduler : str, optional
        A Dask scheduler's address, ``tcp://HOST:PORT``: the points run as tasks on its
        cluster (``hwflow[dask]``; the workers must see the model, data and output paths)
        instead of local processes. The rows are the same.

    Returns
    -------
    dict
        ``{"model", "target", "clock_mhz", "objectives", "rows", "plot", "path"}``; each
        row has pe, simd, wbits, cycles, latency_us, luts, ffs, dsps, bram, weight_rom_bits,
        (accuracy, agreement), pareto, path, or error.

    Raises
    ------
    OptionError, ModelError, TargetError, DataError
        Bad grid, missing model, unknown target, unreadable data (before any compile);
        a Dask scheduler not reached within :data:`DASK_CONNECT_TIMEOUT` seconds.
    """
    from .._files import atomic_directory, write_json
    from ..targets import load_target
    from .progress import progress

    model = Path(model)
    if not model.is_file():
        from ..errors import ModelError

        raise ModelError(f"model file {str(model)!r} does not exist")
    tgt = load_target(target)
    pes, simds = parse_int_list(pe, "--pe"), parse_int_list(simd, "--simd")
    wbs = parse_int_list(wbits, "--wbits", 2, 16)
    parse_int_list(abits, "--abits", 2, 16)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise OptionError(f"--jobs must be a positive integer, not {jobs!r}")
    graph = _float_graph(str(model))  # fail early (one line) on a bad model or data
    if data is not None:
        from ..data import load_data

        load_data(data, graph.shape(graph.inputs[0]))
    if calib is not None:
        from ..data import load_data

        load_data(calib, graph.shape(graph.inputs[0]))
    out = Path(out_dir) if out_dir is not None else Path("sweep") / model.stem
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / SWEEP_JSON).exists())):
        raise OptionError(f"output {str(out)!r} exists and is not an hwflow sweep; choose another -o")
    points = [SweepPoint(p, s, w) for w in wbs for p in pes for s in simds]
    jobs = jobs or min(len(points), os.cpu_count() or 1)
    if scheduler is not None:
        _dask_client(scheduler).close()  # fail fast (one line) before writing anything
    where = f"{jobs} jobs" if scheduler is None else f"Dask at {scheduler}"
    with atomic_directory(out) as tmp:
        (tmp / "points").mkdir()
        # Absolute paths: a Dask worker runs in its own directory.
        calls = {pt: (str(model.resolve()), target if isinstance(target, str) else tgt.source, pt, abits,
                      None if calib is None else str(Path(calib).resolve()),
                      None if data is None else str(Path(data).resolve()), str((tmp / "points" / pt.name).resolve()))
                 for pt in points}
        with progress(f"sweep: {len(points)} points, {where}", total=len(points), quiet=quiet) as bar:
            rows = _run_points(calls, jobs, scheduler, bar)
        table = [rows[pt] for pt in points]
        for r, front in zip(table, pareto_front(table)):
            r["pareto"] = front
            if r.get("path"):
                r["path"] = str(out.resolve() / "points" / r["point"])
        doc = {"format": "hwflow.sweep/1", "model": str(model), "target": tgt.name, "clock_mhz": tgt.clock_mhz,
               "abits": abits, "calib": None if calib is None else str(calib),
               "data": None if data is None else str(data), "objectives": objective_names(table),
               "rows": table, "plot": str(out.resolve() / "pareto.png"), "path": str(out.resolve())}
        plot_front(table, tmp / "pareto.png",
                   f"{model.name} on {tgt.name}: latency vs LUTs (front over {', '.join(doc['objectives'])})")
        write_json(tmp / SWEEP_JSON, doc)
    return doc
