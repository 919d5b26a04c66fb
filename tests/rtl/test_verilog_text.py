from hwflow.rtl._verilog_text import compress_zero_init


def test_zero_init_becomes_a_loop_and_nothing_else_changes():
    text = "\n".join(["module a();", "  reg [7:0] mem [5:0];", "  initial begin"]
                     + [f"    mem[{i}] = 8'd0;" for i in range(6)]
                     + ["  end", "  initial begin", "    mem[0] = 8'h01;", "  end", "endmodule"])
    out = compress_zero_init(text).splitlines()
    assert out[2].startswith("  integer mem_i")
    assert "< 6;" in out[4] and "mem[mem_i" in out[4] and out[4].endswith("= 8'd0;")
    assert out[-4:] == ["  initial begin", "    mem[0] = 8'h01;", "  end", "endmodule"]
    short = "\n".join(["  initial begin", "    mem[0] = 8'd0;", "  end"])
    assert compress_zero_init(short) == short  # too short to bother
