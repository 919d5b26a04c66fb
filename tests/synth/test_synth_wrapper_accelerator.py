"""The real accelerator behind the narrow (lane-serial) I/O wrapper, in Icarus Verilog.

The UP5K build's synthesis top is ``<top>_io``: the same core with byte-serial streams.
This drives it code by code, in the order ``hwflow.sim.beats`` packs words, and checks
every output code against the integer reference.
"""

import subprocess

import numpy as np
import pytest

from hwflow.build import load_build
from hwflow.flow import compile_model
from hwflow.sim.beats import pack, unpack

MLP = "examples/models/digits_mlp.onnx"
CALIB = "examples/models/digits_mlp_calib.npz"

TB = """
module tb;
  reg clk = 0, rst = 1, start = 0, in_valid = 0, out_ready = 1;
  reg [{ib}:0] in_data = 0;
  reg [1:0] cycles_sel = 0;
  wire busy, done, in_ready, out_valid;
  wire [{ob}:0] out_data;
  wire [7:0] cycles_byte;
  {top}_io dut(.clk(clk), .rst(rst), .start(start), .busy(busy), .done(done),
               .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
               .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),
               .cycles_sel(cycles_sel), .cycles_byte(cycles_byte));
  always #5 clk = ~clk;
  reg [{ib}:0] codes [0:{n_in}];
  integer v, sent, got;
  reg take_in, take_out;
  initial begin
    $readmemh("in.hex", codes);
    repeat (3) @(posedge clk);
    #1 rst = 0;
    for (v = 0; v < {vectors}; v = v + 1) begin
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


@pytest.mark.sim
@pytest.mark.tool("iverilog")
def test_accelerator_through_the_lane_serial_wrapper(tmp_path):
    compile_model(MLP, "fpga-tiny", tmp_path / "b", calib_path=CALIB, vectors=3)
    build = load_build(tmp_path / "b")
    h = build.manifest["handoff"]
    assert h["wrapped"], "the UP5K build needs the narrow wrapper"
    in_map, out_map = build.stream_maps()
    s = build.manifest["stream"]
    lanes, ib, ob = s["lanes"], s["in_bits"], s["out_bits"]
    xs, want = build.inputs(), build.expected()
    # Lane-serial: every lane of every word, lane 0 first.
    serial = [(beat >> (l * ib)) & ((1 << ib) - 1) for x in xs for beat in pack(x, in_map, ib) for l in range(lanes)]
    (tmp_path / "b" / "in.hex").write_text("\n".join(f"{c:x}" for c in serial) + "\n")
    per_in, per_out = len(in_map) * lanes, len(out_map) * lanes
    (tmp_path / "b" / "tb.v").write_text(TB.format(
        top=build.top, ib=ib - 1, ob=ob - 1, n_in=len(serial) - 1, vectors=len(xs), per_in=per_in, per_out=per_out))
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", build.manifest["verilog"], f"{build.top}_io.v", "tb.v"],
                   cwd=tmp_path / "b", check=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path / "b", check=True, capture_output=True,
                         text=True, timeout=300).stdout.split("\n")
    codes = [[] for _ in xs]
    for line in out:
        if line.startswith("out "):
            _, v, c = line.split()
            codes[int(v)].append(int(c, 16))
    for v in range(len(xs)):
        beats = [sum(c << (l * ob) for l, c in enumerate(codes[v][i:i + lanes])) for i in range(0, per_out, lanes)]
        assert unpack(beats, out_map, ob) == list(np.asarray(want[v]).reshape(-1))
