"""Report section: the schedule as a Gantt chart, cycles per layer on the PE x SIMD array.

Read from ``schedule.json``: one inference is the input stream, then each layer in
turn (``2`` setup cycles, ``oh·ow·nt`` tiles of ``t`` cycles of which the first ``k``
read, then ``drain`` cycles), then the output stream, plus 2 handshake cycles. A
layer's bar shows how its cycles split into setup, reading (the array is fed),
idle tile cycles and drain, in proportion (not in time order).
"""

from __future__ import annotations

from ._figure import figure, img_tag
from ._html import Section, para, table

__all__ = ["phases", "gantt_section"]

_COLORS = {"setup": "#b0b0b0", "read": "#4878a8", "idle": "#e0a040", "drain": "#c05050",
           "stream": "#60a060"}


def phases(sched: dict) -> list[dict]:
    """The inference as consecutive phases ``{name, start, cycles, parts, layer}``; the
    cycles add up to ``sched["cycles"]`` (checked)."""
    out = []
    t = 0
    n_in = sched["input_lead"]  # the rest of the input streams in while the first layer runs
    out.append({"name": "input stream", "start": t, "cycles": n_in, "parts": {"stream": n_in}, "layer": None})
    t += n_in
    for l in sched["layers"]:
        tiles = l["tiles"]
        read = tiles * l["k"]
        parts = {"setup": l["cycles"] - tiles * l["t"] - l["drain"], "read": read,
                 "idle": tiles * (l["t"] - l["k"]), "drain": l["drain"]}
        out.append({"name": l["name"], "start": t, "cycles": l["cycles"], "parts": parts, "layer": l})
        t += l["cycles"]
    n_out = sched["output_beats"]
    out.append({"name": "output stream", "start": t, "cycles": n_out, "parts": {"stream": n_out}, "layer": None})
    t += n_out
    rest = sched["cycles"] - t
    if rest:
        out.append({"name": "start/done", "start": t, "cycles": rest, "parts": {"setup": rest}, "layer": None})
    if any(p["cycles"] < 0 for p in out) or sum(p["cycles"] for p in out) != sched["cycles"]:
        raise ValueError(f"schedule phases {[p['cycles'] for p in out]} add up to {sum(p['cycles'] for p in out)}, "
                         f"not {sched['cycles']}, or one is negative")
    return out


def _figure(ph: list[dict], clock_mhz: float, pe: int, simd: int):
    fig = figure(7.5, 0.45 * len(ph) + 1.3)
    ax = fig.add_subplot()
    seen = set()
    for i, p in enumerate(ph):
        x = p["start"]
        for part, n in p["parts"].items():
            if n <= 0:
                continue
            label = None if part in seen else {"setup": "setup / handshake", "read": "reading (array fed)",
                                              "idle": "idle tile cycles", "drain": "pipeline drain",
                                              "stream": "I/O stream"}[part]
            seen.add(part)
            ax.barh(i, n, left=x, color=_COLORS[part], height=0.6, label=label)
            x += n
        ax.text(p["start"] + p["cycles"], i, f" {p['cycles']:,}", va="center", fontsize=7)
    ax.set_yticks(range(len(ph)), [p["name"] for p in ph], fontsize=8)
    ax.invert_yaxis()
    total = ph[-1]["start"] + ph[-1]["cycles"]
    ax.set_xlim(0, total * 1.08)
    ax.set_xlabel("clock cycle")
    sec = ax.secondary_xaxis("top", functions=(lambda c: c / clock_mhz, lambda us: us * clock_mhz))
    sec.set_xlabel(f"µs at {clock_mhz:g} MHz", fontsize=8)
    ax.set_title(f"One inference on the {pe} x {simd} array: {total:,} cycles", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
    return fig


def gantt_section(ctx) -> Section:
    s = ctx.schedule
    pe, simd = s["pe"], s["simd"]
    xnor_lanes = s.get("xnor", {}).get("binary_macs", 0)
    ph = phases(s)
    total = s["cycles"]
    rows = []
    for p in ph:
        l = p["layer"]
        if l is None:
            rows.append([p["name"], "", None, None, None, p["cycles"], round(100 * p["cycles"] / total, 1),
                         None, None, None])
            continue
        macs = l.get("macs", 0)
        ideal = macs / (xnor_lanes if l["kind"] == "xnor" else pe * simd)
        rows.append([l["name"], f"{l['op']} ({l['kind']})", l["tiles"], l["t"], l["k"], l["cycles"],
                     round(100 * l["cycles"] / total, 1), macs or None, round(ideal, 1) if macs else None,
                     round(100 * ideal / l["cycles"], 1) if macs else None])
    biggest = max((p for p in ph if p["layer"]), key=lambda p: p["cycles"], default=None)
    util = 100 * s["ideal_cycles"] / total if total else 0.0
    lead = (f"{total:,} cycles per inference = {total / ctx.clock_mhz:.2f} µs at {ctx.clock_mhz:g} MHz; "
            f"{s['macs']:,} MACs on {pe * simd} multipliers"
            + (f" and the {xnor_lanes:,}-lane XNOR unit" if xnor_lanes else "")
            + f" would need {s['ideal_cycles']:,.0f} "
            f"(array utilization {util:.1f}%).")
    if biggest is not None:
        lead += f" The longest layer is {biggest['name']} ({100 * biggest['cycles'] / total:.1f}% of the cycles)."
    body = [para(lead),
            table(["phase", "op", "tiles", "cycles/tile t", "reads/tile k", "cycles", "% of total",
                   "MACs", "ideal cycles", "utilization %"], rows),
            img_tag(_figure(ph, ctx.clock_mhz, pe, simd), "schedule Gantt chart", "schedule_gantt")]
    return Section("schedule", "Schedule: cycles per layer on the array", "\n".join(body))
