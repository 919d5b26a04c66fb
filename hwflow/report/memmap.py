"""Report section: the memory map of the ROMs and the activation buffer, and how full they are.

The activation RAM holds tensors only while they are live (from the step that writes
them to the last step that reads them; the output until it is streamed out), so
tensors whose lifetimes do not overlap share words. The figure draws the RAM as
address against step. The ROMs are drawn as word ranges per layer. Fill is the
memory's bits over the capacity of the blocks it is mapped to (the estimate's tiling,
in the memory kind the scheduler chose: the weights may be in iCE40 SPRAM, loaded after
reset); memories too small for a block RAM go to LUT RAM.
"""

from __future__ import annotations

from matplotlib.patches import Rectangle

from ._figure import figure, img_tag
from ._html import Section, para, table

__all__ = ["memories", "liveness", "memmap_section"]

def memories(ctx) -> list[dict]:
    """``{name, depth, width, bits, kind, blocks, capacity, fill}`` for each on-chip memory:
    sizes as ``schedule.json`` states them, kind and blocks as the compile's estimate placed
    and counted them (``estimate["memories"]``)."""
    m, w = ctx.schedule["memory"], ctx.schedule["widths"]
    kinds = {k.name: k for k in ctx.target.memory}
    placed = {mem["name"]: mem for mem in ctx.manifest["estimate"]["memories"]}
    chan_w = m["chan_bits"] // m["chan_entries"] if m["chan_entries"] else 0
    mems = [("act", "activation RAM", m["act_words"], m["act_word_bits"]),
            ("weights", "weight ROM", m["weight_words"], m["weight_word_bits"]),
            ("chan", "channel ROM (bias, m, n)", m["chan_entries"], chan_w),
            ("lut", "LUT ROM", m["lut_entries"], w["abits"])]
    out = []
    for key, label, depth, width in mems:
        kind = kinds.get(placed[key]["kind"])
        if key == "weights" and kind is not None and not kind.init:
            label = f"weight RAM ({kind.name}, loaded after reset)"
        bits, blocks = depth * width, placed[key]["blocks"]
        cap = blocks * kind.block_bits if kind is not None else 0
        out.append({"name": label, "depth": depth, "width": width, "bits": bits, "kind": placed[key]["kind"],
                    "blocks": blocks, "capacity": cap, "fill": bits / cap if cap else None})
    return out


def liveness(qg) -> dict[str, tuple[int, int]]:
    """``tensor -> (first, last)`` step, as the scheduler allocates them (step ``i`` is
    layer ``i``; the output stays live one step past the last layer, while it streams out)."""
    live = {qg.input: [0, 0]}
    for i, layer in enumerate(qg.layers):
        live[layer.output] = [i, i]
        for t in layer.inputs:
            live[t][1] = max(live[t][1], i)
    live[qg.output][1] = len(qg.layers)
    return {k: (a, b) for k, (a, b) in live.items()}


def _ranges(layers: list[dict], base: str, size_of) -> list[tuple[str, int, int]]:
    return [(l["name"], l[base], size_of(l)) for l in layers if size_of(l) > 0]


def _figure(ctx, live):
    s = ctx.schedule
    tens = s["memory"]["tensors"]
    fig = figure(7.5, 3.4)
    ax, bx = fig.subplots(1, 2, width_ratios=[3, 2])
    cmap = [f"C{i % 10}" for i in range(len(tens))]
    for i, (name, t) in enumerate(tens.items()):
        a, b = live.get(name, (0, len(ctx.qgraph.layers)))
        ax.add_patch(Rectangle((a - 0.45, t["base"]), b - a + 0.9, t["words"], color=cmap[i], alpha=0.7))
        ax.text((a + b) / 2, t["base"] + t["words"] / 2, name, ha="center", va="center", fontsize=7)
    steps = [l.name for l in ctx.qgraph.layers] + ["out"]
    ax.set_xlim(-0.6, len(steps) - 0.4)
    ax.set_ylim(0, s["memory"]["act_words"])
    ax.set_xticks(range(len(steps)), steps, rotation=30, fontsize=7)
    ax.set_ylabel("word address")
    ax.set_xlabel("step (the layer running)", fontsize=7)
    ax.set_title(f"activation RAM: {s['memory']['act_words']} x {s['memory']['act_word_bits']} bit, by step",
                 fontsize=8)
    # ROMs: word ranges per layer, one column each
    layers = s["layers"]
    chan = sorted((l["ch_base"], l["name"]) for l in layers)
    ends = [b for b, _ in chan[1:]] + [s["memory"]["chan_entries"]]
    rom = {"weight ROM": [(l["name"], l["w_base"], l["w_words"]) for l in layers if l["w_words"]],
           "channel ROM": [(n, b, e - b) for (b, n), e in zip(chan, ends) if e > b]}
    for j, (title, spans) in enumerate(rom.items()):
        depth = max((b + n for _, b, n in spans), default=1)
        for k, (name, b, n) in enumerate(spans):
            bx.bar(j, n / depth, bottom=b / depth, color=f"C{k % 10}", alpha=0.7, width=0.6)
            if n / depth > 0.06:
                bx.text(j, (b + n / 2) / depth, f"{name}\n{n} words", ha="center", va="center", fontsize=6)
    bx.set_xticks([0, 1], [f"weight ROM\n{s['memory']['weight_words']} words",
                           f"channel ROM\n{s['memory']['chan_entries']} entries"], fontsize=7)
    bx.set_ylim(0, 1)
    bx.set_ylabel("share of the ROM's words", fontsize=7)
    bx.tick_params(labelsize=7)
    bx.set_title("ROMs by layer", fontsize=8)
    return fig


def memmap_section(ctx) -> Section:
    mems = memories(ctx)
    live = liveness(ctx.qgraph)
    tens = ctx.schedule["memory"]["tensors"]
    trows = [[name, "x".join(map(str, t["shape"][1:])), t["bits"], t["base"], t["base"] + t["words"] - 1,
              t["words"], f"{live[name][0]}..{live[name][1]}" if name in live else "", t.get("stack", 1)]
             for name, t in sorted(tens.items(), key=lambda kv: kv[1]["base"])]
    mrows = [[m["name"], m["depth"], m["width"], m["bits"], f"{m['blocks']} {m['kind']}" if m["blocks"] else "LUT RAM",
              m["capacity"] or None, round(100 * m["fill"], 1) if m["fill"] is not None else None]
             for m in mems]
    parts = []
    for kind in ctx.target.memory:
        used = sum(m["blocks"] for m in mems if m["kind"] == kind.name)
        if used or kind is ctx.target.block_ram:
            parts.append(f"{used} {kind.name} blocks ({kind.cell})" + (
                f" of the target's {kind.blocks} ({100 * used / kind.blocks:.0f}%)" if kind.blocks else ""))
    lead = f"{sum(m['bits'] for m in mems):,} bits of on-chip memory in " + " and ".join(parts) + "."
    naive = sum(t["words"] for t in tens.values())
    if naive > ctx.schedule["memory"]["act_words"]:
        lead += (f" Sharing by liveness puts {naive} words of tensors into "
                 f"{ctx.schedule['memory']['act_words']} words of activation RAM.")
    body = [para(lead),
            table(["memory", "depth", "width (bit)", "bits", "blocks", "capacity (bit)", "fill %"], mrows),
            table(["tensor", "shape (C x H x W)", "bits", "first word", "last word", "words", "live steps",
                   "row stack"], trows),
            img_tag(_figure(ctx, live), "memory map", "memory_map")]
    return Section("memory", "Memory map: ROMs and buffers", "\n".join(body))
