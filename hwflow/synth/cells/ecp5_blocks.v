// Simulation models of the two ECP5 hard blocks that Yosys' share/ecp5/cells_sim.v leaves
// as black boxes: DP16KD (block RAM) and MULT18X18D (multiplier). Written for hwflow's
// netlist simulation (hwflow simulate --netlist); every other cell comes from Yosys.
//
// They cover the configurations Yosys' ECP5 mapping produces (share/lattice/brams_map_16kd.v,
// dsp_map_18x18.v) and stop the simulation ($fatal) on any other, rather than model it
// wrongly:
//   DP16KD      data widths 9, 18 and 36 (36: pseudo dual port, port A writes DIA/DIB, port B
//               reads DOA/DOB), REGMODE "NOREG", chip selects tied to CSDECODE "0b000",
//               WRITEMODE NORMAL (a port's output holds while it writes), WRITETHROUGH or
//               READBEFOREWRITE, RST clearing the output (SYNC or ASYNC), CE gating reads and
//               writes. The array is 1024 rows of 18 bits, INITVAL_xx holding 16 rows in
//               20-bit slots; a port of width w addresses it with AD[13:log2(w/9)+3] and, at
//               widths 18 and 36, byte enables on AD[1:0] / AD[3:0] (9 bits each).
//               A read of bytes the other port writes at the same clock edge gives 'x for
//               those bytes (the byte lanes are independent; Yosys' bypass logic assumes so).
//   MULT18X18D  P = A * B, each operand signed when SIGNEDA / SIGNEDB is high; SOURCEA/SOURCEB
//               (shift-in) must be low. The A, B and P registers are each bypassed (Yosys'
//               mapping) or clocked by CLK0 with CE0 and a synchronous RST0 (hwflow.synth.ecp5_dsp
//               moves the fabric flip-flops around a multiplier into them); no other register.
// They follow Lattice's description of the blocks as Yosys' mapping reads it, not the vendor's
// own models: a netlist simulation with them checks the synthesized logic and its use of the
// blocks, not the silicon's behaviour inside a block.

`timescale 1ns / 1ps

module DP16KD(
	input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
	input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
	input CEA, OCEA, CLKA, WEA, RSTA,
	input CSA2, CSA1, CSA0,
	output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
	input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
	input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
	input CEB, OCEB, CLKB, WEB, RSTB,
	input CSB2, CSB1, CSB0,
	output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
	parameter DATA_WIDTH_A = 18;
	parameter DATA_WIDTH_B = 18;
	parameter REGMODE_A = "NOREG";
	parameter REGMODE_B = "NOREG";
	parameter RESETMODE = "SYNC";
	parameter ASYNC_RESET_RELEASE = "SYNC";
	parameter CSDECODE_A = "0b000";
	parameter CSDECODE_B = "0b000";
	parameter WRITEMODE_A = "NORMAL";
	parameter WRITEMODE_B = "NORMAL";
	parameter CLKAMUX = "CLKA";
	parameter CLKBMUX = "CLKB";
	parameter GSR = "ENABLED";
	parameter INIT_DATA = "STATIC";
	parameter WID = 0;
	parameter INITVAL_00 = 320'h0;
	parameter INITVAL_01 = 320'h0;
	parameter INITVAL_02 = 320'h0;
	parameter INITVAL_03 = 320'h0;
	parameter INITVAL_04 = 320'h0;
	parameter INITVAL_05 = 320'h0;
	parameter INITVAL_06 = 320'h0;
	parameter INITVAL_07 = 320'h0;
	parameter INITVAL_08 = 320'h0;
	parameter INITVAL_09 = 320'h0;
	parameter INITVAL_0A = 320'h0;
	parameter INITVAL_0B = 320'h0;
	parameter INITVAL_0C = 320'h0;
	parameter INITVAL_0D = 320'h0;
	parameter INITVAL_0E = 320'h0;
	parameter INITVAL_0F = 320'h0;
	parameter INITVAL_10 = 320'h0;
	parameter INITVAL_11 = 320'h0;
	parameter INITVAL_12 = 320'h0;
	parameter INITVAL_13 = 320'h0;
	parameter INITVAL_14 = 320'h0;
	parameter INITVAL_15 = 320'h0;
	parameter INITVAL_16 = 320'h0;
	parameter INITVAL_17 = 320'h0;
	parameter INITVAL_18 = 320'h0;
	parameter INITVAL_19 = 320'h0;
	parameter INITVAL_1A = 320'h0;
	parameter INITVAL_1B = 320'h0;
	parameter INITVAL_1C = 320'h0;
	parameter INITVAL_1D = 320'h0;
	parameter INITVAL_1E = 320'h0;
	parameter INITVAL_1F = 320'h0;
	parameter INITVAL_20 = 320'h0;
	parameter INITVAL_21 = 320'h0;
	parameter INITVAL_22 = 320'h0;
	parameter INITVAL_23 = 320'h0;
	parameter INITVAL_24 = 320'h0;
	parameter INITVAL_25 = 320'h0;
	parameter INITVAL_26 = 320'h0;
	parameter INITVAL_27 = 320'h0;
	parameter INITVAL_28 = 320'h0;
	parameter INITVAL_29 = 320'h0;
	parameter INITVAL_2A = 320'h0;
	parameter INITVAL_2B = 320'h0;
	parameter INITVAL_2C = 320'h0;
	parameter INITVAL_2D = 320'h0;
	parameter INITVAL_2E = 320'h0;
	parameter INITVAL_2F = 320'h0;
	parameter INITVAL_30 = 320'h0;
	parameter INITVAL_31 = 320'h0;
	parameter INITVAL_32 = 320'h0;
	parameter INITVAL_33 = 320'h0;
	parameter INITVAL_34 = 320'h0;
	parameter INITVAL_35 = 320'h0;
	parameter INITVAL_36 = 320'h0;
	parameter INITVAL_37 = 320'h0;
	parameter INITVAL_38 = 320'h0;
	parameter INITVAL_39 = 320'h0;
	parameter INITVAL_3A = 320'h0;
	parameter INITVAL_3B = 320'h0;
	parameter INITVAL_3C = 320'h0;
	parameter INITVAL_3D = 320'h0;
	parameter INITVAL_3E = 320'h0;
	parameter INITVAL_3F = 320'h0;

	wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
	wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
	wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
	wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
	reg [17:0] doa = 18'h0, dob = 18'h0;
	assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = doa;
	assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = dob;
	wire clka = CLKAMUX == "INV" ? ~CLKA : CLKA;
	wire clkb = CLKBMUX == "INV" ? ~CLKB : CLKB;
	// Chip selects: only the decode Yosys uses (CSDECODE "0b000", CS pins low) is modelled.
	wire sela = {CSA2, CSA1, CSA0} == 3'b000;
	wire selb = {CSB2, CSB1, CSB0} == 3'b000;

	reg [17:0] mem [0:1023];

	function [319:0] initval(input [7:0] i);
		case (i)
			8'h00: initval = INITVAL_00;
			8'h01: initval = INITVAL_01;
			8'h02: initval = INITVAL_02;
			8'h03: initval = INITVAL_03;
			8'h04: initval = INITVAL_04;
			8'h05: initval = INITVAL_05;
			8'h06: initval = INITVAL_06;
			8'h07: initval = INITVAL_07;
			8'h08: initval = INITVAL_08;
			8'h09: initval = INITVAL_09;
			8'h0A: initval = INITVAL_0A;
			8'h0B: initval = INITVAL_0B;
			8'h0C: initval = INITVAL_0C;
			8'h0D: initval = INITVAL_0D;
			8'h0E: initval = INITVAL_0E;
			8'h0F: initval = INITVAL_0F;
			8'h10: initval = INITVAL_10;
			8'h11: initval = INITVAL_11;
			8'h12: initval = INITVAL_12;
			8'h13: initval = INITVAL_13;
			8'h14: initval = INITVAL_14;
			8'h15: initval = INITVAL_15;
			8'h16: initval = INITVAL_16;
			8'h17: initval = INITVAL_17;
			8'h18: initval = INITVAL_18;
			8'h19: initval = INITVAL_19;
			8'h1A: initval = INITVAL_1A;
			8'h1B: initval = INITVAL_1B;
			8'h1C: initval = INITVAL_1C;
			8'h1D: initval = INITVAL_1D;
			8'h1E: initval = INITVAL_1E;
			8'h1F: initval = INITVAL_1F;
			8'h20: initval = INITVAL_20;
			8'h21: initval = INITVAL_21;
			8'h22: initval = INITVAL_22;
			8'h23: initval = INITVAL_23;
			8'h24: initval = INITVAL_24;
			8'h25: initval = INITVAL_25;
			8'h26: initval = INITVAL_26;
			8'h27: initval = INITVAL_27;
			8'h28: initval = INITVAL_28;
			8'h29: initval = INITVAL_29;
			8'h2A: initval = INITVAL_2A;
			8'h2B: initval = INITVAL_2B;
			8'h2C: initval = INITVAL_2C;
			8'h2D: initval = INITVAL_2D;
			8'h2E: initval = INITVAL_2E;
			8'h2F: initval = INITVAL_2F;
			8'h30: initval = INITVAL_30;
			8'h31: initval = INITVAL_31;
			8'h32: initval = INITVAL_32;
			8'h33: initval = INITVAL_33;
			8'h34: initval = INITVAL_34;
			8'h35: initval = INITVAL_35;
			8'h36: initval = INITVAL_36;
			8'h37: initval = INITVAL_37;
			8'h38: initval = INITVAL_38;
			8'h39: initval = INITVAL_39;
			8'h3A: initval = INITVAL_3A;
			8'h3B: initval = INITVAL_3B;
			8'h3C: initval = INITVAL_3C;
			8'h3D: initval = INITVAL_3D;
			8'h3E: initval = INITVAL_3E;
			8'h3F: initval = INITVAL_3F;
			default: initval = 320'h0;
		endcase
	endfunction

	function integer lsb(input integer width);  // lowest word-address bit of AD
		lsb = width == 36 ? 5 : width == 18 ? 4 : 3;
	endfunction

	function [4:0] bytes(input integer width, input [13:0] ad);  // 9-bit byte enables
		bytes = width == 36 ? {1'b0, ad[3:0]} : width == 18 ? {3'b0, ad[1:0]} : 5'b1;
	endfunction

	integer r, s;
	initial begin
		if (DATA_WIDTH_A != 9 && DATA_WIDTH_A != 18 && DATA_WIDTH_A != 36)
			$fatal(1, "hwflow DP16KD model: DATA_WIDTH_A %0d is not modelled (9, 18, 36)", DATA_WIDTH_A);
		if (DATA_WIDTH_B != 9 && DATA_WIDTH_B != 18 && DATA_WIDTH_B != 36)
			$fatal(1, "hwflow DP16KD model: DATA_WIDTH_B %0d is not modelled (9, 18, 36)", DATA_WIDTH_B);
		if (REGMODE_A != "NOREG" || REGMODE_B != "NOREG")
			$fatal(1, "hwflow DP16KD model: only REGMODE NOREG is modelled");
		if (CSDECODE_A != "0b000" || CSDECODE_B != "0b000")
			$fatal(1, "hwflow DP16KD model: only CSDECODE 0b000 is modelled");
		for (r = 0; r < 64; r = r + 1)
			for (s = 0; s < 16; s = s + 1)
				mem[r * 16 + s] = initval(r[7:0]) >> (s * 20);
	end

	// Word w of width `width` lives in row w / (18 / width) (width 9: half w % 2); width 36
	// spans rows 2w (bits 17:0) and 2w + 1 (bits 35:18).
	function [35:0] read_word(input integer width, input [13:0] ad);
		reg [13:0] w;
		begin
			w = ad >> lsb(width);
			if (width == 36) read_word = {mem[{w[8:0], 1'b1}], mem[{w[8:0], 1'b0}]};
			else if (width == 18) read_word = {18'bx, mem[w[9:0]]};
			else read_word = {27'bx, w[0] ? mem[w[10:1]][17:9] : mem[w[10:1]][8:0]};
		end
	endfunction

	task write_word(input integer width, input [13:0] ad, input [35:0] d);
		reg [13:0] w;
		reg [4:0] be;
		integer b;
		begin
			w = ad >> lsb(width);
			be = bytes(width, ad);
			if (width == 9) begin
				if (w[0]) mem[w[10:1]][17:9] <= d[8:0];
				else mem[w[10:1]][8:0] <= d[8:0];
			end else
				for (b = 0; b < width / 9; b = b + 1)
					if (be[b]) begin
						if (width == 36) begin
							if (b < 2) mem[{w[8:0], 1'b0}][b * 9 +: 9] <= d[b * 9 +: 9];
							else mem[{w[8:0], 1'b1}][(b - 2) * 9 +: 9] <= d[b * 9 +: 9];
						end else
							mem[w[9:0]][b * 9 +: 9] <= d[b * 9 +: 9];
					end
		end
	endtask

	// The bytes of ``row`` a write at ``wad`` (width ``ww``) lands in this edge.
	function [1:0] wbytes(input integer ww, input [13:0] wad, input [9:0] row);
		reg [13:0] w;
		reg [4:0] be;
		begin
			w = wad >> lsb(ww);
			be = bytes(ww, wad);
			wbytes = 2'b00;
			if (ww == 36) begin
				if (w[8:0] == row[9:1]) wbytes = row[0] ? be[3:2] : be[1:0];
			end else if (ww == 18) begin
				if (w[9:0] == row) wbytes = be[1:0];
			end else if (w[10:1] == row)
				wbytes = w[0] ? 2'b10 : 2'b01;
		end
	endfunction

	// A read at ``rad``; the bytes the other port writes at the same edge read as 'x (the
	// byte lanes are separate: the others read normally, which Yosys' bypass logic relies on).
	function [35:0] read_at(input integer rw, input [13:0] rad, input wen, input integer ww, input [13:0] wad);
		reg [35:0] d;
		reg [13:0] w;
		reg [1:0] lo, hi;
		begin
			d = read_word(rw, rad);
			w = rad >> lsb(rw);
			if (wen) begin
				if (rw == 36) begin
					lo = wbytes(ww, wad, {w[8:0], 1'b0});
					hi = wbytes(ww, wad, {w[8:0], 1'b1});
					if (lo[0]) d[8:0] = 9'bx;
					if (lo[1]) d[17:9] = 9'bx;
					if (hi[0]) d[26:18] = 9'bx;
					if (hi[1]) d[35:27] = 9'bx;
				end else if (rw == 18) begin
					lo = wbytes(ww, wad, w[9:0]);
					if (lo[0]) d[8:0] = 9'bx;
					if (lo[1]) d[17:9] = 9'bx;
				end else begin
					lo = wbytes(ww, wad, w[10:1]);
					if (lo[w[0]]) d[8:0] = 9'bx;
				end
			end
			read_at = d;
		end
	endfunction

	wire writes_a = sela && CEA && WEA;
	wire writes_b = selb && CEB && WEB;

	always @(posedge clka) if (sela && CEA) begin
		if (WEA) write_word(DATA_WIDTH_A, ada, {dib, dia});
		// Port A reads unless it is the write side of the pseudo dual port (B at width 36
		// reads onto DOA too).
		if (DATA_WIDTH_A != 36 && DATA_WIDTH_B != 36) begin
			if (!WEA || WRITEMODE_A == "READBEFOREWRITE")
				doa <= read_at(DATA_WIDTH_A, ada, writes_b, DATA_WIDTH_B, adb);
			else if (WRITEMODE_A == "WRITETHROUGH")
				doa <= dia;
		end
	end

	always @(posedge clka) if (RSTA && DATA_WIDTH_A != 36 && DATA_WIDTH_B != 36) doa <= 18'h0;

	always @(posedge clkb) begin
		if (DATA_WIDTH_B == 36) begin  // pseudo dual port: B reads 36 bits onto DOA (low), DOB
			if (selb && CEB && WEB) $fatal(1, "hwflow DP16KD model: port B does not write at width 36");
			if (selb && CEB)
				{dob, doa} <= read_at(36, adb, writes_a, DATA_WIDTH_A, ada);
			if (RSTB) {dob, doa} <= 36'h0;
		end else begin
			if (selb && CEB) begin
				if (WEB) write_word(DATA_WIDTH_B, adb, {18'b0, dib});
				if (!WEB || WRITEMODE_B == "READBEFOREWRITE")
					dob <= read_at(DATA_WIDTH_B, adb, writes_a, DATA_WIDTH_A, ada);
				else if (WRITEMODE_B == "WRITETHROUGH")
					dob <= dib;
			end
			if (RSTB) dob <= 18'h0;
		end
	end

	generate if (RESETMODE == "ASYNC") begin : async_reset
		always @(posedge RSTA) if (DATA_WIDTH_A != 36) doa <= 18'h0;
		always @(posedge RSTB) if (DATA_WIDTH_B == 36) {dob, doa} <= 36'h0; else dob <= 18'h0;
	end endgenerate
endmodule

module MULT18X18D(
	input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
	input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
	input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
	input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
	input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
	input SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
	input SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
	output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
	output SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
	output ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
	output ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
	output ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
	output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
	output SIGNEDP
);
	parameter REG_INPUTA_CLK = "NONE";
	parameter REG_INPUTA_CE = "CE0";
	parameter REG_INPUTA_RST = "RST0";
	parameter REG_INPUTB_CLK = "NONE";
	parameter REG_INPUTB_CE = "CE0";
	parameter REG_INPUTB_RST = "RST0";
	parameter REG_INPUTC_CLK = "NONE";
	parameter REG_INPUTC_CE = "CE0";
	parameter REG_INPUTC_RST = "RST0";
	parameter REG_PIPELINE_CLK = "NONE";
	parameter REG_PIPELINE_CE = "CE0";
	parameter REG_PIPELINE_RST = "RST0";
	parameter REG_OUTPUT_CLK = "NONE";
	parameter REG_OUTPUT_CE = "CE0";
	parameter REG_OUTPUT_RST = "RST0";
	parameter CLK0_DIV = "ENABLED";
	parameter CLK1_DIV = "ENABLED";
	parameter CLK2_DIV = "ENABLED";
	parameter CLK3_DIV = "ENABLED";
	parameter HIGHSPEED_CLK = "NONE";
	parameter GSR = "ENABLED";
	parameter CAS_MATCH_REG = "FALSE";
	parameter SOURCEB_MODE = "B_SHIFT";
	parameter MULT_BYPASS = "DISABLED";
	parameter RESETMODE = "SYNC";

	// A register is either bypassed ("NONE") or on CLK0 with CE0 and RST0 (synchronous reset
	// to 0), which is what hwflow.synth.ecp5_dsp sets; SIGNEDA/B are taken as they come (the
	// mapping ties them to constants).
	localparam RA = REG_INPUTA_CLK == "CLK0", RB = REG_INPUTB_CLK == "CLK0", RP = REG_OUTPUT_CLK == "CLK0";
	initial
		if ((REG_INPUTA_CLK != "NONE" && !(RA && REG_INPUTA_CE == "CE0" && REG_INPUTA_RST == "RST0"))
				|| (REG_INPUTB_CLK != "NONE" && !(RB && REG_INPUTB_CE == "CE0" && REG_INPUTB_RST == "RST0"))
				|| (REG_OUTPUT_CLK != "NONE" && !(RP && REG_OUTPUT_CE == "CE0" && REG_OUTPUT_RST == "RST0"))
				|| REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE" || RESETMODE != "SYNC")
			$fatal(1, "hwflow MULT18X18D model: only the A, B and P registers on CLK0/CE0/RST0 (synchronous reset) are modelled");

	wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
	wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
	reg [17:0] a_r = 0, b_r = 0;
	reg [35:0] p_r = 0;
	wire [17:0] a = RA ? a_r : a_in;
	wire [17:0] b = RB ? b_r : b_in;
	wire signed [18:0] sa = {SIGNEDA & a[17], a};
	wire signed [18:0] sb = {SIGNEDB & b[17], b};
	wire signed [37:0] prod = sa * sb;
	wire [35:0] p = SOURCEA || SOURCEB ? 36'bx : prod[35:0];
	always @(posedge CLK0)
		if (RST0) begin
			a_r <= 0;
			b_r <= 0;
			p_r <= 0;
		end else if (CE0) begin
			a_r <= a_in;
			b_r <= b_in;
			p_r <= p;
		end
	assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = RP ? p_r : p;
	assign SIGNEDP = SIGNEDA | SIGNEDB;
	assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = a;
	assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = b;
	assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = a;
	assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = b;
	assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = {C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0};
endmodule
