"""The lane-serial I/O wrapper (``<top>_io``) of a BUILD, driven code by code in Icarus."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hwflow.build import load_build
from hwflow.sim.beats import pack, read_words, unpack

_TB = """
module tb;
  reg clk = 0, rst = 1, start = 0, in_valid = 0, out_ready = 1;
  reg [{ib}:0] in_data = 0;
  reg [1:0] cycles_sel = 0;
  wire busy, done, in_ready, out_valid{loaded_wire};
  wire [{ob}:0] out_data;
  wire [7:0] cycles_byte;
  {top}_io dut(.clk(clk), .rst(rst), .start(start), .busy(busy), .done(done),
               .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
               .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),{loaded_pin}
               .cycles_sel(cycles_sel), .cycles_byte(cycles_byte));
  always #5 clk = ~clk;
  reg [{ib}:0] chunks [0:{n_w}];
  reg [{ib}:0] codes [0:{n_in}];
  integer v, sent, got;
  reg take_in, take_out;
  initial begin
    $readmemh("in.hex", codes);
    repeat (3) @(posedge clk);
    #1 rst = 0;
{load}    for (v = 0; v < {vectors}; v = v + 1) begin
      @(posedge clk); #1 start = 1;
      @(posedge clk); #1 start = 0;
      sent = 0; got = 0;
      in_valid = 1; in_data = codes[v * {per_in}];
      while (got < {per_out}) begin
        @(posedge clk);  // sample the handshakes at the edge, change inputs after it
        take_in = in_valid && in_ready;
        take_out = out_valid && out_ready;
        if (take_out) $display("out %0d %h", v, out_data);
        #1;
        if (take_in) begin
          sent = sent + 1;
          if (sent == {per_in}) in_valid = 0; else in_data = codes[v * {per_in} + sent];
        end
        if (take_out) got = got + 1;
      end
    end
    $finish;
  end
endmodule
"""

_LOAD = """    // the weight image first, through the in-stream's pins, while loaded is low
    $readmemh("w.hex", chunks);
    sent = 0; in_valid = 1; in_data = chunks[0];
    while (!loaded) begin
      @(posedge clk);
      take_in = in_valid && in_ready;
      #1;
      if (take_in) begin
        sent = sent + 1;
        if (sent == {n_chunks}) in_valid = 0; else in_data = chunks[sent];
      end
    end
    $display("loaded %0d", sent);
"""


def run_narrow_wrapper(build: Path) -> tuple[list[list[int]], list[str]]:
    """Every stored vector of ``build`` through its lane-serial wrapper in Icarus (the weight
    image first, through the in-stream's pins, when the BUILD loads its weights): the output
    codes per vector, unpacked as the core's beats, and vvp's output lines."""
    b = load_build(build)
    s, load = b.manifest["stream"], b.manifest.get("load")
    lanes, ib, ob = s["lanes"], s["in_bits"], s["out_bits"]
    in_map, out_map = b.stream_maps()
    xs = b.inputs()
    # Lane-serial: every lane of every word, lane 0 first; a weight word in in-stream-wide
    # chunks, lowest bits first.
    serial = [(beat >> (l * ib)) & ((1 << ib) - 1) for x in xs for beat in pack(x, in_map, ib) for l in range(lanes)]
    chunks = [0]
    if load:
        nb = -(-load["word_bits"] // ib)
        chunks = [(w >> (i * ib)) & ((1 << ib) - 1) for w in read_words(build / load["file"]) for i in range(nb)]
        (build / "w.hex").write_text("\n".join(f"{c:x}" for c in chunks) + "\n")
    (build / "in.hex").write_text("\n".join(f"{c:x}" for c in serial) + "\n")
    per_in, per_out = len(in_map) * lanes, len(out_map) * lanes
    (build / "tb.v").write_text(_TB.format(
        top=b.top, ib=ib - 1, ob=ob - 1, n_w=len(chunks) - 1, n_in=len(serial) - 1, vectors=len(xs),
        per_in=per_in, per_out=per_out, loaded_wire=", loaded" if load else "",
        loaded_pin=" .loaded(loaded)," if load else "", load=_LOAD.format(n_chunks=len(chunks)) if load else ""))
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", b.manifest["verilog"], f"{b.top}_io.v", "tb.v"],
                   cwd=build, check=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=build, check=True, capture_output=True,
                         text=True, timeout=300).stdout.split("\n")
    codes = [[] for _ in xs]
    for line in out:
        if line.startswith("out "):
            _, v, c = line.split()
            codes[int(v)].append(int(c, 16))
    beats = [[sum(c << (l * ob) for l, c in enumerate(cs[i:i + lanes])) for i in range(0, per_out, lanes)]
             for cs in codes]
    return [unpack(bs, out_map, ob) for bs in beats], out
