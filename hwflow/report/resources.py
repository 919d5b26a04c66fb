"""Report sections: estimated against synthesized resources and Fmax; the simulation result."""

from __future__ import annotations

from ._figure import figure, img_tag
from ._html import Section, note, para, table

__all__ = ["resources_section", "simulation_section"]

_KEYS = (("lut", "luts", "LUT"), ("ff", "ffs", "FF"), ("dsp", "dsps", "DSP"))


def _keys(target) -> tuple:
    """(synth key, estimate key, label) of every resource: logic, then each memory kind."""
    return _KEYS + tuple((k.name, f"{k.name}_blocks", k.name.upper()) for k in target.memory)


def _available(target) -> dict:
    return {"lut": target.luts, "ff": target.ffs, "dsp": target.dsps, **{k.name: k.blocks for k in target.memory}}


def _figure(rows: list[dict], synth: bool):
    fig = figure(7.5, 2.6)
    ax = fig.add_subplot()
    labels = [r["label"] for r in rows]
    rel = all(r["available"] for r in rows)
    scale = [100 / r["available"] if rel else 1 for r in rows]
    ys = range(len(rows))
    h = 0.38 if synth else 0.6
    ax.barh([y - (h / 2 if synth else 0) for y in ys], [r["estimate"] * k for r, k in zip(rows, scale)],
            height=h, color="#4878a8", label="estimate (compile)")
    if synth:
        ax.barh([y + h / 2 for y in ys], [(r["used"] or 0) * k for r, k in zip(rows, scale)], height=h,
                color="#e08040", label="synthesized")
    ax.set_yticks(list(ys), labels)
    ax.invert_yaxis()
    if rel:
        ax.axvline(100, color="k", lw=1, ls="--")
        ax.set_xlabel("% of the target's resources")
    else:
        ax.set_xlabel("count")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return fig


def resources_section(ctx) -> Section:
    est = ctx.manifest.get("estimate") or {}
    avail = _available(ctx.target)
    synth = ctx.synth
    res = (synth or {}).get("resources", {})
    rows = []
    for key, ekey, label in _keys(ctx.target):
        if ekey not in est:
            continue
        used = res.get(key, {}).get("used") if synth else None
        rows.append({"label": label, "estimate": est[ekey], "used": used, "available": avail[key]})
    table_rows = []
    for r in rows:
        ratio = r["used"] / r["estimate"] if r["used"] is not None and r["estimate"] else None
        table_rows.append([r["label"], r["estimate"], r["used"], r["available"],
                           round(100 * r["estimate"] / r["available"], 1) if r["available"] else None,
                           round(100 * r["used"] / r["available"], 1) if r["used"] is not None and r["available"] else None,
                           round(ratio, 2) if ratio is not None else None])
    body = []
    cycles = ctx.manifest["cycles"]
    if synth:
        fmax = synth.get("fmax_mhz")
        goal = synth.get("clock_mhz", ctx.clock_mhz)
        seed = f" (placer seed {synth['seed']})" if synth.get("source") == "nextpnr" and "seed" in synth else ""
        text = (f"Synthesized by {synth.get('source', '?')}{seed} for {synth.get('device', ctx.target.device)}"
                f": {'fits' if synth.get('fits') else 'does NOT fit'}")
        if fmax is not None:
            text += (f"; Fmax {fmax:.1f} MHz against the {goal:g} MHz goal "
                     f"({'met' if synth.get('meets_timing') else 'MISSED'}): one inference takes "
                     f"{cycles / fmax:.2f} µs at Fmax, {cycles / goal:.2f} µs at the goal.")
        else:
            text += "; Fmax unknown (place and route was skipped)."
        body.append(para(text))
        cp = synth.get("critical_path")
        if cp:
            body.append(para(f"Critical path: {cp.get('delay_ns', 0):.1f} ns from {cp.get('from')} to {cp.get('to')}."))
    else:
        body.append(note(f"Not synthesized yet: run hwflow synth {ctx.path} for the real figures and Fmax "
                         "(then re-run the report). The estimate is the compiler's."))
    body.append(table(["resource", "estimate", "synthesized", "available", "estimate %", "synthesized %",
                       "synthesized / estimate"], table_rows))
    if synth and synth.get("fmax_mhz") is not None:
        fmax, goal = synth["fmax_mhz"], synth.get("clock_mhz", ctx.clock_mhz)
        body.append(table(["clock", "MHz", "latency per inference µs"],
                          [["target goal", float(goal), round(cycles / goal, 2)],
                           ["Fmax (nextpnr)", float(fmax), round(cycles / fmax, 2)]]))
    if rows:
        body.append(img_tag(_figure(rows, synth is not None), "resources", "resources"))
    return Section("resources", "Resources: estimated against synthesized", "\n".join(body))


def simulation_section(ctx) -> Section:
    sim = ctx.sim
    sid, title = "simulation", "Simulation"
    if not sim:
        return Section(sid, title, note(
            f"No simulation result in the BUILD: run hwflow simulate {ctx.path} (or hwflow report "
            f"{ctx.path} --simulate amaranth|icarus|verilator) to record one."))
    passed = sim.get("passed")
    per = sim.get("cycles_per_vector") or []
    rows = [["verdict", "PASS (bit-exact and cycle-exact)" if passed else "FAIL"],
            ["simulator", sim.get("simulator")], ["vectors", sim.get("vectors")], ["inputs", sim.get("inputs")],
            ["mismatching vectors", sim.get("mismatches")],
            ["cycles (measured)", ", ".join(map(str, sorted(set(per)))) if per else sim.get("cycles")],
            ["cycles (predicted)", sim.get("predicted_cycles")],
            ["simulation speed (cycles/s)", sim.get("cycles_per_second")],
            ["wall time (s)", sim.get("wall_time")]]
    if sim.get("first_mismatch"):
        rows.append(["first mismatch", sim["first_mismatch"]])
    return Section(sid, title, "\n".join([
        para("The last simulation recorded in the BUILD: input vectors streamed through the generated "
             "hardware, compared with the integer reference code for code, and start→done cycles with the "
             "schedule's prediction."),
        table(["", ""], rows)]))
