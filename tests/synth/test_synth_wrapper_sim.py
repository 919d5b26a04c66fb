"""The narrow I/O wrapper, simulated with Icarus Verilog around a stand-in core."""

import subprocess

import pytest

from hwflow.synth.bundle import write_handoff

# Same port shape as the accelerator; a free-running counter on `cycles` and the
# streams looped through, so the wrapper's wiring is visible from outside.
CORE = """
module core_x(clk, rst, start, busy, done, cycles, in_valid, in_ready, in_data,
              out_valid, out_ready, out_data);
  input clk; input rst; input start; output busy; output done; output [31:0] cycles;
  input in_valid; output in_ready; input [7:0] in_data;
  output out_valid; input out_ready; output [7:0] out_data;
  reg [31:0] count = 32'hA1B2C3D4;
  always @(posedge clk) count <= start ? 32'h11223344 : count;
  assign cycles = count;
  assign busy = start; assign done = ~start;
  assign in_ready = out_ready; assign out_valid = in_valid; assign out_data = ~in_data;
endmodule
"""

TB = """
module tb;
  reg clk = 0, rst = 0, start = 0, in_valid = 0, out_ready = 0;
  reg [7:0] in_data = 8'h5A;
  reg [1:0] cycles_sel = 0;
  wire busy, done, in_ready, out_valid;
  wire [7:0] out_data, cycles_byte;
  core_x_io dut(.clk(clk), .rst(rst), .start(start), .busy(busy), .done(done),
                .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
                .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),
                .cycles_sel(cycles_sel), .cycles_byte(cycles_byte));
  always #5 clk = ~clk;
  integer i;
  initial begin
    for (i = 0; i < 4; i = i + 1) begin
      cycles_sel = i; @(posedge clk); #1 $display("byte %0d %h", i, cycles_byte);
    end
    start = 1; @(posedge clk); #1 start = 0;
    for (i = 3; i >= 0; i = i - 1) begin
      cycles_sel = i; @(posedge clk); #1 $display("byte %0d %h", i, cycles_byte);
    end
    in_valid = 1; out_ready = 1; #1
    $display("pass %b %b %b %b %h", busy, done, in_ready, out_valid, out_data);
    $finish;
  end
endmodule
"""


@pytest.mark.sim
@pytest.mark.tool("iverilog")
def test_wrapper_reads_cycles_a_byte_at_a_time(tmp_path):
    (tmp_path / "core_x.v").write_text(CORE)
    h = write_handoff(tmp_path, "core_x.v", "core_x", "fpga-tiny")
    assert h["wrapped"] and h["io_pins_used"] == 35
    (tmp_path / "tb.v").write_text(TB)
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "core_x.v", "core_x_io.v", "tb.v"],
                   cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    lines = [line for line in out if line.startswith(("byte", "pass"))]
    assert lines == ["byte 0 d4", "byte 1 c3", "byte 2 b2", "byte 3 a1",
                     "byte 3 11", "byte 2 22", "byte 1 33", "byte 0 44",
                     "pass 0 1 1 1 a5"]


# A 2-lane stand-in: holds one 16-bit word and gives it back inverted.
CORE2 = """
module core_w(clk, rst, start, busy, done, cycles, in_valid, in_ready, in_data,
              out_valid, out_ready, out_data);
  input clk; input rst; input start; output busy; output done; output [31:0] cycles;
  input in_valid; output in_ready; input [15:0] in_data;
  output out_valid; input out_ready; output [15:0] out_data;
  reg full = 0; reg [15:0] word;
  assign cycles = 0; assign busy = full; assign done = 0;
  assign in_ready = !full; assign out_valid = full; assign out_data = ~word;
  always @(posedge clk) begin
    if (in_valid && in_ready) begin word <= in_data; full <= 1; end
    else if (out_valid && out_ready) full <= 0;
  end
endmodule
"""

TB2 = """
module tb;
  reg clk = 0, rst = 1, start = 0, in_valid = 0, out_ready = 1;
  reg [7:0] in_data = 0;
  reg [1:0] cycles_sel = 0;
  wire busy, done, in_ready, out_valid;
  wire [7:0] out_data, cycles_byte;
  core_w_io dut(.clk(clk), .rst(rst), .start(start), .busy(busy), .done(done),
                .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
                .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data),
                .cycles_sel(cycles_sel), .cycles_byte(cycles_byte));
  always #5 clk = ~clk;
  reg [7:0] codes [0:5];
  integer sent = 0, cyc = 0;
  initial begin
    codes[0] = 8'h11; codes[1] = 8'h22; codes[2] = 8'h33; codes[3] = 8'h44; codes[4] = 8'h55; codes[5] = 8'h66;
    @(posedge clk); #1 rst = 0;
    in_valid = 1; in_data = codes[0];
    while (cyc < 40) begin
      @(negedge clk);
      out_ready = (cyc % 3) != 1;  // some back-pressure
      #1 if (out_valid && out_ready) $display("out %h", out_data);
      @(posedge clk); #1 cyc = cyc + 1;
    end
    $finish;
  end
  always @(posedge clk) if (in_valid && in_ready) begin
    #1 sent = sent + 1;
    if (sent == 6) in_valid = 0; else in_data = codes[sent];
  end
endmodule
"""


@pytest.mark.sim
@pytest.mark.tool("iverilog")
def test_wrapper_makes_word_streams_lane_serial(tmp_path):
    (tmp_path / "core_w.v").write_text(CORE2)
    h = write_handoff(tmp_path, "core_w.v", "core_w", "fpga-tiny", lanes=2)
    assert h["wrapped"] and h["io_pins_used"] == 35
    (tmp_path / "tb.v").write_text(TB2)
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "core_w.v", "core_w_io.v", "tb.v"],
                   cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    # Lane 0 first in both directions: each code comes back inverted, in order.
    assert [line for line in out if line.startswith("out")] == [
        "out ee", "out dd", "out cc", "out bb", "out aa", "out 99"]
